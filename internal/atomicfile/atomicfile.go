// Package atomicfile reads and replaces small files (state documents,
// credentials) so that a reader sees either the old content or the new,
// never a part of either, even across a crash.
//
// Write creates a temporary file in the destination's directory (same file
// system), writes and fsyncs it, renames it over the destination and fsyncs
// the directory. The temporary file is created with the final mode from the
// start, so a secret is never readable by others, not even briefly. A failed
// Write leaves the destination as it was and removes its temporary file.
//
// The package holds no state; concurrent Writes of one path are safe (each
// rename is atomic, the last one wins) but do not merge: callers that
// read, modify and write serialise themselves.
package atomicfile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
)

// ErrTooLarge is returned (wrapped) by Read for a file above its limit.
var ErrTooLarge = errors.New("file too large")

// Write replaces path with data, creating missing parent directories with
// mode 0700 and the file with mode perm (for example 0600).
func Write(path string, data []byte, perm fs.FileMode) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // fails harmlessly after the rename
	// CreateTemp makes the file 0600; Chmod is not subject to the umask,
	// so the mode is exactly perm.
	err = f.Chmod(perm)
	if err == nil {
		_, err = f.Write(data)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	return syncDir(dir)
}

// syncDir makes a rename in dir durable. Windows cannot open a directory
// for syncing, and its renames are durable without it.
func syncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// Read returns the content of path, or an error wrapping ErrTooLarge when
// it holds more than limit bytes. A missing file is an error satisfying
// errors.Is(err, fs.ErrNotExist).
func Read(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s: %w (more than %d bytes)", path, ErrTooLarge, limit)
	}
	return data, nil
}
