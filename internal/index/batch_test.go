package index

import (
	"fmt"
	"path/filepath"
	"testing"
	"testing/synctest"
	"time"
)

// TestTouchesMerged applies touches, stores and deletes queued together
// (one batch) and checks that merged touches count every hit, keep the
// latest access, and stay in order with the key's other events.
func TestTouchesMerged(t *testing.T) {
	x, created, err := Open(filepath.Join(t.TempDir(), "index.db"), Options{FlushInterval: time.Hour})
	if err != nil || !created {
		t.Fatalf("Open: created %v, %v", created, err)
	}
	defer func() {
		if err := x.Close(); err != nil {
			t.Error(err)
		}
	}()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }

	x.Stored("a", 10, at(0))
	x.Touch("a", at(2))
	x.Touch("a", at(3))
	x.Touch("a", at(1)) // earlier than the last: counted, not the last access
	x.Touch("b", at(1)) // before b is stored: ignored, as a touch of an unknown key
	x.Stored("b", 20, at(4))
	x.Touch("b", at(5))
	x.Stored("c", 30, at(0))
	x.Touch("c", at(1))
	x.Deleted("c")
	x.Touch("d", at(1)) // never stored
	x.Flush()

	for key, want := range map[string]Record{
		"a": {Size: 10, Stored: at(0), LastAccess: at(3), Hits: 3},
		"b": {Size: 20, Stored: at(4), LastAccess: at(5), Hits: 1},
	} {
		got, ok := x.Get(key)
		if !ok || got.Size != want.Size || !got.Stored.Equal(want.Stored) || !got.LastAccess.Equal(want.LastAccess) || got.Hits != want.Hits {
			t.Errorf("%s: %+v (found %v), want %+v", key, got, ok, want)
		}
	}
	for _, key := range []string{"c", "d"} {
		if r, ok := x.Get(key); ok {
			t.Errorf("%s: %+v, want no record", key, r)
		}
	}
	if b, n := x.Totals(); b != 30 || n != 2 {
		t.Errorf("totals %d bytes, %d objects, want 30, 2", b, n)
	}

	// A later batch adds to the counts.
	x.Touch("a", at(9))
	x.Touch("a", at(8))
	x.Flush()
	if r, _ := x.Get("a"); r.Hits != 5 || !r.LastAccess.Equal(at(9)) {
		t.Errorf("a after the second batch: %+v, want 5 hits, last access %v", r, at(9))
	}
}

// TestBatchWithoutTick checks that a full batch is applied before the
// next tick, and a smaller one not (with no tick, on synctest's clock).
func TestBatchWithoutTick(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		x, _, err := Open(filepath.Join(t.TempDir(), "index.db"), Options{FlushInterval: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		defer x.Close()
		at := time.Now()
		for i := range batchSize - 1 {
			x.Stored(fmt.Sprint(i), 1, at)
		}
		synctest.Wait()
		if _, n := x.Totals(); n != 0 {
			t.Errorf("%d objects applied before a batch was full, want 0", n)
		}
		x.Stored("last", 1, at)
		synctest.Wait()
		if _, n := x.Totals(); n != batchSize {
			t.Errorf("%d objects applied once a batch was full, want %d", n, batchSize)
		}
	})
}
