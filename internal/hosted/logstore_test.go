package hosted_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/modproxy/modproxy/internal/hosted"
	s3store "github.com/modproxy/modproxy/internal/storage/s3"
	"github.com/modproxy/modproxy/internal/storage/s3/s3test"
)

// sharedBucket returns a store on a new bucket of a real S3-compatible
// server, and a signer key for the log.
func sharedBucket(t *testing.T) (*s3store.Store, string) { return sharedBucketB(t) }

func sharedBucketB(t testing.TB) (*s3store.Store, string) {
	t.Helper()
	srv := s3test.Start(t)
	st, err := s3store.New(context.Background(), s3store.Options{Endpoint: srv.Endpoint, Region: "us-east-1", Bucket: srv.NewBucket(t),
		Prefix: "mp/", AccessKey: s3test.AccessKey, SecretKey: s3test.SecretKey, PathStyle: true, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	skey, _, err := hosted.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return st, skey
}

func openShared(t *testing.T, st *s3store.Store, key, stateDir string) *hosted.Log {
	t.Helper()
	l, err := hosted.OpenSharedLog(context.Background(), st, key, stateDir, true)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func recordKey(i int) string { return fmt.Sprintf("%s%012d", hosted.SharedLogPrefix, i) }

// TestSharedLogReplicas: two replicas append to one log in a bucket, each
// sees the other's records after Sync, and two appends at one index
// commit only one.
func TestSharedLogReplicas(t *testing.T) {
	ctx := context.Background()
	st, key := sharedBucket(t)
	a := openShared(t, st, key, t.TempDir())
	b := openShared(t, st, key, t.TempDir())
	for i := range byte(3) {
		if n, err := a.Append(ctx, "corp.example.com/m", "v1.0."+string('0'+i), entry(i)); err != nil || n != int64(i) {
			t.Fatalf("append %d: %d %v", i, n, err)
		}
	}
	if e, ok := b.Lookup("corp.example.com/m", "v1.0.1"); ok {
		t.Fatalf("b sees a record before it read the log: %+v", e)
	}
	if err := b.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if e, ok := b.Lookup("corp.example.com/m", "v1.0.1"); !ok || e.Index != 1 || e.Zip != entry(1).Zip {
		t.Fatalf("b after Sync: %+v %v", e, ok)
	}
	ta, _ := a.Head()
	tb, _ := b.Head()
	if ta != tb || tb.N != 3 {
		t.Fatalf("heads differ: %+v %+v", ta, tb)
	}
	// Both at size 3: a commits index 3, b's append at 3 is refused.
	if _, err := a.Append(ctx, "corp.example.com/m", "v1.1.0", entry(5)); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Append(ctx, "corp.example.com/other", "v1.0.0", entry(6)); !errors.Is(err, hosted.ErrRaced) {
		t.Fatalf("second append at one index: %v, want ErrRaced", err)
	}
	if _, ok := b.Lookup("corp.example.com/other", "v1.0.0"); ok {
		t.Fatal("a refused append is in the log")
	}
	if err := b.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if n, err := b.Append(ctx, "corp.example.com/other", "v1.0.0", entry(6)); err != nil || n != 4 {
		t.Fatalf("append after Sync: %d %v", n, err)
	}
	if err := a.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	for _, l := range []*hosted.Log{a, b} {
		if tree, err := l.Check(ctx); err != nil || tree.N != 5 {
			t.Fatalf("check: %+v %v", tree, err)
		}
		if e, ok := l.Lookup("corp.example.com/other", "v1.0.0"); !ok || e.Index != 4 {
			t.Fatalf("lookup: %+v %v", e, ok)
		}
	}
	// A third replica starting now reads all five, each checked against
	// the head signed with it.
	c := openShared(t, st, key, t.TempDir())
	if tree, _ := c.Head(); tree.N != 5 || c.Fault() != nil {
		t.Fatalf("a new replica: %+v %v", tree, c.Fault())
	}
}

// TestSharedLogTamperDetected: a record changed in the bucket, records
// removed from its end, and a history rewritten with the key are each
// found: by a replica that reads them, and by one that saw the log before
// (against the head it remembers, across its restart); appends are then
// refused.
func TestSharedLogTamperDetected(t *testing.T) {
	ctx := context.Background()
	st, key := sharedBucket(t)
	dirA := t.TempDir()
	a := openShared(t, st, key, dirA)
	for i := range byte(4) {
		if _, err := a.Append(ctx, "corp.example.com/m", "v1.0."+string('0'+i), entry(i)); err != nil {
			t.Fatal(err)
		}
	}
	obj := func(i int) []byte {
		t.Helper()
		o, err := st.Open(ctx, recordKey(i))
		if err != nil {
			t.Fatal(err)
		}
		defer o.Close()
		var b bytes.Buffer
		if _, err := b.ReadFrom(o); err != nil {
			t.Fatal(err)
		}
		return b.Bytes()
	}
	put := func(i int, b []byte) {
		t.Helper()
		if _, err := st.Put(ctx, recordKey(i), bytes.NewReader(b)); err != nil {
			t.Fatal(err)
		}
	}

	// 1. A changed record: a new replica stops before it.
	good := obj(1)
	bad := bytes.Replace(good, []byte(entry(1).Zip), []byte(entry(9).Zip), 1)
	put(1, bad)
	c := openShared(t, st, key, t.TempDir())
	if err := c.Fault(); !errors.Is(err, hosted.ErrTampered) {
		t.Fatalf("a changed record: fault %v, want ErrTampered", err)
	}
	if tree, _ := c.Head(); tree.N != 1 {
		t.Fatalf("the verified prefix: %+v, want 1 record", tree)
	}
	if _, ok := c.Lookup("corp.example.com/m", "v1.0.1"); ok {
		t.Fatal("the changed record was believed")
	}
	if _, err := c.Append(ctx, "corp.example.com/m", "v2.0.0", entry(7)); !errors.Is(err, hosted.ErrTampered) {
		t.Fatalf("append to a log that does not verify: %v", err)
	}
	if _, err := a.Check(ctx); !errors.Is(err, hosted.ErrTampered) {
		t.Fatalf("check by a replica that had the record: %v", err)
	}
	put(1, good)
	if err := c.Sync(ctx); err != nil || c.Fault() != nil {
		t.Fatalf("restored: %v %v", err, c.Fault())
	}

	// 2. Records removed from the end: a replica that saw them, restarted,
	// finds fewer than it saw.
	last := obj(3)
	if err := st.Delete(ctx, recordKey(3)); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Check(ctx); !errors.Is(err, hosted.ErrTampered) {
		t.Fatalf("check after a removed record: %v", err)
	}
	a2, err := hosted.OpenSharedLog(ctx, st, key, dirA, true)
	if err != nil {
		t.Fatal(err)
	}
	if err := a2.Fault(); !errors.Is(err, hosted.ErrTampered) {
		t.Fatalf("restart after a removed record: %v, want ErrTampered", err)
	}
	if _, err := a2.Append(ctx, "corp.example.com/m", "v2.0.0", entry(7)); !errors.Is(err, hosted.ErrTampered) {
		t.Fatalf("append after a rollback: %v", err)
	}

	// 3. A rewritten history (someone with the key appends another record
	// at index 3): it verifies on its own, but not against what a saw.
	d := openShared(t, st, key, t.TempDir())
	if _, err := d.Append(ctx, "corp.example.com/m", "v1.0.3", entry(8)); err != nil {
		t.Fatal(err)
	}
	if d.Fault() != nil {
		t.Fatal(d.Fault())
	}
	a3, err := hosted.OpenSharedLog(ctx, st, key, dirA, true)
	if err != nil {
		t.Fatal(err)
	}
	if err := a3.Fault(); !errors.Is(err, hosted.ErrTampered) {
		t.Fatalf("restart after a rewritten history: %v, want ErrTampered", err)
	}
	// The original record back: a's view verifies again.
	if err := st.Delete(ctx, recordKey(3)); err != nil {
		t.Fatal(err)
	}
	put(3, last)
	if err := a3.Sync(ctx); err != nil {
		t.Fatalf("after the bucket was restored: %v", err)
	}
	if _, err := a3.Append(ctx, "corp.example.com/m", "v2.0.0", entry(7)); err != nil {
		t.Fatal(err)
	}
	if _, err := hosted.OpenSharedLog(ctx, st, key, filepath.Join(t.TempDir(), "ro"), false); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkOpenSharedLog measures a replica's start: reading and checking
// a shared log of 1,000 records from a real S3-compatible server on
// loopback.
func BenchmarkOpenSharedLog(b *testing.B) {
	ctx := context.Background()
	st, key := sharedBucketB(b)
	w, err := hosted.OpenSharedLog(ctx, st, key, b.TempDir(), true)
	if err != nil {
		b.Fatal(err)
	}
	for i := range 1000 {
		if _, err := w.Append(ctx, "corp.example.com/m", fmt.Sprintf("v1.0.%d", i), entry(byte(i%26))); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for range b.N {
		l, err := hosted.OpenSharedLog(ctx, st, key, b.TempDir(), true)
		if err != nil || l.Fault() != nil {
			b.Fatal(err, l.Fault())
		}
	}
}

// BenchmarkSharedAppend measures one append to a shared log (a
// conditional create of one object) on loopback.
func BenchmarkSharedAppend(b *testing.B) {
	ctx := context.Background()
	st, key := sharedBucketB(b)
	w, err := hosted.OpenSharedLog(ctx, st, key, b.TempDir(), true)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := range b.N {
		if _, err := w.Append(ctx, "corp.example.com/m", fmt.Sprintf("v1.0.%d", i), entry(byte(i%26))); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkOpenDirLog is the reference for BenchmarkOpenSharedLog: the
// same 1,000 records in a directory.
func BenchmarkOpenDirLog(b *testing.B) {
	ctx := context.Background()
	dir := filepath.Join(b.TempDir(), "log")
	w, err := hosted.OpenLog(dir, true, "")
	if err != nil {
		b.Fatal(err)
	}
	for i := range 1000 {
		if _, err := w.Append(ctx, "corp.example.com/m", fmt.Sprintf("v1.0.%d", i), entry(byte(i%26))); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for range b.N {
		if _, err := hosted.OpenLog(dir, true, ""); err != nil {
			b.Fatal(err)
		}
	}
}

// TestSharedLogUnparsableRecord: a record object that is not a record at
// all makes the log fault (before, the replica opened an empty log without
// a fault and went on answering as if nothing were published).
func TestSharedLogUnparsableRecord(t *testing.T) {
	ctx := context.Background()
	st, key := sharedBucket(t)
	a := openShared(t, st, key, t.TempDir())
	for i := range byte(2) {
		if _, err := a.Append(ctx, "corp.example.com/m", "v1.0."+string('0'+i), entry(i)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := st.Put(ctx, recordKey(1), bytes.NewReader([]byte("garbage"))); err != nil {
		t.Fatal(err)
	}
	b := openShared(t, st, key, t.TempDir())
	if err := b.Fault(); !errors.Is(err, hosted.ErrTampered) {
		t.Fatalf("fault %v, want ErrTampered", err)
	}
	if _, err := b.Append(ctx, "corp.example.com/m", "v2.0.0", entry(7)); !errors.Is(err, hosted.ErrTampered) {
		t.Fatalf("append: %v, want ErrTampered", err)
	}
	if err := a.Sync(ctx); err != nil {
		t.Fatalf("a replica that read both records before: %v", err)
	}
}
