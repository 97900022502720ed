package index_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/modproxy/modproxy/internal/index"
	"github.com/modproxy/modproxy/internal/storage"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func open(t *testing.T, path string, opts index.Options) *index.Index {
	t.Helper()
	x, _, err := index.Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := x.Close(); err != nil {
			t.Error(err)
		}
	})
	return x
}

func get(t *testing.T, x *index.Index, key string) index.Record {
	t.Helper()
	r, ok := x.Get(key)
	if !ok {
		t.Fatalf("Get(%s): not indexed", key)
	}
	return r
}

func equal(a, b index.Record) bool {
	return a.Size == b.Size && a.Hits == b.Hits && a.Stored.Equal(b.Stored) && a.LastAccess.Equal(b.LastAccess)
}

func checkTotals(t *testing.T, x *index.Index, bytes, objects int64) {
	t.Helper()
	if b, n := x.Totals(); b != bytes || n != objects {
		t.Errorf("Totals = %d bytes, %d objects; want %d, %d", b, n, bytes, objects)
	}
}

func TestEvents(t *testing.T) {
	path := filepath.Join(t.TempDir(), "index.db")
	x, created, err := index.Open(path, index.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	if !created || x.Path() != path {
		t.Fatalf("Open of a new file: created %v, path %s", created, x.Path())
	}
	const a, b = "example.com/a/@v/v1.0.0.zip", "example.com/b/@v/v1.0.0.mod"
	x.Stored(a, 100, t0)
	x.Stored(b, 50, t0)
	x.Touch(a, t0.Add(2*time.Hour))
	x.Touch(a, t0.Add(time.Hour))            // older: counts a hit, keeps the latest access
	x.Touch("example.com/never/@v/list", t0) // not indexed: ignored
	x.Flush()
	if r := get(t, x, a); !equal(r, index.Record{Size: 100, Stored: t0, LastAccess: t0.Add(2 * time.Hour), Hits: 2}) {
		t.Errorf("after stores and touches: %+v", r)
	}
	if _, ok := x.Get("example.com/never/@v/list"); ok {
		t.Error("a touch indexed an object that was never stored")
	}
	checkTotals(t, x, 150, 2)

	// Storing again replaces size and times, keeps the hits.
	x.Stored(a, 70, t0.Add(3*time.Hour))
	x.Deleted(b)
	x.Deleted("example.com/never/@v/list") // not indexed: no-op
	x.Flush()
	if r := get(t, x, a); !equal(r, index.Record{Size: 70, Stored: t0.Add(3 * time.Hour), LastAccess: t0.Add(3 * time.Hour), Hits: 2}) {
		t.Errorf("after a new store: %+v", r)
	}
	if _, ok := x.Get(b); ok {
		t.Error("deleted object still indexed")
	}
	checkTotals(t, x, 70, 1)
	if x.Dropped() != 0 {
		t.Errorf("Dropped = %d", x.Dropped())
	}
}

func TestAll(t *testing.T) {
	x := open(t, filepath.Join(t.TempDir(), "index.db"), index.Options{})
	keys := []string{"c/@v/list", "a/@v/v1.0.0.mod", "b/@v/v1.0.0.zip", "a/@v/v1.0.0.info"}
	for i, k := range keys {
		x.Stored(k, int64(i+1), t0)
	}
	x.Flush()
	var got []string
	if err := x.All(func(key string, r index.Record) error {
		got = append(got, key)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	want := slices.Sorted(slices.Values(keys))
	if !slices.Equal(got, want) {
		t.Errorf("All visited %q, want %q (key order)", got, want)
	}
	stop := errors.New("stop")
	n := 0
	if err := x.All(func(string, index.Record) error { n++; return stop }); !errors.Is(err, stop) || n != 1 {
		t.Errorf("All with a failing fn = %v after %d calls, want %v after 1", err, n, stop)
	}
}

// TestCloseAppliesPendingAndReopens: Close applies queued events; the
// file keeps records and Open recomputes the totals from it.
func TestCloseAppliesPendingAndReopens(t *testing.T) {
	path := filepath.Join(t.TempDir(), "index.db")
	x, _, err := index.Open(path, index.Options{FlushInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if err := x.Rebuild(context.Background(), walker{}); err != nil {
		t.Fatal(err)
	}
	x.Stored("a/@v/v1.0.0.zip", 10, t0)
	x.Stored("b/@v/v1.0.0.zip", 20, t0)
	x.Touch("a/@v/v1.0.0.zip", t0.Add(time.Minute))
	if err := x.Close(); err != nil {
		t.Fatal(err)
	}
	if err := x.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	y, created, err := index.Open(path, index.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer y.Close()
	if created {
		t.Error("reopen of a rebuilt index reports it stale")
	}
	checkTotals(t, y, 30, 2)
	if r := get(t, y, "a/@v/v1.0.0.zip"); !equal(r, index.Record{Size: 10, Stored: t0, LastAccess: t0.Add(time.Minute), Hits: 1}) {
		t.Errorf("after reopen: %+v", r)
	}
}

func TestOpenCorrupt(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.db")
	if err := os.WriteFile(garbage, []byte("this is not a bbolt file, not at all, no page header here"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := index.Open(garbage, index.Options{}); !errors.Is(err, index.ErrCorrupt) {
		t.Errorf("Open(garbage) = %v, want ErrCorrupt", err)
	}
	// A valid bbolt file with a record that does not decode.
	bad := filepath.Join(dir, "bad.db")
	db, err := bolt.Open(bad, 0o644, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucket([]byte("objects"))
		if err != nil {
			return err
		}
		return b.Put([]byte("a/@v/list"), []byte("short"))
	})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := index.Open(bad, index.Options{}); !errors.Is(err, index.ErrCorrupt) {
		t.Errorf("Open(bad record) = %v, want ErrCorrupt", err)
	}
	// The caller's remedy: remove and open again.
	if err := os.Remove(bad); err != nil {
		t.Fatal(err)
	}
	x, created, err := index.Open(bad, index.Options{})
	if err != nil || !created {
		t.Fatalf("Open after removing = %v, created %v", err, created)
	}
	if err := x.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestOpenLocked: a second Open of a file in use fails with ErrLocked
// after its lock timeout (fake time in a bubble).
func TestOpenLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "index.db")
	synctest.Test(t, func(t *testing.T) {
		x, _, err := index.Open(path, index.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer x.Close()
		start := time.Now()
		if _, _, err := index.Open(path, index.Options{}); !errors.Is(err, index.ErrLocked) {
			t.Fatalf("second Open = %v, want ErrLocked", err)
		}
		if waited := time.Since(start); waited < time.Second {
			t.Errorf("gave up after %v, want the lock timeout", waited)
		}
	})
}

// TestFlushTimerAndBatch: queued events reach the file when the flush
// interval elapses or when a batch is full, without Flush.
func TestFlushTimerAndBatch(t *testing.T) {
	path := filepath.Join(t.TempDir(), "index.db")
	synctest.Test(t, func(t *testing.T) {
		x, _, err := index.Open(path, index.Options{FlushInterval: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		defer x.Close()
		x.Stored("a/@v/list", 1, t0)
		synctest.Wait()
		if _, ok := x.Get("a/@v/list"); ok {
			t.Fatal("applied before the flush interval")
		}
		time.Sleep(time.Minute)
		synctest.Wait()
		if _, ok := x.Get("a/@v/list"); !ok {
			t.Fatal("not applied after the flush interval")
		}
		// A full batch (4096 events) is applied at once.
		for i := range 4095 {
			x.Stored(fmt.Sprintf("b/%d", i), 1, t0)
		}
		synctest.Wait()
		if _, n := x.Totals(); n != 1 {
			t.Fatalf("%d objects before the batch is full, want 1", n)
		}
		x.Stored("c/@v/list", 1, t0)
		synctest.Wait()
		if _, n := x.Totals(); n != 4097 {
			t.Fatalf("%d objects after a full batch, want 4097", n)
		}
	})
}

// walker is a fake store listing.
type walker struct {
	infos []storage.Info
	err   error
}

func (w walker) Walk(ctx context.Context, prefix string, fn func(storage.Info) error) error {
	if w.err != nil {
		return w.err
	}
	for _, i := range w.infos {
		if err := fn(i); err != nil {
			return err
		}
	}
	return nil
}

// TestRebuild: the index becomes what the store holds (sizes, store
// times); hit counts and later accesses of objects still there are kept;
// a failed walk changes nothing.
func TestRebuild(t *testing.T) {
	x := open(t, filepath.Join(t.TempDir(), "index.db"), index.Options{})
	x.Stored("kept", 5, t0)
	x.Touch("kept", t0.Add(time.Hour))
	x.Touch("kept", t0.Add(time.Hour))
	x.Stored("gone", 7, t0)
	x.Stored("stale", 9, t0.Add(time.Hour))
	x.Flush()

	boom := errors.New("bucket unreachable")
	if err := x.Rebuild(context.Background(), walker{err: boom}); !errors.Is(err, boom) {
		t.Fatalf("Rebuild with a failing walk = %v, want %v", err, boom)
	}
	checkTotals(t, x, 21, 3)

	store := walker{infos: []storage.Info{
		{Key: "kept", Size: 6, ModTime: t0.Add(time.Minute)},
		{Key: "stale", Size: 9, ModTime: t0.Add(2 * time.Hour)}, // stored again later
		{Key: "new", Size: 100, ModTime: t0.Add(3 * time.Hour)},
	}}
	if err := x.Rebuild(context.Background(), store); err != nil {
		t.Fatal(err)
	}
	checkTotals(t, x, 115, 3)
	for key, want := range map[string]index.Record{
		"kept":  {Size: 6, Stored: t0.Add(time.Minute), LastAccess: t0.Add(time.Hour), Hits: 2},
		"stale": {Size: 9, Stored: t0.Add(2 * time.Hour), LastAccess: t0.Add(2 * time.Hour)},
		"new":   {Size: 100, Stored: t0.Add(3 * time.Hour), LastAccess: t0.Add(3 * time.Hour)},
	} {
		if r := get(t, x, key); !equal(r, want) {
			t.Errorf("%s after rebuild: %+v, want %+v", key, r, want)
		}
	}
	if _, ok := x.Get("gone"); ok {
		t.Error("an object no longer in the store survived the rebuild")
	}
}

// TestStaleUntilRebuilt: an index file whose first Rebuild did not
// complete (the process was stopped during it, or it failed) is reported
// stale by every Open until a Rebuild completes; a file written before
// the marker existed (only the objects bucket) is not stale.
func TestStaleUntilRebuilt(t *testing.T) {
	path := filepath.Join(t.TempDir(), "index.db")
	reopen := func() (*index.Index, bool) {
		t.Helper()
		x, stale, err := index.Open(path, index.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return x, stale
	}
	x, stale := reopen()
	if !stale {
		t.Fatal("a new index is not stale")
	}
	x.Stored("a/@v/v1.0.0.mod", 1, t0) // served while the rebuild would run
	if err := x.Close(); err != nil {
		t.Fatal(err)
	}
	x, stale = reopen()
	if !stale {
		t.Fatal("an index never rebuilt is not stale on reopen")
	}
	if err := x.Rebuild(context.Background(), walker{err: errors.New("store down")}); err == nil {
		t.Fatal("a failing walk did not fail the rebuild")
	}
	if err := x.Close(); err != nil {
		t.Fatal(err)
	}
	x, stale = reopen()
	if !stale {
		t.Fatal("an index whose rebuild failed is not stale on reopen")
	}
	if err := x.Rebuild(context.Background(), walker{infos: []storage.Info{{Key: "a/@v/v1.0.0.mod", Size: 1, ModTime: t0}}}); err != nil {
		t.Fatal(err)
	}
	if err := x.Close(); err != nil {
		t.Fatal(err)
	}
	x, stale = reopen()
	if stale {
		t.Fatal("a rebuilt index is stale on reopen")
	}
	checkTotals(t, x, 1, 1)
	if err := x.Close(); err != nil {
		t.Fatal(err)
	}

	old := filepath.Join(t.TempDir(), "old.db")
	db, err := bolt.Open(old, 0o644, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucket([]byte("objects"))
		return err
	})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	y, stale, err := index.Open(old, index.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer y.Close()
	if stale {
		t.Error("an index file of an earlier version is reported stale")
	}
}

// duringWalk is a store whose walk lets fn change the index half-way.
type duringWalk struct {
	before, after []storage.Info
	fn            func()
}

func (d duringWalk) Walk(ctx context.Context, prefix string, fn func(storage.Info) error) error {
	for _, i := range d.before {
		if err := fn(i); err != nil {
			return err
		}
	}
	d.fn()
	for _, i := range d.after {
		if err := fn(i); err != nil {
			return err
		}
	}
	return nil
}

// TestRebuildWhileServing: objects stored and deleted while a rebuild
// walks the store (a background rebuild at start-up while the server
// fills and GC runs) are in its result as those events say: stored ones
// the walk had passed are kept, deleted ones the walk had seen are gone.
func TestRebuildWhileServing(t *testing.T) {
	x := open(t, filepath.Join(t.TempDir(), "index.db"), index.Options{})
	st := func(k string, size int64) storage.Info { return storage.Info{Key: k, Size: size, ModTime: t0} }
	store := duringWalk{
		before: []storage.Info{st("a/@v/v1.0.0.mod", 1), st("b/@v/v1.0.0.mod", 2), st("c/@v/v1.0.0.mod", 4)},
		after:  []storage.Info{st("z/@v/v1.0.0.mod", 8)},
		fn: func() {
			x.Stored("a/@v/v1.0.0.zip", 16, t0.Add(time.Hour)) // filled where the walk had been
			x.Deleted("b/@v/v1.0.0.mod")                       // evicted after the walk saw it
			x.Stored("c/@v/v1.0.0.mod", 32, t0.Add(time.Hour)) // written again
			x.Stored("d/@v/v1.0.0.mod", 64, t0.Add(time.Hour))
			x.Deleted("d/@v/v1.0.0.mod") // stored and gone again
			x.Flush()
		},
	}
	if err := x.Rebuild(context.Background(), store); err != nil {
		t.Fatal(err)
	}
	checkTotals(t, x, 1+16+32+8, 4)
	for key, size := range map[string]int64{"a/@v/v1.0.0.mod": 1, "a/@v/v1.0.0.zip": 16, "c/@v/v1.0.0.mod": 32, "z/@v/v1.0.0.mod": 8} {
		if r := get(t, x, key); r.Size != size {
			t.Errorf("%s: size %d, want %d", key, r.Size, size)
		}
	}
	for _, key := range []string{"b/@v/v1.0.0.mod", "d/@v/v1.0.0.mod"} {
		if _, ok := x.Get(key); ok {
			t.Errorf("%s, deleted during the walk, is indexed", key)
		}
	}
	// After the rebuild, events apply to the new records as usual.
	x.Stored("e/@v/v1.0.0.mod", 128, t0)
	x.Flush()
	checkTotals(t, x, 1+16+32+8+128, 5)
}

// TestOpenUncreatable: a place where the file cannot be created (here:
// under a regular file; also an unwritable directory) is not a corrupt
// index (nothing to rename away): the error keeps its *fs.PathError.
func TestOpenUncreatable(t *testing.T) {
	notDir := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(notDir, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	_, _, err := index.Open(filepath.Join(notDir, "index.db"), index.Options{})
	var pe *fs.PathError
	if err == nil || errors.Is(err, index.ErrCorrupt) || !errors.As(err, &pe) {
		t.Fatalf("Open under a regular file = %v, want a *fs.PathError, not ErrCorrupt", err)
	}
}

// TestTotalsRecorded: Open takes the totals the last transaction recorded
// (it does not read every record); after a write by another writer (an
// earlier version of modproxy, which does not record them) it counts
// again.
func TestTotalsRecorded(t *testing.T) {
	path := filepath.Join(t.TempDir(), "index.db")
	x, _, err := index.Open(path, index.Options{})
	if err != nil {
		t.Fatal(err)
	}
	x.Stored("a/@v/v1.0.0.zip", 10, t0)
	x.Stored("b/@v/v1.0.0.zip", 20, t0)
	x.Flush()
	x.Deleted("a/@v/v1.0.0.zip")
	if err := x.Close(); err != nil {
		t.Fatal(err)
	}
	y, _, err := index.Open(path, index.Options{})
	if err != nil {
		t.Fatal(err)
	}
	checkTotals(t, y, 20, 1)
	if err := y.Close(); err != nil {
		t.Fatal(err)
	}

	db, err := bolt.Open(path, 0o644, nil)
	if err != nil {
		t.Fatal(err)
	}
	rec := make([]byte, 32)
	rec[7] = 5 // size 5
	err = db.Update(func(tx *bolt.Tx) error { return tx.Bucket([]byte("objects")).Put([]byte("c/@v/v1.0.0.mod"), rec) })
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	z := open(t, path, index.Options{})
	checkTotals(t, z, 25, 2)
}

// TestRebuildInBatches: a store of many times the batch size is indexed
// whole; records of objects no longer there go at the end; a walk that
// fails half-way removes nothing and leaves the index stale.
func TestRebuildInBatches(t *testing.T) {
	path := filepath.Join(t.TempDir(), "index.db")
	x, stale, err := index.Open(path, index.Options{})
	if err != nil || !stale {
		t.Fatalf("Open: %v, stale %v", err, stale)
	}
	defer x.Close()
	x.Stored("gone/@v/v1.0.0.mod", 1000, t0)
	x.Stored("m00042/@v/v1.0.0.mod", 1, t0)
	x.Touch("m00042/@v/v1.0.0.mod", t0.Add(time.Hour))
	x.Flush()
	var infos []storage.Info
	for i := range 20_000 {
		infos = append(infos, storage.Info{Key: fmt.Sprintf("m%05d/@v/v1.0.0.mod", i), Size: 2, ModTime: t0})
	}
	half := errors.New("walk broke half-way")
	failing := duringWalk{before: infos[:10_000], fn: func() {}}
	if err := x.Rebuild(context.Background(), errAfter{failing, half}); !errors.Is(err, half) {
		t.Fatalf("Rebuild with a failing walk: %v", err)
	}
	if _, ok := x.Get("gone/@v/v1.0.0.mod"); !ok {
		t.Error("a failed rebuild removed a record")
	}
	if err := x.Rebuild(context.Background(), walker{infos: infos}); err != nil {
		t.Fatal(err)
	}
	checkTotals(t, x, 40_000, 20_000)
	if _, ok := x.Get("gone/@v/v1.0.0.mod"); ok {
		t.Error("the record of an object no longer stored survived")
	}
	if r := get(t, x, "m00042/@v/v1.0.0.mod"); r.Hits != 1 || !r.LastAccess.Equal(t0.Add(time.Hour)) || r.Size != 2 {
		t.Errorf("kept record: %+v", r)
	}
	if err := x.Close(); err != nil {
		t.Fatal(err)
	}
	y, stale, err := index.Open(path, index.Options{})
	if err != nil || stale {
		t.Fatalf("reopen: %v, stale %v", err, stale)
	}
	defer y.Close()
	checkTotals(t, y, 40_000, 20_000)
}

// errAfter walks w, then fails.
type errAfter struct {
	w   index.Walker
	err error
}

func (e errAfter) Walk(ctx context.Context, prefix string, fn func(storage.Info) error) error {
	if err := e.w.Walk(ctx, prefix, fn); err != nil {
		return err
	}
	return e.err
}
