// Package fs is the local-disk implementation of storage.Store.
//
// Objects live under DIR/objects/KEY. Put writes to a new temporary file
// under DIR/tmp (created with O_EXCL), fsyncs it, renames it into place and
// fsyncs the directory, so that a reader never sees a partial object and a
// process killed at any moment leaves at most a stray temporary file, which
// New removes. WriteBatch (storage.BatchWriter) does the same for several
// objects with one sync per directory after all the renames. The tmp
// directory must be on the same file system as objects, which is why both
// live under DIR.
package fs

import (
	"context"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/modproxy/modproxy/internal/storage"
)

// Store is a storage.Store on a local directory. It is safe for concurrent
// use, including by several processes sharing the directory.
type Store struct {
	objects string
	tmp     string
	sys     sysOps
}

// sysOps are the file system calls whose order makes a write crash-safe:
// a file's data is synced before it is renamed into place, and the
// directory is synced after the rename. Tests replace them to record that
// order (export_test.go); New sets the real ones.
type sysOps struct {
	syncFile func(f *os.File) error
	rename   func(oldpath, newpath string) error
	syncDir  func(dir string)
}

// New opens (creating if needed) a store in dir and removes temporary files
// left by an earlier process that was killed during a Put.
//
// Temporary files of another live process sharing dir would be removed too;
// sharing one directory between processes is therefore only safe when they
// start at the same time as each other is idle, and is not supported.
func New(dir string) (*Store, error) {
	s, err := Open(dir)
	if err != nil {
		return nil, err
	}
	ents, err := os.ReadDir(s.tmp)
	if err != nil {
		return nil, fmt.Errorf("storage dir: %w", err)
	}
	for _, e := range ents {
		_ = os.RemoveAll(filepath.Join(s.tmp, e.Name()))
	}
	return s, nil
}

// Open opens (creating if needed) a store in dir like New, but leaves the
// temporary files in DIR/tmp alone: for a process that reads or writes
// beside the server owning dir (modproxy export and import), whose own
// temporary files have unique names (O_EXCL) and never collide with the
// server's.
func Open(dir string) (*Store, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("storage dir %q: %w", dir, err)
	}
	s := &Store{objects: filepath.Join(abs, "objects"), tmp: filepath.Join(abs, "tmp"),
		sys: sysOps{syncFile: (*os.File).Sync, rename: os.Rename, syncDir: syncDir}}
	for _, d := range []string{s.objects, s.tmp} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("storage dir: %w", err)
		}
	}
	return s, nil
}

// TempDir is the directory for temporary files on the store's file system
// (storage.FileMover). New empties it.
func (s *Store) TempDir() string { return s.tmp }

func (s *Store) path(key string) (string, error) {
	if err := storage.CheckKey(key); err != nil {
		return "", fmt.Errorf("%w: %q", err, key)
	}
	return filepath.Join(s.objects, filepath.FromSlash(key)), nil
}

type object struct {
	*os.File
	info storage.Info
}

func (o *object) Info() storage.Info { return o.info }

// OSFile returns the open file, so that servers can hand it to the
// kernel (sendfile) instead of copying it through user space.
func (o *object) OSFile() *os.File { return o.File }

// Open implements storage.Store.
func (s *Store) Open(ctx context.Context, key string) (storage.Object, error) {
	p, err := s.path(key)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, notExist(err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("open %s: %w", key, iofs.ErrNotExist)
	}
	return &object{File: f, info: storage.Info{Key: key, Size: st.Size(), ModTime: st.ModTime()}}, nil
}

// notExist makes "not a directory" (a key below an object) read as missing.
func notExist(err error) error {
	if errors.Is(err, iofs.ErrNotExist) {
		return err
	}
	if errors.Is(err, syscall.ENOTDIR) {
		return fmt.Errorf("%w: %w", iofs.ErrNotExist, err)
	}
	return err
}

// Stat implements storage.Store.
func (s *Store) Stat(ctx context.Context, key string) (storage.Info, error) {
	p, err := s.path(key)
	if err != nil {
		return storage.Info{}, err
	}
	st, err := os.Stat(p)
	if err != nil {
		return storage.Info{}, notExist(err)
	}
	if !st.Mode().IsRegular() {
		return storage.Info{}, fmt.Errorf("stat %s: %w", key, iofs.ErrNotExist)
	}
	return storage.Info{Key: key, Size: st.Size(), ModTime: st.ModTime()}, nil
}

// Put implements storage.Store.
func (s *Store) Put(ctx context.Context, key string, r io.Reader) (storage.Info, error) {
	p, err := s.path(key)
	if err != nil {
		return storage.Info{}, err
	}
	f, err := os.CreateTemp(s.tmp, "put-*")
	if err != nil {
		return storage.Info{}, fmt.Errorf("put %s: %w", key, err)
	}
	committed := false
	defer func() {
		if !committed {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	n, err := io.Copy(f, ctxReader{ctx, r})
	if err != nil {
		return storage.Info{}, fmt.Errorf("put %s: %w", key, err)
	}
	if err := s.sys.syncFile(f); err != nil {
		return storage.Info{}, fmt.Errorf("put %s: %w", key, err)
	}
	if err := f.Close(); err != nil {
		return storage.Info{}, fmt.Errorf("put %s: %w", key, err)
	}
	if err := ctx.Err(); err != nil {
		return storage.Info{}, fmt.Errorf("put %s: %w", key, err)
	}
	dir := filepath.Dir(p)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return storage.Info{}, fmt.Errorf("put %s: %w", key, err)
	}
	if err := os.Chmod(f.Name(), 0o644); err != nil {
		return storage.Info{}, fmt.Errorf("put %s: %w", key, err)
	}
	if err := s.sys.rename(f.Name(), p); err != nil {
		return storage.Info{}, fmt.Errorf("put %s: %w", key, err)
	}
	committed = true
	s.sys.syncDir(dir)
	st, err := os.Stat(p)
	if err != nil {
		return storage.Info{}, fmt.Errorf("put %s: %w", key, err)
	}
	return storage.Info{Key: key, Size: n, ModTime: st.ModTime()}, nil
}

// syncDir makes a rename durable. Errors are ignored: some file systems do
// not support fsync on directories, and the data itself is already synced.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}

// Delete implements storage.Store.
func (s *Store) Delete(ctx context.Context, key string) error {
	p, err := s.path(key)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(notExist(err), iofs.ErrNotExist) {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	return nil
}

// Walk implements storage.Store.
func (s *Store) Walk(ctx context.Context, prefix string, fn func(storage.Info) error) error {
	return filepath.WalkDir(s.objects, func(p string, d iofs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, iofs.ErrNotExist) {
				return nil
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, _ := filepath.Rel(s.objects, p)
		key := filepath.ToSlash(rel)
		if d.IsDir() {
			if key != "." && !strings.HasPrefix(key+"/", prefix) && !strings.HasPrefix(prefix, key+"/") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasPrefix(key, prefix) || !d.Type().IsRegular() {
			return nil
		}
		st, err := d.Info()
		if err != nil {
			return nil // removed concurrently
		}
		return fn(storage.Info{Key: key, Size: st.Size(), ModTime: st.ModTime()})
	})
}

// ctxReader stops a copy when ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// MoveOut moves the object stored under key to the file dst (on the same
// file system) without copying it. Missing keys are fs.ErrNotExist.
func (s *Store) MoveOut(ctx context.Context, key, dst string) error {
	p, err := s.path(key)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	if err := s.sys.rename(p, dst); err != nil {
		return notExist(err)
	}
	s.sys.syncDir(filepath.Dir(p))
	s.sys.syncDir(filepath.Dir(dst))
	return nil
}

// MoveIn implements storage.FileMover: it syncs the regular file src,
// makes it readable like the objects Put writes, and renames it into place
// under key. A src on another file system is refused with an error
// wrapping storage.ErrNotSupported; on every error src stays where it was.
func (s *Store) MoveIn(ctx context.Context, src, key string) (storage.Info, error) {
	p, err := s.path(key)
	if err != nil {
		return storage.Info{}, err
	}
	if err := ctx.Err(); err != nil {
		return storage.Info{}, fmt.Errorf("move in %s: %w", key, err)
	}
	st, err := s.syncIn(src, key, true)
	if err != nil {
		return storage.Info{}, err
	}
	dir := filepath.Dir(p)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return storage.Info{}, fmt.Errorf("move in %s: %w", key, err)
	}
	if err := s.sys.rename(src, p); err != nil {
		if errors.Is(err, syscall.EXDEV) {
			return storage.Info{}, fmt.Errorf("move in %s: %w: %w", key, storage.ErrNotSupported, err)
		}
		return storage.Info{}, fmt.Errorf("move in %s: %w", key, err)
	}
	s.sys.syncDir(dir)
	// The rename keeps the file's size and modification time.
	return storage.Info{Key: key, Size: st.Size(), ModTime: st.ModTime()}, nil
}

// WriteBatch implements storage.BatchWriter: it writes every Data entry to
// a temporary file and syncs it (unless Unsynced), syncs every Src (unless
// Unsynced), then
// renames them into place in order and syncs each directory they landed
// in once.
func (s *Store) WriteBatch(ctx context.Context, entries []storage.Entry) ([]storage.Info, error) {
	paths := make([]string, len(entries))
	srcs := make([]string, len(entries))
	var temps []string // temporary files of Data entries not yet renamed
	defer func() {
		for _, t := range temps {
			os.Remove(t)
		}
	}()
	infos := make([]storage.Info, len(entries))
	for i, e := range entries {
		p, err := s.path(e.Key)
		if err != nil {
			return nil, err
		}
		paths[i] = p
		if e.Src != "" {
			st, err := s.syncIn(e.Src, e.Key, !e.Unsynced)
			if err != nil {
				return nil, err
			}
			srcs[i], infos[i] = e.Src, storage.Info{Key: e.Key, Size: st.Size(), ModTime: st.ModTime()}
			continue
		}
		t, err := s.writeTemp(e)
		if t != "" {
			temps = append(temps, t)
		}
		if err != nil {
			return nil, err
		}
		srcs[i], infos[i] = t, storage.Info{Key: e.Key, Size: int64(len(e.Data))}
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("write batch: %w", err)
	}
	var dirs []string
	for i, e := range entries {
		dir := filepath.Dir(paths[i])
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("write %s: %w", e.Key, err)
		}
		if err := s.sys.rename(srcs[i], paths[i]); err != nil {
			if errors.Is(err, syscall.EXDEV) {
				return nil, fmt.Errorf("move in %s: %w: %w", e.Key, storage.ErrNotSupported, err)
			}
			return nil, fmt.Errorf("write %s: %w", e.Key, err)
		}
		if e.Src == "" {
			temps = slices.DeleteFunc(temps, func(t string) bool { return t == srcs[i] })
			if st, err := os.Stat(paths[i]); err == nil {
				infos[i].ModTime = st.ModTime()
			}
		}
		if !slices.Contains(dirs, dir) {
			dirs = append(dirs, dir)
		}
	}
	for _, d := range dirs {
		s.sys.syncDir(d)
	}
	return infos, nil
}

// syncIn checks that src is a regular file, makes it readable like the
// objects Put writes and syncs it (unless !sync: the caller made it
// durable), for a rename into the store.
func (s *Store) syncIn(src, key string, sync bool) (iofs.FileInfo, error) {
	st, err := os.Lstat(src)
	if err != nil {
		return nil, fmt.Errorf("move in %s: %w", key, err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("move in %s: %s is not a regular file", key, src)
	}
	if st.Mode().Perm() != 0o644 { // before the sync (ours or the caller's), which then covers it
		if err := os.Chmod(src, 0o644); err != nil {
			return nil, fmt.Errorf("move in %s: %w", key, err)
		}
	}
	if !sync {
		return st, nil
	}
	f, err := os.Open(src)
	if err != nil {
		return nil, fmt.Errorf("move in %s: %w", key, err)
	}
	err = s.sys.syncFile(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("move in %s: %w", key, err)
	}
	return st, nil
}

// writeTemp writes e.Data to a new temporary file, synced unless
// e.Unsynced, and returns its name (also on error, when it was created).
func (s *Store) writeTemp(e storage.Entry) (string, error) {
	f, err := os.CreateTemp(s.tmp, "put-*")
	if err != nil {
		return "", fmt.Errorf("write %s: %w", e.Key, err)
	}
	_, err = f.Write(e.Data)
	if err == nil && !e.Unsynced {
		err = s.sys.syncFile(f)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(f.Name(), 0o644)
	}
	if err != nil {
		return f.Name(), fmt.Errorf("write %s: %w", e.Key, err)
	}
	return f.Name(), nil
}

var (
	_ storage.FileMover   = (*Store)(nil)
	_ storage.BatchWriter = (*Store)(nil)
)
