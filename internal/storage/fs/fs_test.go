package fs_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/modproxy/modproxy/internal/storage"
	"github.com/modproxy/modproxy/internal/storage/fs"
	"github.com/modproxy/modproxy/internal/storage/storagetest"
)

func TestConformance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Store {
		s, err := fs.New(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestNewRemovesStrayTemporaryFiles(t *testing.T) {
	dir := t.TempDir()
	s, err := fs.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	stray := filepath.Join(s.TempDir(), "put-123")
	if err := os.WriteFile(stray, []byte("half a zip"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := fs.New(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stray); !os.IsNotExist(err) {
		t.Fatalf("stray temp file survived: %v", err)
	}
}

func TestNoWritesOutsideDir(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "cache")
	s, err := fs.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"../escape", "../../escape", "/tmp/escape", "a/../../../escape"} {
		if _, err := s.Put(context.Background(), key, bytes.NewReader([]byte("x"))); !errors.Is(err, storage.ErrInvalidKey) {
			t.Errorf("Put(%q) = %v, want ErrInvalidKey", key, err)
		}
	}
	ents, err := os.ReadDir(parent)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 1 || ents[0].Name() != "cache" {
		t.Fatalf("files outside the store: %v", ents)
	}
}
