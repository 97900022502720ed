package index_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/modproxy/modproxy/internal/index"
)

// TestReader: a read-only view sees what an Index wrote, with the same
// totals; it never creates a file; it cannot open a file an Index holds
// (a running server), and an Index cannot open a file a Reader holds.
func TestReader(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "index.db")

	if _, err := index.OpenReader(path); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("OpenReader of a missing file: %v, want fs.ErrNotExist", err)
	}
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("OpenReader created the file: %v", err)
	}

	x, _, err := index.Open(path, index.Options{})
	if err != nil {
		t.Fatal(err)
	}
	x.Stored("example.com/a/@v/v1.0.0.zip", 1000, t0)
	x.Stored("example.com/a/@v/v1.0.0.mod", 20, t0)
	x.Stored("example.com/a/@v/list", 7, t0)
	x.Flush()
	if _, err := index.OpenReader(path); !errors.Is(err, index.ErrLocked) {
		t.Errorf("OpenReader while an Index holds the file: %v, want ErrLocked", err)
	}
	wantBytes, wantObjects := x.Totals()
	if err := x.Close(); err != nil {
		t.Fatal(err)
	}

	r1, err := index.OpenReader(path)
	if err != nil {
		t.Fatal(err)
	}
	r2, err := index.OpenReader(path) // readers share the file
	if err != nil {
		t.Fatal(err)
	}
	if b, n, err := r1.Totals(); err != nil || b != wantBytes || n != wantObjects || b != 1027 {
		t.Errorf("Reader.Totals = %d, %d, %v; want %d, %d", b, n, err, wantBytes, wantObjects)
	}
	var keys []string
	if err := r2.All(func(key string, rec index.Record) error {
		keys = append(keys, key)
		return nil
	}); err != nil || len(keys) != 3 {
		t.Errorf("Reader.All: %q, %v", keys, err)
	}
	if _, _, err := index.Open(path, index.Options{}); !errors.Is(err, index.ErrLocked) {
		t.Errorf("Open while Readers hold the file: %v, want ErrLocked", err)
	}
	for _, r := range []*index.Reader{r1, r2} {
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := index.OpenReader(filepath.Join(dir, "garbage.db")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing garbage.db: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "garbage.db"), []byte("not bbolt"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := index.OpenReader(filepath.Join(dir, "garbage.db")); !errors.Is(err, index.ErrCorrupt) {
		t.Errorf("OpenReader of garbage: %v, want ErrCorrupt", err)
	}
}
