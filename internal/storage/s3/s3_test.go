package s3

// These tests run against a real S3-compatible server: versitygw (posix
// backend in a temporary directory), started by the tests themselves on a
// free loopback port with s3test.Start. The tests never install it; when it
// is missing they are skipped, except with CI=true, where they fail.
//
// MODPROXY_TEST_S3_ENDPOINT (with MODPROXY_TEST_S3_ACCESS_KEY and
// MODPROXY_TEST_S3_SECRET_KEY) runs them against another server instead,
// creating one bucket per test there.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	iofs "io/fs"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/modproxy/modproxy/internal/storage"
	"github.com/modproxy/modproxy/internal/storage/s3/s3test"
	"github.com/modproxy/modproxy/internal/storage/storagetest"
)

// testServer is a running S3-compatible server.
type testServer struct {
	endpoint       string // host:port
	access, secret string
	admin          *minio.Client
}

// startServer starts a fresh server for the test (or uses the one named by
// MODPROXY_TEST_S3_ENDPOINT) and stops it at cleanup.
func startServer(t *testing.T) *testServer {
	t.Helper()
	if ep := os.Getenv("MODPROXY_TEST_S3_ENDPOINT"); ep != "" {
		return connect(t, ep, os.Getenv("MODPROXY_TEST_S3_ACCESS_KEY"), os.Getenv("MODPROXY_TEST_S3_SECRET_KEY"))
	}
	srv := s3test.Start(t)
	return &testServer{endpoint: srv.Endpoint, access: s3test.AccessKey, secret: s3test.SecretKey, admin: srv.Admin}
}

func connect(t *testing.T, endpoint, access, secret string) *testServer {
	t.Helper()
	admin, err := minio.New(endpoint, &minio.Options{
		Creds:        credentials.NewStaticV4(access, secret, ""),
		BucketLookup: minio.BucketLookupPath,
	})
	if err != nil {
		t.Fatal(err)
	}
	return &testServer{endpoint: endpoint, access: access, secret: secret, admin: admin}
}

var bucketSeq atomic.Int64

// newBucket creates an empty bucket.
func (srv *testServer) newBucket(t *testing.T) string {
	t.Helper()
	name := fmt.Sprintf("modproxy-test-%d-%d", time.Now().UnixNano()%1e9, bucketSeq.Add(1))
	if err := srv.admin.MakeBucket(context.Background(), name, minio.MakeBucketOptions{Region: "us-east-1"}); err != nil {
		t.Fatalf("MakeBucket(%s): %v", name, err)
	}
	return name
}

func (srv *testServer) options(bucket string) Options {
	return Options{
		Endpoint:  srv.endpoint,
		Region:    "us-east-1",
		Bucket:    bucket,
		AccessKey: srv.access,
		SecretKey: srv.secret,
		PathStyle: true,
		PartSize:  MinPartSize,
		Timeout:   10 * time.Second,
	}
}

func newStore(t *testing.T, opts Options) *Store {
	t.Helper()
	s, err := New(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	srv := startServer(t)
	storagetest.Run(t, func(t *testing.T) storage.Store {
		return newStore(t, srv.options(srv.newBucket(t)))
	})
}

// TestConformancePrefix shares one bucket between stores with different
// prefixes and an object outside all of them.
func TestConformancePrefix(t *testing.T) {
	srv := startServer(t)
	bucket := srv.newBucket(t)
	ctx := context.Background()
	if _, err := srv.admin.PutObject(ctx, bucket, "example.com/a/@v/list", strings.NewReader("outside"), 7, minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	var n atomic.Int64
	storagetest.Run(t, func(t *testing.T) storage.Store {
		opts := srv.options(bucket)
		opts.Prefix = fmt.Sprintf("cache%d/", n.Add(1))
		return newStore(t, opts)
	})
	// Object names are Prefix+key.
	opts := srv.options(bucket)
	opts.Prefix = "named/"
	s := newStore(t, opts)
	if _, err := s.Put(ctx, "example.com/b/@v/list", strings.NewReader("v1.0.0\n")); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.admin.StatObject(ctx, bucket, "named/example.com/b/@v/list", minio.StatObjectOptions{}); err != nil {
		t.Fatalf("object name is not Prefix+key: %v", err)
	}
}

func TestNew(t *testing.T) {
	srv := startServer(t)
	ctx := context.Background()
	bucket := srv.newBucket(t)

	opts := srv.options("no-such-bucket-here")
	if _, err := New(ctx, opts); err == nil || !strings.Contains(err.Error(), `bucket "no-such-bucket-here" does not exist`) {
		t.Errorf("New with a missing bucket: %v", err)
	}
	opts = srv.options(bucket)
	opts.SecretKey = "wrong-secret"
	if _, err := New(ctx, opts); err == nil {
		t.Error("New with a wrong secret key succeeded")
	}
	opts = srv.options(bucket)
	opts.SecretKey = ""
	if _, err := New(ctx, opts); err == nil {
		t.Error("New with only an access key succeeded")
	}
	opts = srv.options(bucket)
	opts.PartSize = 1 << 20
	if _, err := New(ctx, opts); err == nil {
		t.Error("New with a 1 MiB part size succeeded")
	}
	opts = srv.options(bucket)
	opts.Endpoint = "http://" + srv.endpoint
	if _, err := New(ctx, opts); err != nil {
		t.Errorf("New with an http:// endpoint: %v", err)
	}
	opts.Secure = true
	if _, err := New(ctx, opts); err == nil {
		t.Error("New with an http:// endpoint and Secure succeeded")
	}
}

// TestCredentialChain uses no static keys: they come from the environment,
// the first provider of the AWS chain.
func TestCredentialChain(t *testing.T) {
	srv := startServer(t)
	bucket := srv.newBucket(t)
	t.Setenv("AWS_ACCESS_KEY_ID", srv.access)
	t.Setenv("AWS_SECRET_ACCESS_KEY", srv.secret)
	t.Setenv("AWS_SESSION_TOKEN", "")
	opts := srv.options(bucket)
	opts.AccessKey, opts.SecretKey = "", ""
	s := newStore(t, opts)
	if _, err := s.Put(context.Background(), "example.com/a/@v/list", strings.NewReader("v1.0.0\n")); err != nil {
		t.Fatal(err)
	}
}

// genReader yields n pseudo-random bytes without holding them, hashing
// what it yields.
type genReader struct {
	rng  *rand.ChaCha8
	left int64
	h    hash.Hash
	// failAt, when >= 0, makes Read fail with err once that many bytes
	// have been read; hook is called at that point instead when set.
	failAt int64
	err    error
	hook   func()
	read   int64
}

func newGen(seed byte, n int64) *genReader {
	return &genReader{rng: rand.NewChaCha8([32]byte{seed}), left: n, h: sha256.New(), failAt: -1}
}

func (g *genReader) Read(p []byte) (int, error) {
	if g.failAt >= 0 && g.read >= g.failAt {
		if g.hook != nil {
			g.hook()
			g.hook = nil
		} else {
			return 0, g.err
		}
	}
	if g.left == 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > g.left {
		p = p[:g.left]
	}
	if g.failAt >= 0 && g.read < g.failAt && g.read+int64(len(p)) > g.failAt {
		p = p[:g.failAt-g.read]
	}
	g.rng.Read(p)
	g.h.Write(p)
	g.left -= int64(len(p))
	g.read += int64(len(p))
	return len(p), nil
}

// heapPeak samples HeapInuse until stop is closed and returns the peak.
func heapPeak(stop <-chan struct{}) <-chan uint64 {
	res := make(chan uint64, 1)
	go func() {
		var peak uint64
		var ms runtime.MemStats
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapInuse)
			select {
			case <-stop:
				res <- peak
				return
			case <-tick.C:
			}
		}
	}()
	return res
}

func heapInuse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// TestStreamLargeObject puts and reads back a 64 MiB object and checks that
// neither holds it in memory.
func TestStreamLargeObject(t *testing.T) {
	const size = 64 << 20
	srv := startServer(t)
	bucket := srv.newBucket(t)
	s := newStore(t, srv.options(bucket)) // 5 MiB parts
	ctx := context.Background()
	key := "example.com/big/@v/v1.0.0.zip"

	// Collect garbage eagerly so that the peak reflects what is held, not
	// what is waiting for the next collection.
	defer debug.SetGCPercent(debug.SetGCPercent(10))
	gen := newGen(1, size)
	base := heapInuse()
	stop := make(chan struct{})
	peak := heapPeak(stop)
	info, err := s.Put(ctx, key, gen)
	close(stop)
	if err != nil {
		t.Fatal(err)
	}
	putDelta := int64(<-peak) - int64(base)
	t.Logf("Put of %d MiB: peak HeapInuse %+d MiB over the start", size>>20, putDelta>>20)
	if putDelta > size/4 {
		t.Errorf("Put held %d MiB of heap for a %d MiB object: not streaming", putDelta>>20, size>>20)
	}
	if info.Size != size || info.ModTime.IsZero() || info.Key != key {
		t.Errorf("Put info = %+v", info)
	}
	oi, err := srv.admin.StatObject(ctx, bucket, key, minio.StatObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if oi.Size != size {
		t.Errorf("stored %d bytes, want %d", oi.Size, size)
	}
	if !strings.Contains(oi.ETag, "-") {
		t.Logf("ETag %q does not look like a multipart upload's", oi.ETag)
	}
	if ct := oi.ContentType; ct != "application/zip" {
		t.Errorf("Content-Type = %q, want application/zip", ct)
	}

	base = heapInuse()
	stop = make(chan struct{})
	peak = heapPeak(stop)
	o, err := s.Open(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	n, err := io.Copy(h, o)
	o.Close()
	close(stop)
	if err != nil || n != size {
		t.Fatalf("read back %d bytes, %v", n, err)
	}
	getDelta := int64(<-peak) - int64(base)
	t.Logf("Open+read of %d MiB: peak HeapInuse %+d MiB over the start", size>>20, getDelta>>20)
	if getDelta > size/4 {
		t.Errorf("reading held %d MiB of heap for a %d MiB object", getDelta>>20, size>>20)
	}
	if !bytes.Equal(h.Sum(nil), gen.h.Sum(nil)) {
		t.Error("read back different bytes")
	}
}

func (srv *testServer) incompleteUploads(t *testing.T, bucket string) []string {
	t.Helper()
	var ids []string
	for u := range srv.admin.ListIncompleteUploads(context.Background(), bucket, "", true) {
		if u.Err != nil {
			t.Fatalf("ListIncompleteUploads: %v", u.Err)
		}
		ids = append(ids, u.Key+" "+u.UploadID)
	}
	return ids
}

// TestFailedMultipartPutKeepsOld fails a multipart upload after two parts,
// by a reader error and by cancellation: the old object stays, and the
// upload is aborted.
func TestFailedMultipartPutKeepsOld(t *testing.T) {
	srv := startServer(t)
	bucket := srv.newBucket(t)
	s := newStore(t, srv.options(bucket))
	ctx := context.Background()
	key := "example.com/a/@v/v1.0.0.zip"
	old := []byte("the old zip")
	if _, err := s.Put(ctx, key, bytes.NewReader(old)); err != nil {
		t.Fatal(err)
	}
	check := func(t *testing.T) {
		t.Helper()
		o, err := s.Open(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		defer o.Close()
		got, err := io.ReadAll(o)
		if err != nil || !bytes.Equal(got, old) {
			t.Fatalf("after the failed Put: %d bytes %q, %v; want the old object", len(got), got[:min(len(got), 20)], err)
		}
		if ups := srv.incompleteUploads(t, bucket); len(ups) != 0 {
			t.Fatalf("multipart uploads left behind: %q", ups)
		}
	}

	t.Run("ReaderError", func(t *testing.T) {
		boom := errors.New("upstream reset")
		gen := newGen(2, 20<<20)
		gen.failAt, gen.err = 12<<20, boom // two 5 MiB parts uploaded, then the error
		_, err := s.Put(ctx, key, gen)
		if !errors.Is(err, boom) {
			t.Fatalf("Put = %v, want %v", err, boom)
		}
		check(t)
	})
	t.Run("Cancel", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		defer cancel()
		gen := newGen(3, 20<<20)
		gen.failAt, gen.hook = 12<<20, cancel
		_, err := s.Put(cctx, key, gen)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Put = %v, want context.Canceled", err)
		}
		check(t)
	})
	t.Run("SinglePartReaderError", func(t *testing.T) {
		boom := errors.New("short read")
		gen := newGen(4, 1<<20)
		gen.failAt, gen.err = 1000, boom
		if _, err := s.Put(ctx, key, gen); !errors.Is(err, boom) {
			t.Fatalf("Put = %v, want %v", err, boom)
		}
		check(t)
	})
}

// TestPartBoundaries puts objects around the part size.
func TestPartBoundaries(t *testing.T) {
	srv := startServer(t)
	s := newStore(t, srv.options(srv.newBucket(t)))
	ctx := context.Background()
	for _, size := range []int64{0, 1, MinPartSize - 1, MinPartSize, MinPartSize + 1, 2 * MinPartSize} {
		key := fmt.Sprintf("example.com/p/@v/v1.0.%d.zip", size)
		gen := newGen(byte(size), size)
		info, err := s.Put(ctx, key, gen)
		if err != nil {
			t.Fatalf("Put(%d bytes): %v", size, err)
		}
		if info.Size != size {
			t.Errorf("Put(%d bytes) info.Size = %d", size, info.Size)
		}
		o, err := s.Open(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.New()
		n, err := io.Copy(h, o)
		o.Close()
		if err != nil || n != size || !bytes.Equal(h.Sum(nil), gen.h.Sum(nil)) {
			t.Errorf("read back %d of %d bytes (%v), equal %v", n, size, err, bytes.Equal(h.Sum(nil), gen.h.Sum(nil)))
		}
	}
}

func TestRangedReads(t *testing.T) {
	srv := startServer(t)
	s := newStore(t, srv.options(srv.newBucket(t)))
	ctx := context.Background()
	key := "example.com/r/@v/v1.0.0.zip"
	data := make([]byte, 3<<20+123)
	rand.NewChaCha8([32]byte{9}).Read(data)
	if _, err := s.Put(ctx, key, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	so, err := s.Open(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	defer so.Close()
	o := so.(*Object)
	size := int64(len(data))

	// ReadAt, including across the end.
	for _, c := range []struct{ off, n int64 }{{0, 10}, {1 << 20, 4096}, {size - 5, 5}, {size - 5, 100}, {size - 1, 1}} {
		p := make([]byte, c.n)
		n, err := o.ReadAt(p, c.off)
		want := data[c.off:min(c.off+c.n, size)]
		if !bytes.Equal(p[:n], want) {
			t.Errorf("ReadAt(%d, %d) returned different bytes", c.off, c.n)
		}
		if c.off+c.n > size && err != io.EOF {
			t.Errorf("ReadAt(%d, %d) past the end: err = %v, want io.EOF", c.off, c.n, err)
		}
		if c.off+c.n <= size && err != nil {
			t.Errorf("ReadAt(%d, %d): %v", c.off, c.n, err)
		}
	}
	if n, err := o.ReadAt(make([]byte, 1), size); n != 0 || err != io.EOF {
		t.Errorf("ReadAt(size) = %d, %v; want 0, io.EOF", n, err)
	}

	// Concurrent ReadAt.
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			off := int64(i) * 300_000
			p := make([]byte, 200_000)
			if n, err := o.ReadAt(p, off); err != nil || !bytes.Equal(p[:n], data[off:off+int64(n)]) {
				t.Errorf("concurrent ReadAt(%d): %d, %v", off, n, err)
			}
		})
	}
	wg.Wait()

	// Seek and Read, mixed with ReadAt (which does not move the position).
	read := func(n int) []byte {
		t.Helper()
		p := make([]byte, n)
		if _, err := io.ReadFull(o, p); err != nil {
			t.Fatalf("Read: %v", err)
		}
		return p
	}
	if !bytes.Equal(read(100), data[:100]) {
		t.Error("Read from the start")
	}
	if pos, err := o.Seek(2<<20, io.SeekStart); err != nil || pos != 2<<20 {
		t.Fatalf("Seek = %d, %v", pos, err)
	}
	if !bytes.Equal(read(1000), data[2<<20:2<<20+1000]) {
		t.Error("Read after Seek(start)")
	}
	o.ReadAt(make([]byte, 10), 5)
	if !bytes.Equal(read(1000), data[2<<20+1000:2<<20+2000]) {
		t.Error("Read after ReadAt")
	}
	if pos, err := o.Seek(-10, io.SeekCurrent); err != nil || pos != 2<<20+1990 {
		t.Fatalf("Seek(current) = %d, %v", pos, err)
	}
	if !bytes.Equal(read(10), data[2<<20+1990:2<<20+2000]) {
		t.Error("Read after Seek(current)")
	}
	if pos, err := o.Seek(-7, io.SeekEnd); err != nil || pos != size-7 {
		t.Fatalf("Seek(end) = %d, %v", pos, err)
	}
	rest, err := io.ReadAll(o)
	if err != nil || !bytes.Equal(rest, data[size-7:]) {
		t.Errorf("ReadAll after Seek(end) = %q, %v", rest, err)
	}
	if _, err := o.Seek(-1, io.SeekStart); err == nil {
		t.Error("Seek to a negative position succeeded")
	}
	if pos, err := o.Seek(size+10, io.SeekStart); err != nil || pos != size+10 {
		t.Errorf("Seek past the end = %d, %v", pos, err)
	}
	if n, err := o.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Errorf("Read past the end = %d, %v", n, err)
	}

	// http.ServeContent with a Range request, as the proxy serves zips.
	o2, err := s.Open(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	defer o2.Close()
	req := httptest.NewRequest("GET", "/x.zip", nil)
	req.Header.Set("Range", "bytes=1000-1999")
	rec := httptest.NewRecorder()
	http.ServeContent(rec, req, "x.zip", o2.Info().ModTime, o2)
	if rec.Code != http.StatusPartialContent || !bytes.Equal(rec.Body.Bytes(), data[1000:2000]) {
		t.Errorf("ServeContent Range: %d, %d bytes", rec.Code, rec.Body.Len())
	}
	o2.Close()
	if _, err := o2.Read(make([]byte, 1)); !errors.Is(err, iofs.ErrClosed) {
		t.Errorf("Read after Close = %v, want fs.ErrClosed", err)
	}
}

// TestReadAfterReplace: an open object keeps reading the version it opened,
// or fails; it never mixes versions.
func TestReadAfterReplace(t *testing.T) {
	srv := startServer(t)
	s := newStore(t, srv.options(srv.newBucket(t)))
	ctx := context.Background()
	key := "example.com/a/@v/list"
	oldData := bytes.Repeat([]byte("a"), 100_000)
	if _, err := s.Put(ctx, key, bytes.NewReader(oldData)); err != nil {
		t.Fatal(err)
	}
	o1, err := s.Open(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	defer o1.Close()
	o2, err := s.Open(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	defer o2.Close()
	if _, err := s.Put(ctx, key, bytes.NewReader(bytes.Repeat([]byte("b"), 100_000))); err != nil {
		t.Fatal(err)
	}
	// The GET issued by Open answered with the old version.
	if got, err := io.ReadAll(o1); err != nil || !bytes.Equal(got, oldData) {
		t.Errorf("sequential read after replace: %d bytes, %v; want the old version", len(got), err)
	}
	// A ranged read of the old version cannot be served any more.
	if _, err := o2.Seek(10, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	if b, err := io.ReadAll(o2); !errors.Is(err, ErrChanged) {
		t.Errorf("ranged read after replace = %d bytes %q, %v; want ErrChanged", len(b), b[:min(len(b), 10)], err)
	}
	if _, err := o2.(*Object).ReadAt(make([]byte, 10), 0); !errors.Is(err, ErrChanged) {
		t.Errorf("ReadAt after replace = %v, want ErrChanged", err)
	}
}

func TestPutIfAbsent(t *testing.T) {
	srv := startServer(t)
	s := newStore(t, srv.options(srv.newBucket(t)))
	ctx := context.Background()
	content := func(key string) string {
		t.Helper()
		o, err := s.Open(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		defer o.Close()
		b, err := io.ReadAll(o)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}

	key := "example.com/a/@v/v1.0.0.mod"
	if created, err := s.PutIfAbsent(ctx, key, strings.NewReader("module example.com/a\n")); err != nil || !created {
		t.Fatalf("first PutIfAbsent = %v, %v; want true", created, err)
	}
	if created, err := s.PutIfAbsent(ctx, key, strings.NewReader("something else\n")); err != nil || created {
		t.Fatalf("second PutIfAbsent = %v, %v; want false", created, err)
	}
	if got := content(key); got != "module example.com/a\n" {
		t.Fatalf("after the second PutIfAbsent: %q", got)
	}
	if _, err := s.PutIfAbsent(ctx, "../x", strings.NewReader("x")); !errors.Is(err, storage.ErrInvalidKey) {
		t.Errorf("PutIfAbsent(../x) = %v, want ErrInvalidKey", err)
	}

	// The conditional write itself, bypassing the Stat that PutIfAbsent
	// does first: this is what closes the race between two writers.
	for _, c := range []struct {
		name string
		size int64
	}{{"SinglePut", 1000}, {"Multipart", MinPartSize + 1000}} {
		t.Run("Conditional"+c.name, func(t *testing.T) {
			key := "example.com/c/@v/" + c.name + ".zip"
			first := newGen(1, c.size)
			if _, err := s.put(ctx, key, s.prefix+key, first, true); err != nil {
				t.Fatal(err)
			}
			_, err := s.put(ctx, key, s.prefix+key, newGen(2, c.size), true)
			h := sha256.Sum256([]byte(content(key)))
			switch {
			case errors.Is(err, errExists):
				if !bytes.Equal(h[:], first.h.Sum(nil)) {
					t.Fatal("the refused conditional write changed the object")
				}
			case err == nil:
				// The documented fallback: a server that ignores
				// If-None-Match lets the write through; only the Stat in
				// PutIfAbsent protects the key, which is safe for
				// identical, immutable artifacts.
				t.Logf("server ignores If-None-Match: PutIfAbsent relies on its Stat (documented fallback)")
			default:
				t.Fatal(err)
			}
		})
	}

	// Racing writers: exactly one creates the object when the server
	// implements conditional writes; the object is one writer's whole.
	key = "example.com/race/@v/v1.0.0.zip"
	var wg sync.WaitGroup
	var createdN atomic.Int64
	for i := range 8 {
		wg.Go(func() {
			created, err := s.PutIfAbsent(ctx, key, strings.NewReader(fmt.Sprintf("writer %d", i)))
			if err != nil {
				t.Error(err)
			}
			if created {
				createdN.Add(1)
			}
		})
	}
	wg.Wait()
	if got := content(key); !strings.HasPrefix(got, "writer ") || len(got) != len("writer 0") {
		t.Errorf("after racing PutIfAbsent: %q", got)
	}
	if n := createdN.Load(); n != 1 {
		if s.noConditional.Load() {
			t.Logf("%d racing writers reported created (no conditional writes: documented fallback)", n)
		} else {
			t.Errorf("%d racing writers reported created, want 1", n)
		}
	}
}

// TestPutIfAbsentNotImplemented puts a proxy in front of the server that
// answers conditional writes with 501, as servers without them may: the
// store falls back to plain writes after its Stat.
func TestPutIfAbsentNotImplemented(t *testing.T) {
	srv := startServer(t)
	bucket := srv.newBucket(t)
	target, _ := url.Parse("http://" + srv.endpoint)
	rp := httputil.NewSingleHostReverseProxy(target)
	var refused atomic.Int64
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("If-None-Match") != "" && (r.Method == http.MethodPut || r.Method == http.MethodPost) {
			refused.Add(1)
			io.Copy(io.Discard, r.Body)
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(http.StatusNotImplemented)
			io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>NotImplemented</Code><Message>A header you provided implies functionality that is not implemented.</Message></Error>`)
			return
		}
		rp.ServeHTTP(w, r)
	}))
	defer front.Close()
	opts := srv.options(bucket)
	opts.Endpoint = strings.TrimPrefix(front.URL, "http://")
	opts.MaxRetries = 1
	s := newStore(t, opts)
	ctx := context.Background()
	for i, size := range []int64{100, MinPartSize + 100} {
		key := fmt.Sprintf("example.com/n/@v/v1.0.%d.zip", i)
		if created, err := s.PutIfAbsent(ctx, key, newGen(1, size)); err != nil || !created {
			t.Fatalf("PutIfAbsent(%d bytes) = %v, %v; want true", size, created, err)
		}
		if created, err := s.PutIfAbsent(ctx, key, newGen(2, size)); err != nil || created {
			t.Fatalf("second PutIfAbsent = %v, %v; want false", created, err)
		}
		if info, err := s.Stat(ctx, key); err != nil || info.Size != size {
			t.Fatalf("Stat = %+v, %v", info, err)
		}
	}
	if refused.Load() != 1 {
		t.Errorf("the proxy refused %d conditional writes, want 1 (then the store stops sending them)", refused.Load())
	}
}

func TestPresignGet(t *testing.T) {
	srv := startServer(t)
	s := newStore(t, srv.options(srv.newBucket(t)))
	ctx := context.Background()
	key := "github.com/!burnt!sushi/toml/@v/v1.3.2+incompatible.zip"
	data := []byte("PK\x03\x04 not really a zip")
	if _, err := s.Put(ctx, key, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	u, err := s.PresignGet(ctx, key, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(u.String())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !bytes.Equal(body, data) {
		t.Fatalf("GET presigned URL: %s, %q", resp.Status, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/zip" {
		t.Errorf("Content-Type = %q, want application/zip", ct)
	}
	// Without the signature the bucket refuses.
	plain := *u
	plain.RawQuery = ""
	if resp, err := http.Get(plain.String()); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Error("unsigned GET succeeded")
		}
	}
	if _, err := s.PresignGet(ctx, "a/../b", time.Minute); !errors.Is(err, storage.ErrInvalidKey) {
		t.Errorf("PresignGet(a/../b) = %v, want ErrInvalidKey", err)
	}
	if _, err := s.PresignGet(ctx, key, 8*24*time.Hour); err == nil {
		t.Error("PresignGet with an 8-day TTL succeeded")
	}
}

func TestStatAndOpenErrors(t *testing.T) {
	srv := startServer(t)
	bucket := srv.newBucket(t)
	s := newStore(t, srv.options(bucket))
	ctx := context.Background()
	if _, err := s.Stat(ctx, "a//b"); !errors.Is(err, storage.ErrInvalidKey) {
		t.Errorf("Stat(a//b) = %v, want ErrInvalidKey", err)
	}
	// A key below an existing object is simply missing.
	if _, err := s.Put(ctx, "example.com/a/@v/list", strings.NewReader("v1.0.0\n")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Open(ctx, "example.com/a/@v/list/x"); !errors.Is(err, iofs.ErrNotExist) {
		t.Errorf("Open(below an object) = %v, want fs.ErrNotExist", err)
	}
	if _, err := s.Stat(ctx, "example.com/a"); !errors.Is(err, iofs.ErrNotExist) {
		t.Errorf("Stat(above an object) = %v, want fs.ErrNotExist", err)
	}
	// A bucket removed under the store is not "object missing".
	if err := srv.admin.RemoveObject(ctx, bucket, "example.com/a/@v/list", minio.RemoveObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := srv.admin.RemoveBucket(ctx, bucket); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Open(ctx, "example.com/a/@v/list"); err == nil || errors.Is(err, iofs.ErrNotExist) {
		t.Errorf("Open in a removed bucket = %v, want an error other than fs.ErrNotExist", err)
	}
}
