package storagetest

import (
	"bytes"
	"context"
	"errors"
	iofs "io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/modproxy/modproxy/internal/storage"
)

// runFileMover checks the storage.FileMover contract; newStore returns
// stores that implement it.
func runFileMover(t *testing.T, newStore func(t *testing.T) storage.Store) {
	ctx := context.Background()
	stores := func(t *testing.T) (storage.Store, storage.FileMover) {
		s := newStore(t)
		return s, s.(storage.FileMover)
	}
	// spool writes a finished file in the mover's TempDir, as a fill does.
	spool := func(t *testing.T, mv storage.FileMover, data []byte) string {
		t.Helper()
		return spoolFile(t, mv.TempDir(), data)
	}
	// stillThere checks that src was left with its content.
	stillThere := func(t *testing.T, src string, data []byte) {
		t.Helper()
		got, err := os.ReadFile(src)
		if err != nil {
			t.Fatalf("src after a failed MoveIn: %v", err)
		}
		if !bytes.Equal(got, data) {
			t.Fatalf("src after a failed MoveIn has %d bytes, want %d", len(got), len(data))
		}
	}

	t.Run("MovesAndReplaces", func(t *testing.T) {
		s, mv := stores(t)
		key := "example.com/a/@v/v1.0.0.zip"
		if _, err := s.Put(ctx, key, bytes.NewReader([]byte("old"))); err != nil {
			t.Fatal(err)
		}
		data := bytes.Repeat([]byte("zip bytes "), 50_000)
		src := spool(t, mv, data)
		info, err := mv.MoveIn(ctx, src, key)
		if err != nil {
			t.Fatalf("MoveIn: %v", err)
		}
		if info.Key != key || info.Size != int64(len(data)) || info.ModTime.IsZero() {
			t.Fatalf("MoveIn info = %+v", info)
		}
		if got := readAll(t, s, key); !bytes.Equal(got, data) {
			t.Fatalf("after MoveIn read %d bytes, want %d", len(got), len(data))
		}
		st, err := s.Stat(ctx, key)
		if err != nil || st.Size != info.Size {
			t.Fatalf("Stat after MoveIn = %+v, %v", st, err)
		}
		if _, err := os.Lstat(src); !errors.Is(err, iofs.ErrNotExist) {
			t.Fatalf("src still exists after MoveIn: %v", err)
		}
	})
	t.Run("InvalidKeyLeavesSrc", func(t *testing.T) {
		s, mv := stores(t)
		data := []byte("module example.com/a\n")
		src := spool(t, mv, data)
		for _, key := range []string{"", "../x", "a/../../x", "/etc/x", "a\\b"} {
			if _, err := mv.MoveIn(ctx, src, key); !errors.Is(err, storage.ErrInvalidKey) {
				t.Errorf("MoveIn(%q) = %v, want ErrInvalidKey", key, err)
			}
			stillThere(t, src, data)
		}
		if err := s.Walk(ctx, "", func(i storage.Info) error { return errors.New("stored " + i.Key) }); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("MissingSrcKeepsOld", func(t *testing.T) {
		s, mv := stores(t)
		key := "example.com/a/@v/v1.0.0.mod"
		if _, err := s.Put(ctx, key, bytes.NewReader([]byte("old"))); err != nil {
			t.Fatal(err)
		}
		src := filepath.Join(mv.TempDir(), "storagetest-missing")
		if _, err := mv.MoveIn(ctx, src, key); !errors.Is(err, iofs.ErrNotExist) {
			t.Fatalf("MoveIn(missing src) = %v, want fs.ErrNotExist", err)
		}
		if got := string(readAll(t, s, key)); got != "old" {
			t.Fatalf("after a failed MoveIn read %q", got)
		}
	})
	t.Run("NotAFileLeavesSrc", func(t *testing.T) {
		s, mv := stores(t)
		dir, err := os.MkdirTemp(mv.TempDir(), "storagetest-dir-*")
		if err != nil {
			t.Fatal(err)
		}
		key := "example.com/a/@v/v1.0.0.zip"
		if _, err := mv.MoveIn(ctx, dir, key); err == nil {
			t.Fatal("MoveIn of a directory succeeded")
		}
		if st, err := os.Stat(dir); err != nil || !st.IsDir() {
			t.Fatalf("directory after a failed MoveIn: %v", err)
		}
		if _, err := s.Stat(ctx, key); !errors.Is(err, iofs.ErrNotExist) {
			t.Fatalf("a failed MoveIn stored something: %v", err)
		}
	})
	t.Run("CancelledLeavesSrc", func(t *testing.T) {
		s, mv := stores(t)
		data := []byte("x")
		src := spool(t, mv, data)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		key := "example.com/a/@v/v1.0.0.info"
		if _, err := mv.MoveIn(cctx, src, key); !errors.Is(err, context.Canceled) {
			t.Fatalf("MoveIn with a cancelled context = %v, want context.Canceled", err)
		}
		stillThere(t, src, data)
		if _, err := s.Stat(ctx, key); !errors.Is(err, iofs.ErrNotExist) {
			t.Fatalf("a cancelled MoveIn stored something: %v", err)
		}
	})
}

// spoolFile writes a finished file of data in dir, as a fill does, and
// returns its name.
func spoolFile(t *testing.T, dir string, data []byte) string {
	t.Helper()
	f, err := os.CreateTemp(dir, "storagetest-*")
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	return f.Name()
}
