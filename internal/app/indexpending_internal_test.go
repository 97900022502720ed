package app

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/modproxy/modproxy/internal/index"
	"github.com/modproxy/modproxy/internal/storage"
	storagefs "github.com/modproxy/modproxy/internal/storage/fs"
)

// failingStat is a store whose Stat fails as an unreachable store does.
type failingStat struct{ storage.Store }

func (failingStat) Stat(context.Context, string) (storage.Info, error) {
	return storage.Info{}, errors.New("store unreachable")
}

// TestApplyPendingIndex: a pending list's stored objects are recorded with
// their sizes, keys not stored or not valid are skipped, and the list is
// removed; a list the store could not answer for stays for the next round.
func TestApplyPendingIndex(t *testing.T) {
	dir := t.TempDir()
	st, err := storagefs.New(filepath.Join(dir, "store"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	const stored = "example.com/a/@v/v1.0.0.mod"
	if _, err := st.Put(ctx, stored, strings.NewReader("module example.com/a\n")); err != nil {
		t.Fatal(err)
	}
	idx, _, err := index.Open(filepath.Join(dir, "index.db"), index.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer idx.Close()

	if err := queueIndexRecords(dir, []string{stored, "example.com/a/@v/v1.0.0.zip", "../../etc/passwd", ""}); err != nil {
		t.Fatal(err)
	}
	lists := func() []string {
		l, _ := filepath.Glob(filepath.Join(pendingIndexDir(dir), "*.keys"))
		return l
	}
	if len(lists()) != 1 {
		t.Fatalf("pending lists %v, want 1", lists())
	}
	// The store does not answer: nothing recorded, the list stays.
	if n, err := applyPendingIndex(ctx, idx, failingStat{st}, dir); n != 0 || err == nil {
		t.Errorf("with the store unreachable: %d recorded, %v; want 0 and an error", n, err)
	}
	if len(lists()) != 1 {
		t.Fatalf("the list was removed though the store did not answer")
	}
	n, err := applyPendingIndex(ctx, idx, st, dir)
	if err != nil || n != 1 {
		t.Fatalf("apply: %d recorded, %v; want 1", n, err)
	}
	if r, ok := idx.Get(stored); !ok || r.Size != int64(len("module example.com/a\n")) {
		t.Errorf("index record of %s: %+v, %v", stored, r, ok)
	}
	if _, ok := idx.Get("example.com/a/@v/v1.0.0.zip"); ok {
		t.Errorf("a key that is not stored was recorded")
	}
	if len(lists()) != 0 {
		t.Errorf("pending lists left: %v", lists())
	}
	if _, err := os.Stat(filepath.Join(dir, "etc")); err == nil {
		t.Errorf("a path outside the store was touched")
	}
	// Nothing pending: nothing to do.
	if n, err := applyPendingIndex(ctx, idx, st, dir); n != 0 || err != nil {
		t.Errorf("with nothing pending: %d, %v", n, err)
	}
}

// TestQueueIndexRecordsSplits: a long key list is written as lists of at
// most pendingListKeys keys, all of which the server reads.
func TestQueueIndexRecordsSplits(t *testing.T) {
	dir := t.TempDir()
	keys := make([]string, pendingListKeys+1)
	for i := range keys {
		keys[i] = "example.com/a/@v/v1.0.0.mod"
	}
	if err := queueIndexRecords(dir, keys); err != nil {
		t.Fatal(err)
	}
	lists, _ := filepath.Glob(filepath.Join(pendingIndexDir(dir), "*.keys"))
	if len(lists) != 2 {
		t.Fatalf("%d lists for %d keys, want 2", len(lists), len(keys))
	}
	total := 0
	for _, l := range lists {
		b, err := os.ReadFile(l)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) > maxPendingList {
			t.Errorf("%s: %d bytes, above the reader's bound", l, len(b))
		}
		total += strings.Count(string(b), "\n")
	}
	if total != len(keys) {
		t.Errorf("%d keys in the lists, want %d", total, len(keys))
	}
}
