package fs_test

import (
	"bytes"
	"context"
	"errors"
	iofs "io/fs"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"

	"github.com/modproxy/modproxy/internal/storage"
	"github.com/modproxy/modproxy/internal/storage/fs"
)

// newRecorded returns a store in a new directory whose sync and rename
// calls are recorded.
func newRecorded(t *testing.T) (s *fs.Store, rec *fs.Recorder, objects string) {
	t.Helper()
	dir := t.TempDir()
	s, err := fs.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	return s, fs.Record(s), filepath.Join(dir, "objects")
}

func ops(calls []fs.Call) []string {
	var out []string
	for _, c := range calls {
		out = append(out, c.Op)
	}
	return out
}

// checkDurableRename checks the crash-safe order: the file's data is
// synced, then it is renamed to dst, then dst's directory is synced.
func checkDurableRename(t *testing.T, calls []fs.Call, src, dst string) {
	t.Helper()
	if got, want := ops(calls), []string{"fsync", "rename", "fsync-dir"}; !slices.Equal(got, want) {
		t.Fatalf("calls %v: ops %q, want %q", calls, got, want)
	}
	if calls[0].Path != src || calls[1].Path != src {
		t.Errorf("synced %s and renamed %s, want both %s", calls[0].Path, calls[1].Path, src)
	}
	if calls[1].To != dst {
		t.Errorf("renamed to %s, want %s", calls[1].To, dst)
	}
	if calls[2].Path != filepath.Dir(dst) {
		t.Errorf("synced directory %s, want %s", calls[2].Path, filepath.Dir(dst))
	}
}

func TestPutSyncsFileBeforeRenameAndDirAfter(t *testing.T) {
	s, rec, objects := newRecorded(t)
	key := "example.com/a/@v/v1.0.0.mod"
	if _, err := s.Put(context.Background(), key, bytes.NewReader([]byte("module example.com/a\n"))); err != nil {
		t.Fatal(err)
	}
	calls := rec.Calls()
	if len(calls) == 0 {
		t.Fatal("Put made no sync or rename calls")
	}
	src := calls[0].Path
	if filepath.Dir(src) != s.TempDir() {
		t.Errorf("Put synced %s, want a temporary file in %s", src, s.TempDir())
	}
	checkDurableRename(t, calls, src, filepath.Join(objects, filepath.FromSlash(key)))
}

func TestMoveInSyncsFileBeforeRenameAndDirAfter(t *testing.T) {
	s, rec, objects := newRecorded(t)
	src := filepath.Join(s.TempDir(), "fill-1.zip")
	if err := os.WriteFile(src, []byte("zip"), 0o600); err != nil {
		t.Fatal(err)
	}
	key := "example.com/a/@v/v1.0.0.zip"
	if _, err := s.MoveIn(context.Background(), src, key); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(objects, filepath.FromSlash(key))
	checkDurableRename(t, rec.Calls(), src, dst)
	// Stored objects are readable like those Put writes.
	st, err := os.Stat(dst)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o644 {
		t.Errorf("moved-in object has mode %v, want 0644", st.Mode().Perm())
	}
}

func TestMoveOutSyncsBothDirs(t *testing.T) {
	s, rec, objects := newRecorded(t)
	key := "example.com/a/@v/v1.0.0.zip"
	if _, err := s.Put(context.Background(), key, bytes.NewReader([]byte("zip"))); err != nil {
		t.Fatal(err)
	}
	rec.Calls()
	dst := filepath.Join(t.TempDir(), "trash", "x.zip")
	if err := s.MoveOut(context.Background(), key, dst); err != nil {
		t.Fatal(err)
	}
	calls := rec.Calls()
	if got, want := ops(calls), []string{"rename", "fsync-dir", "fsync-dir"}; !slices.Equal(got, want) {
		t.Fatalf("ops %q, want %q", got, want)
	}
	src := filepath.Join(objects, filepath.FromSlash(key))
	if calls[0].Path != src || calls[0].To != dst {
		t.Errorf("renamed %s to %s, want %s to %s", calls[0].Path, calls[0].To, src, dst)
	}
	if calls[1].Path != filepath.Dir(src) || calls[2].Path != filepath.Dir(dst) {
		t.Errorf("synced %s and %s, want %s and %s", calls[1].Path, calls[2].Path, filepath.Dir(src), filepath.Dir(dst))
	}
}

// TestFailedSyncStoresNothing: a Put whose data cannot be made durable
// fails, is never renamed into place, and leaves no temporary file.
func TestFailedSyncStoresNothing(t *testing.T) {
	s, rec, _ := newRecorded(t)
	ctx := context.Background()
	boom := errors.New("disk on fire")
	rec.FailSync(boom)
	key := "example.com/a/@v/v1.0.0.mod"
	if _, err := s.Put(ctx, key, bytes.NewReader([]byte("x"))); !errors.Is(err, boom) {
		t.Fatalf("Put with a failing fsync = %v, want %v", err, boom)
	}
	if got := ops(rec.Calls()); !slices.Equal(got, []string{"fsync"}) {
		t.Errorf("ops after a failed fsync %q, want only the fsync", got)
	}
	if _, err := s.Stat(ctx, key); !errors.Is(err, iofs.ErrNotExist) {
		t.Errorf("Stat after a failed Put = %v, want fs.ErrNotExist", err)
	}
	ents, err := os.ReadDir(s.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 0 {
		t.Errorf("temporary files left: %v", ents)
	}
}

// TestMoveInAcrossFileSystems: a file the store cannot rename in (another
// file system) is refused with ErrNotSupported and left in place, so that
// the caller can Put it instead.
func TestMoveInAcrossFileSystems(t *testing.T) {
	s, rec, _ := newRecorded(t)
	ctx := context.Background()
	src := filepath.Join(s.TempDir(), "fill-1.zip")
	if err := os.WriteFile(src, []byte("zip"), 0o600); err != nil {
		t.Fatal(err)
	}
	key := "example.com/a/@v/v1.0.0.zip"
	rec.FailRename(&os.LinkError{Op: "rename", Old: src, New: key, Err: syscall.EXDEV})
	_, err := s.MoveIn(ctx, src, key)
	if !errors.Is(err, storage.ErrNotSupported) || !errors.Is(err, syscall.EXDEV) {
		t.Fatalf("MoveIn across file systems = %v, want ErrNotSupported wrapping EXDEV", err)
	}
	if b, err := os.ReadFile(src); err != nil || string(b) != "zip" {
		t.Fatalf("src after a refused MoveIn: %q, %v", b, err)
	}
	if _, err := s.Stat(ctx, key); !errors.Is(err, iofs.ErrNotExist) {
		t.Errorf("Stat after a refused MoveIn = %v, want fs.ErrNotExist", err)
	}
	// Other rename failures are not ErrNotSupported.
	rec.FailRename(&os.LinkError{Op: "rename", Old: src, New: key, Err: syscall.EACCES})
	if _, err := s.MoveIn(ctx, src, key); err == nil || errors.Is(err, storage.ErrNotSupported) {
		t.Fatalf("MoveIn with EACCES = %v, want an error that is not ErrNotSupported", err)
	}
}

// TestWriteBatchOneDurableStep: a batch of an unsynced hash and a moved-in
// zip in one directory, and a synced .mod in another: every synced entry's
// data is synced before any rename, the unsynced one is never synced, the
// renames go in order, and each directory is synced once, after all the
// renames.
func TestWriteBatchOneDurableStep(t *testing.T) {
	s, rec, objects := newRecorded(t)
	src := filepath.Join(s.TempDir(), "fill-1.zip")
	if err := os.WriteFile(src, []byte("zip"), 0o600); err != nil {
		t.Fatal(err)
	}
	zip, mod := "example.com/a/@v/v1.0.0.zip", "example.com/b/@v/v1.0.0.mod"
	infos, err := s.WriteBatch(context.Background(), []storage.Entry{
		{Key: zip + ".h1", Data: []byte("h1:x"), Unsynced: true},
		{Key: zip, Src: src},
		{Key: mod, Data: []byte("module example.com/b\n")},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(infos) != 3 || infos[0].Size != 4 || infos[1].Size != 3 || infos[2].Key != mod {
		t.Errorf("infos %+v", infos)
	}
	calls := rec.Calls()
	if got, want := ops(calls), []string{"fsync", "fsync", "rename", "rename", "rename", "fsync-dir", "fsync-dir"}; !slices.Equal(got, want) {
		t.Fatalf("calls %v: ops %q, want %q", calls, got, want)
	}
	dst := func(k string) string { return filepath.Join(objects, filepath.FromSlash(k)) }
	if calls[0].Path != src || calls[1].Path != calls[4].Path {
		t.Errorf("synced %s and %s, want the zip's spool and the .mod's temporary file (renamed from %s)", calls[0].Path, calls[1].Path, calls[4].Path)
	}
	for i, k := range []string{zip + ".h1", zip, mod} {
		if calls[2+i].To != dst(k) {
			t.Errorf("rename %d to %s, want %s", i, calls[2+i].To, dst(k))
		}
	}
	if calls[5].Path != filepath.Dir(dst(zip)) || calls[6].Path != filepath.Dir(dst(mod)) {
		t.Errorf("synced directories %s and %s, want %s and %s", calls[5].Path, calls[6].Path, filepath.Dir(dst(zip)), filepath.Dir(dst(mod)))
	}
	for _, k := range []string{zip + ".h1", zip, mod} {
		if st, err := os.Stat(dst(k)); err != nil || st.Mode().Perm() != 0o644 {
			t.Errorf("%s: %v, %v; want a file of mode 0644", k, st, err)
		}
	}
}

// TestWriteBatchDurableSrc: an Unsynced Src (one the caller has made
// durable, as a bulk import does) is not synced again, but is still made
// readable (mode 0644) and renamed before its directory is synced.
func TestWriteBatchDurableSrc(t *testing.T) {
	s, rec, objects := newRecorded(t)
	src := filepath.Join(s.TempDir(), "import-1")
	if err := os.WriteFile(src, []byte("zip"), 0o600); err != nil {
		t.Fatal(err)
	}
	zip := "example.com/a/@v/v1.0.0.zip"
	if _, err := s.WriteBatch(context.Background(), []storage.Entry{{Key: zip, Src: src, Unsynced: true}}); err != nil {
		t.Fatal(err)
	}
	calls := rec.Calls()
	if got, want := ops(calls), []string{"rename", "fsync-dir"}; !slices.Equal(got, want) {
		t.Fatalf("calls %v: ops %q, want %q", calls, got, want)
	}
	dst := filepath.Join(objects, filepath.FromSlash(zip))
	if st, err := os.Stat(dst); err != nil || st.Mode().Perm() != 0o644 {
		t.Errorf("%s: %v, %v; want a file of mode 0644", zip, st, err)
	}
}

// TestWriteBatchFailedSyncStoresNothing: when an entry's data cannot be
// synced, nothing of the batch is renamed into place and the spool stays.
func TestWriteBatchFailedSyncStoresNothing(t *testing.T) {
	s, rec, _ := newRecorded(t)
	src := filepath.Join(s.TempDir(), "fill-1.zip")
	if err := os.WriteFile(src, []byte("zip"), 0o600); err != nil {
		t.Fatal(err)
	}
	rec.FailSync(syscall.EIO)
	zip := "example.com/a/@v/v1.0.0.zip"
	if _, err := s.WriteBatch(context.Background(), []storage.Entry{{Key: zip + ".h1", Data: []byte("h1:x"), Unsynced: true}, {Key: zip, Src: src}}); !errors.Is(err, syscall.EIO) {
		t.Fatalf("WriteBatch with a failing sync = %v, want EIO", err)
	}
	for _, c := range rec.Calls() {
		if c.Op == "rename" {
			t.Errorf("renamed %s to %s after a failed sync", c.Path, c.To)
		}
	}
	for _, k := range []string{zip, zip + ".h1"} {
		if _, err := s.Stat(context.Background(), k); !errors.Is(err, iofs.ErrNotExist) {
			t.Errorf("Stat %s after a failed batch = %v, want fs.ErrNotExist", k, err)
		}
	}
	if _, err := os.Stat(src); err != nil {
		t.Errorf("spool after a failed batch: %v", err)
	}
	ents, err := os.ReadDir(s.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 1 {
		t.Errorf("%d files in tmp after a failed batch, want only the spool", len(ents))
	}
}
