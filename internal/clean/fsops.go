package clean

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/rogpeppe/go-internal/lockedfile"
	"golang.org/x/mod/module"
	"golang.org/x/mod/semver"
)

// LockedError reports a lock that another process held for longer than the
// lock timeout. The entry it guards was left untouched.
type LockedError struct {
	Path   string
	Waited time.Duration
}

func (e *LockedError) Error() string {
	return fmt.Sprintf("locked by another process (%s held for %s)", e.Path, e.Waited.Round(time.Millisecond))
}

// lockNotice is how long lock waits before calling its waiting callback.
const lockNotice = 100 * time.Millisecond

// lock takes the lockedfile mutex at path, the go command's protocol for
// the per-version and per-clone lock files. It waits at most timeout (until
// ctx is done when timeout <= 0), calling waiting once when the lock is not
// free at once. On timeout it returns a *LockedError; the lock attempt then
// continues in the background and is released as soon as it succeeds.
func lock(ctx context.Context, path string, timeout time.Duration, waiting func()) (unlock func(), err error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o777); err != nil {
		return nil, err
	}
	type result struct {
		unlock func()
		err    error
	}
	ch := make(chan result, 1)
	go func() {
		u, err := lockedfile.MutexAt(path).Lock()
		ch <- result{u, err}
	}()
	abandon := func() {
		go func() {
			if r := <-ch; r.err == nil {
				r.unlock()
			}
		}()
	}
	notice := time.NewTimer(lockNotice)
	defer notice.Stop()
	var deadline <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		deadline = t.C
	}
	for {
		select {
		case r := <-ch:
			if r.err != nil {
				return nil, fmt.Errorf("locking %s: %w", path, r.err)
			}
			return r.unlock, nil
		case <-notice.C:
			if waiting != nil {
				waiting()
			}
		case <-deadline:
			abandon()
			return nil, &LockedError{Path: path, Waited: timeout}
		case <-ctx.Done():
			abandon()
			return nil, ctx.Err()
		}
	}
}

func randSuffix() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// hideTree renames an extracted tree to a sibling "TREE.tmp-clean-RAND"
// name in one atomic step, so that no process ever sees it half removed.
// The go command deletes "TREE.tmp-*" directories itself before it extracts
// TREE again, so even a crash right after the rename leaves nothing behind
// that matters.
func hideTree(tree string) (string, error) {
	tmp := tree + ".tmp-clean-" + randSuffix()
	err := withWritableParent(tree, func() error { return os.Rename(tree, tmp) })
	if errors.Is(err, fs.ErrPermission) {
		// Some systems want the directory itself writable to rename it.
		if st, serr := os.Lstat(tree); serr == nil && st.IsDir() {
			_ = os.Chmod(tree, st.Mode().Perm()|0o700)
			err = os.Rename(tree, tmp)
		}
	}
	if err != nil {
		return "", err
	}
	return tmp, nil
}

// withWritableParent runs op and, if it fails for want of permission on
// the parent directory, makes the parent owner-writable and runs it again.
func withWritableParent(p string, op func() error) error {
	err := op()
	if !errors.Is(err, fs.ErrPermission) {
		return err
	}
	parent := filepath.Dir(p)
	st, serr := os.Stat(parent)
	if serr != nil || st.Mode().Perm()&0o300 == 0o300 {
		return err
	}
	if cerr := os.Chmod(parent, st.Mode().Perm()|0o300); cerr != nil {
		return err
	}
	return op()
}

// removeAll removes p and everything below it, first making directories
// writable: the go command makes extracted trees read-only.
func removeAll(p string) error {
	_ = filepath.WalkDir(p, func(q string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			if info, err := d.Info(); err == nil && info.Mode().Perm()&0o700 != 0o700 {
				_ = os.Chmod(q, info.Mode().Perm()|0o700)
			}
		}
		return nil
	})
	return withWritableParent(p, func() error { return os.RemoveAll(p) })
}

// removeFile removes one file.
func removeFile(p string) error {
	err := withWritableParent(p, func() error { return os.Remove(p) })
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

// moveAtomic moves src to dst (which must not exist), keeping contents,
// permissions and modification times. dst appears in one step: a rename,
// or, across file systems, a copy to a sibling temporary name renamed into
// place, after which src is removed.
func moveAtomic(src, dst string) error {
	st, err := os.Lstat(src)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o777); err != nil {
		return err
	}
	mode := st.Mode().Perm()
	// Moving a directory to another parent rewrites its ".." entry, which
	// needs write permission on the directory itself.
	chmodded := st.IsDir() && mode&0o200 == 0
	if chmodded {
		if err := os.Chmod(src, mode|0o200); err != nil {
			return err
		}
	}
	err = withWritableParent(src, func() error { return os.Rename(src, dst) })
	if err == nil {
		if chmodded {
			return os.Chmod(dst, mode)
		}
		return nil
	}
	if !errors.Is(err, syscall.EXDEV) {
		if chmodded {
			_ = os.Chmod(src, mode)
		}
		return err
	}
	if chmodded {
		_ = os.Chmod(src, mode)
	}
	tmp := dst + ".tmp-clean-" + randSuffix()
	if err := copyAll(src, tmp); err != nil {
		_ = removeAll(tmp)
		return err
	}
	if err := os.Rename(tmp, dst); err != nil {
		_ = removeAll(tmp)
		return err
	}
	return removeAll(src)
}

// copyAll copies the file or tree src to dst (which must not exist),
// keeping permissions and modification times.
func copyAll(src, dst string) error {
	st, err := os.Lstat(src)
	if err != nil {
		return err
	}
	switch {
	case st.Mode()&fs.ModeSymlink != 0:
		target, err := os.Readlink(src)
		if err != nil {
			return err
		}
		return os.Symlink(target, dst)
	case st.IsDir():
		if err := os.Mkdir(dst, 0o700); err != nil {
			return err
		}
		ents, err := os.ReadDir(src)
		if err != nil {
			return err
		}
		for _, e := range ents {
			if err := copyAll(filepath.Join(src, e.Name()), filepath.Join(dst, e.Name())); err != nil {
				return err
			}
		}
		if err := os.Chmod(dst, st.Mode().Perm()); err != nil {
			return err
		}
		return os.Chtimes(dst, st.ModTime(), st.ModTime())
	case st.Mode().IsRegular():
		in, err := os.Open(src)
		if err != nil {
			return err
		}
		defer in.Close()
		out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, in); err != nil {
			out.Close()
			return err
		}
		if err := out.Sync(); err != nil {
			out.Close()
			return err
		}
		if err := out.Close(); err != nil {
			return err
		}
		if err := os.Chmod(dst, st.Mode().Perm()); err != nil {
			return err
		}
		return os.Chtimes(dst, st.ModTime(), st.ModTime())
	default:
		return fmt.Errorf("copying %s: not a regular file, directory or symbolic link", src)
	}
}

// removeEmptyParents removes the now empty directories from filepath.Dir(p)
// up to, not including, stop. The go command recreates them with MkdirAll
// when it needs them.
func removeEmptyParents(p, stop string) {
	for dir := filepath.Dir(p); dir != stop && strings.HasPrefix(dir, stop+string(filepath.Separator)); dir = filepath.Dir(dir) {
		if os.Remove(dir) != nil {
			return
		}
	}
}

// rewriteList rewrites the @v/list file in dlDir the way the go command
// does after it writes a .mod file: every canonical version with a .mod
// file, in semver order, one per line, under lockedfile.Edit of the list
// (and, for older go commands, holding list.lock when it exists). A missing
// list is left missing.
func rewriteList(dlDir string) (err error) {
	listFile := filepath.Join(dlDir, "list")
	if _, err := os.Stat(listFile); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if _, err := os.Stat(listFile + ".lock"); err == nil {
		unlock, err := lockedfile.MutexAt(listFile + ".lock").Lock()
		if err != nil {
			return fmt.Errorf("rewriting %s: %w", listFile, err)
		}
		defer unlock()
	}
	f, err := lockedfile.Edit(listFile)
	if err != nil {
		return fmt.Errorf("rewriting %s: %w", listFile, err)
	}
	defer func() {
		if cerr := f.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("rewriting %s: %w", listFile, cerr)
		}
	}()
	ents, err := os.ReadDir(dlDir)
	if err != nil {
		return fmt.Errorf("rewriting %s: %w", listFile, err)
	}
	var list []string
	for _, e := range ents {
		// Exactly as the go command: the escaped name must be canonical.
		if v, ok := strings.CutSuffix(e.Name(), ".mod"); ok && v != "" && module.CanonicalVersion(v) == v {
			list = append(list, v)
		}
	}
	semver.Sort(list)
	var buf bytes.Buffer
	for _, v := range list {
		buf.WriteString(v)
		buf.WriteByte('\n')
	}
	old, err := io.ReadAll(f)
	if err == nil && bytes.Equal(old, buf.Bytes()) {
		return nil
	}
	// As the go command: truncate, reserve the size zero-filled, write, so
	// that an interrupted write shows as trailing NUL bytes.
	if err := f.Truncate(0); err != nil {
		return fmt.Errorf("rewriting %s: %w", listFile, err)
	}
	if err := f.Truncate(int64(buf.Len())); err != nil {
		return fmt.Errorf("rewriting %s: %w", listFile, err)
	}
	if _, err := f.WriteAt(buf.Bytes(), 0); err != nil {
		_ = f.Truncate(0)
		return fmt.Errorf("rewriting %s: %w", listFile, err)
	}
	return nil
}
