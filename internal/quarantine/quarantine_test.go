package quarantine

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

func TestBounded(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "q")
	q, err := New(dir, 250)
	if err != nil {
		t.Fatal(err)
	}
	var last string
	for range 5 {
		last, err = q.Keep("example.com/a/@v/v1.0.0.zip", bytes.NewReader(bytes.Repeat([]byte("x"), 100)))
		if err != nil {
			t.Fatal(err)
		}
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 2 {
		t.Fatalf("%d files kept, want 2 (250 bytes bound)", len(ents))
	}
	if _, err := os.Stat(last); err != nil {
		t.Errorf("newest file removed: %v", err)
	}
	if filepath.Dir(last) != dir {
		t.Errorf("file %s outside the quarantine", last)
	}
	// A file larger than the bound is still kept (newest wins).
	big, err := q.Keep("../../escape", bytes.NewReader(bytes.Repeat([]byte("y"), 1000)))
	if err != nil || filepath.Dir(big) != dir {
		t.Fatalf("Keep(big) = %s, %v", big, err)
	}
}
