package hosted

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modproxy/modproxy/internal/storage"
	s3store "github.com/modproxy/modproxy/internal/storage/s3"
	"github.com/modproxy/modproxy/internal/storage/s3/s3test"
)

// segTestSize is the segment size of these tests: small, so that a few
// appends fill segments.
const segTestSize = 4

func segBucket(t *testing.T) (*s3store.Store, string) {
	t.Helper()
	srv := s3test.Start(t)
	st, err := s3store.New(context.Background(), s3store.Options{Endpoint: srv.Endpoint, Region: "us-east-1", Bucket: srv.NewBucket(t),
		AccessKey: s3test.AccessKey, SecretKey: s3test.SecretKey, PathStyle: true, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	key, _, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return st, key
}

// countingStore records the keys opened through it.
type countingStore struct {
	SharedStore
	mu     sync.Mutex
	opened []string
}

func (c *countingStore) Open(ctx context.Context, key string) (storage.Object, error) {
	c.mu.Lock()
	c.opened = append(c.opened, key)
	c.mu.Unlock()
	return c.SharedStore.Open(ctx, key)
}

func openSeg(t *testing.T, st SharedStore, key, dir string, writable bool) *Log {
	t.Helper()
	l, err := openSharedLog(context.Background(), st, key, dir, writable, segTestSize)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func segEntry(i int) Entry {
	return Entry{Zip: fmt.Sprintf("h1:zip%d=", i), Mod: fmt.Sprintf("h1:mod%d=", i)}
}

func appendN(t *testing.T, l *Log, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		if n, err := l.Append(context.Background(), "corp.example.com/m", fmt.Sprintf("v1.0.%d", i), segEntry(i)); err != nil || n != int64(i) {
			t.Fatalf("append %d: %d %v", i, n, err)
		}
	}
}

func readObj(t *testing.T, st SharedStore, key string) ([]byte, bool) {
	t.Helper()
	b, err := storage.ReadSmall(context.Background(), st, key, 1<<20)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false
	}
	if err != nil {
		t.Fatal(err)
	}
	return b, true
}

func segKey(i int) string { return fmt.Sprintf("%s%012d", SharedSegmentPrefix, i) }
func recKey(i int) string { return fmt.Sprintf("%s%012d", SharedLogPrefix, i) }

// TestSharedLogSegments: the writer seals every full run of records into a
// segment; a replica's start reads the segments instead of those records
// and sees the same log; a missing segment is read from the records and
// written again by a writable replica (the same bytes), never by a
// read-only one.
func TestSharedLogSegments(t *testing.T) {
	ctx := context.Background()
	st, key := segBucket(t)
	w := openSeg(t, st, key, t.TempDir(), true)
	appendN(t, w, 0, 10)
	seg0, ok0 := readObj(t, st, segKey(0))
	seg4, ok4 := readObj(t, st, segKey(4))
	if !ok0 || !ok4 {
		t.Fatalf("segments after 10 appends: 0 %v, 4 %v", ok0, ok4)
	}
	if _, ok := readObj(t, st, segKey(8)); ok {
		t.Fatal("a segment of a run that is not full")
	}
	rec2, _ := readObj(t, st, recKey(2))
	if !bytes.Contains(seg0, rec2[:bytes.Index(rec2, []byte("\n"))]) {
		t.Fatalf("segment 0 does not hold record 2:\n%s", seg0)
	}

	check := func(l *Log, n int64) {
		t.Helper()
		if l.Fault() != nil {
			t.Fatal(l.Fault())
		}
		wt, _ := w.Head()
		if tree, _ := l.Head(); tree.N != n || tree != wt {
			t.Fatalf("head %+v, the writer's %+v", tree, wt)
		}
		for i := range int(n) {
			if e, ok := l.Lookup("corp.example.com/m", fmt.Sprintf("v1.0.%d", i)); !ok || e.Index != int64(i) || e.Zip != segEntry(i).Zip {
				t.Fatalf("lookup %d: %+v %v", i, e, ok)
			}
		}
	}
	c := &countingStore{SharedStore: st}
	r := openSeg(t, c, key, t.TempDir(), false)
	check(r, 10)
	for _, k := range c.opened {
		for i := range 8 {
			if k == recKey(i) {
				t.Errorf("record %d read although a segment holds it (opened %v)", i, c.opened)
			}
		}
	}
	if got := strings.Join(c.opened, " "); !strings.Contains(got, segKey(0)) || !strings.Contains(got, segKey(4)) || !strings.Contains(got, recKey(9)) {
		t.Fatalf("opened %s", got)
	}

	// Segment 4 lost: a read-only replica reads records 4 to 9 and writes
	// nothing; a writable one writes the segment again.
	if err := st.Delete(ctx, segKey(4)); err != nil {
		t.Fatal(err)
	}
	check(openSeg(t, st, key, t.TempDir(), false), 10)
	if _, ok := readObj(t, st, segKey(4)); ok {
		t.Fatal("a read-only log wrote a segment")
	}
	check(openSeg(t, st, key, t.TempDir(), true), 10)
	if again, ok := readObj(t, st, segKey(4)); !ok || !bytes.Equal(again, seg4) {
		t.Fatalf("segment 4 written again: %v, same bytes %v", ok, bytes.Equal(again, seg4))
	}

	// The writer goes on: the next full run is sealed, and a replica that
	// read the log before sees it after Sync.
	appendN(t, w, 10, 13)
	if _, ok := readObj(t, st, segKey(8)); !ok {
		t.Fatal("segment 8 not written after record 11")
	}
	if err := r.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	check(r, 13)
	if tree, err := w.Check(ctx); err != nil || tree.N != 13 {
		t.Fatalf("check: %+v %v", tree, err)
	}
}

// TestSharedLogSegmentTampered: a segment whose records were changed, or
// that cannot be parsed, makes the log fault with only the verified prefix
// believed; removing the segment heals it (it is written again from the
// records). A record object changed under an intact segment is not seen by
// replicas, which read the segment, but Check (modproxy verify) finds it.
func TestSharedLogSegmentTampered(t *testing.T) {
	ctx := context.Background()
	st, key := segBucket(t)
	w := openSeg(t, st, key, t.TempDir(), true)
	appendN(t, w, 0, 9)
	seg4, _ := readObj(t, st, segKey(4))
	put := func(k string, b []byte) {
		t.Helper()
		if _, err := st.Put(ctx, k, bytes.NewReader(b)); err != nil {
			t.Fatal(err)
		}
	}

	for name, bad := range map[string][]byte{
		"a changed record": bytes.Replace(seg4, []byte(segEntry(5).Zip), []byte(segEntry(99).Zip), 1),
		"not a segment":    []byte("garbage\n"),
	} {
		put(segKey(4), bad)
		l := openSeg(t, st, key, t.TempDir(), true)
		if err := l.Fault(); !errors.Is(err, ErrTampered) {
			t.Fatalf("%s: fault %v, want ErrTampered", name, err)
		}
		if _, ok := l.Lookup("corp.example.com/m", "v1.0.5"); ok {
			t.Fatalf("%s: a record of the segment that does not verify is believed", name)
		}
		if name == "a changed record" { // the segment before it verifies
			if tree, _ := l.Head(); tree.N != 4 {
				t.Fatalf("%s: head %+v, want the verified prefix of 4 records", name, tree)
			}
			for i := range 4 {
				if e, ok := l.Lookup("corp.example.com/m", fmt.Sprintf("v1.0.%d", i)); !ok || e.Zip != segEntry(i).Zip {
					t.Fatalf("%s: record %d of the verified prefix: %+v %v", name, i, e, ok)
				}
			}
		}
		if _, err := l.Append(ctx, "corp.example.com/m", "v2.0.0", segEntry(50)); !errors.Is(err, ErrTampered) {
			t.Fatalf("%s: append to a log that does not verify: %v", name, err)
		}
		if _, err := w.Check(ctx); !errors.Is(err, ErrTampered) {
			t.Fatalf("%s: check: %v", name, err)
		}
		if err := st.Delete(ctx, segKey(4)); err != nil {
			t.Fatal(err)
		}
		if err := l.Sync(ctx); err != nil || l.Fault() != nil {
			t.Fatalf("%s: after the segment was removed: %v %v", name, err, l.Fault())
		}
		if again, ok := readObj(t, st, segKey(4)); !ok || !bytes.Equal(again, seg4) {
			t.Fatalf("%s: the segment not written again", name)
		}
		if tree, _ := l.Head(); tree.N != 9 {
			t.Fatalf("%s: healed log %+v", name, tree)
		}
	}

	rec1, _ := readObj(t, st, recKey(1))
	put(recKey(1), bytes.Replace(rec1, []byte(segEntry(1).Zip), []byte(segEntry(98).Zip), 1))
	if l := openSeg(t, st, key, t.TempDir(), false); l.Fault() != nil {
		t.Fatalf("a replica reading the intact segment: %v", l.Fault())
	}
	if _, err := w.Check(ctx); !errors.Is(err, ErrTampered) {
		t.Fatalf("check with a changed record under its segment: %v, want ErrTampered", err)
	}
}

// TestSharedLogMissingRecordObject: a record object that is lost is found.
// Under an intact segment replicas do not read it, but Check (modproxy
// verify) reports it; among the records after the segments, a missing one
// with a later one present makes the log fault, so that no writer appends
// a different record in its place.
func TestSharedLogMissingRecordObject(t *testing.T) {
	ctx := context.Background()
	st, key := segBucket(t)
	w := openSeg(t, st, key, t.TempDir(), true)
	appendN(t, w, 0, 10) // segments at 0 and 4, records 8 and 9 after them
	if _, err := w.Check(ctx); err != nil {
		t.Fatalf("control: check of the intact log: %v", err)
	}

	if err := st.Delete(ctx, recKey(2)); err != nil {
		t.Fatal(err)
	}
	if l := openSeg(t, st, key, t.TempDir(), false); l.Fault() != nil {
		t.Fatalf("a replica reading the intact segment: %v", l.Fault())
	}
	if _, err := w.Check(ctx); !errors.Is(err, ErrTampered) || !strings.Contains(err.Error(), "record 2 is missing") {
		t.Fatalf("check with record 2's object missing under its segment: %v, want ErrTampered naming record 2", err)
	}

	if err := st.Delete(ctx, recKey(8)); err != nil {
		t.Fatal(err)
	}
	l := openSeg(t, st, key, t.TempDir(), true)
	if err := l.Fault(); !errors.Is(err, ErrTampered) || !strings.Contains(err.Error(), "record 8 is missing") {
		t.Fatalf("open with record 8 missing and record 9 present: fault %v, want ErrTampered naming record 8", err)
	}
	if _, err := l.Append(ctx, "corp.example.com/m", "v2.0.0", segEntry(50)); !errors.Is(err, ErrTampered) {
		t.Fatalf("append to a log with a lost record: %v, want ErrTampered", err)
	}
	if _, ok := readObj(t, st, recKey(8)); ok {
		t.Fatal("a record was written in place of the lost one")
	}
}

// lateStore answers the first open of one key as missing: the read of a
// record answered just before a writer committed it and the next one,
// while the read of that next one, in the same batch, found it.
type lateStore struct {
	SharedStore
	key  string
	once sync.Once
}

func (l *lateStore) Open(ctx context.Context, key string) (storage.Object, error) {
	late := false
	if key == l.key {
		l.once.Do(func() { late = true })
	}
	if late {
		return nil, fs.ErrNotExist
	}
	return l.SharedStore.Open(ctx, key)
}

// TestSharedLogConcurrentCommitNotTampered: a record read as missing while
// a later one in the same batch exists is read again before it is called
// lost; one committed meanwhile (a publish on another replica racing the
// read) is no fault, and the next sync reads on from it.
func TestSharedLogConcurrentCommitNotTampered(t *testing.T) {
	ctx := context.Background()
	st, key := segBucket(t)
	w := openSeg(t, st, key, t.TempDir(), true)
	appendN(t, w, 0, 10) // segments at 0 and 4, records 8 and 9 after them
	l := openSeg(t, &lateStore{SharedStore: st, key: recKey(8)}, key, t.TempDir(), true)
	if err := l.Fault(); err != nil {
		t.Fatalf("a record committed while the batch was read: fault %v", err)
	}
	if tree, _ := l.Head(); tree.N != 8 {
		t.Fatalf("head %+v, want the 8 records before the one read as missing", tree)
	}
	if err := l.Sync(ctx); err != nil || l.Fault() != nil {
		t.Fatalf("sync: %v %v", err, l.Fault())
	}
	if tree, _ := l.Head(); tree.N != 10 {
		t.Fatalf("head after sync %+v, want 10", tree)
	}
}

// TestSharedLogLostRecordAtSync: a replica syncing from the end of its log
// reads one record; when that one is missing but the next exists (another
// replica appended both, then the first was lost), the sync faults and the
// replica does not append a different record in its place.
func TestSharedLogLostRecordAtSync(t *testing.T) {
	ctx := context.Background()
	st, key := segBucket(t)
	w := openSeg(t, st, key, t.TempDir(), true)
	appendN(t, w, 0, 9)
	r := openSeg(t, st, key, t.TempDir(), true)
	appendN(t, w, 9, 11)
	if err := st.Delete(ctx, recKey(9)); err != nil {
		t.Fatal(err)
	}
	if err := r.Sync(ctx); !errors.Is(err, ErrTampered) || !strings.Contains(err.Error(), "record 9 is missing") {
		t.Fatalf("sync with record 9 lost and record 10 present: %v, want ErrTampered naming record 9", err)
	}
	if _, err := r.Append(ctx, "corp.example.com/m", "v2.0.0", segEntry(50)); !errors.Is(err, ErrTampered) {
		t.Fatalf("append after the sync: %v, want ErrTampered", err)
	}
	if _, ok := readObj(t, st, recKey(9)); ok {
		t.Fatal("a record was written in place of the lost one")
	}
}
