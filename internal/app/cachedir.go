package app

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/modproxy/modproxy/internal/config"
)

// checkCacheDir creates the cache directory if needed and checks that the
// server can write in it and in those of its directories that the server
// writes and that already exist, so that a cache directory it cannot use
// (read-only, owned by another user after a run as root) is a
// configuration error naming cache_dir at start-up (exit 2), rather than
// failed writes later.
func checkCacheDir(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return &config.Error{Key: "cache_dir", Err: err}
	}
	for _, sub := range []string{"", "objects", "tmp", "state", "trash", "quarantine"} {
		d := filepath.Join(dir, sub)
		if st, err := os.Stat(d); err != nil || !st.IsDir() {
			continue // created when needed
		}
		if err := probeWrite(d); err != nil {
			return &config.Error{Key: "cache_dir", Err: fmt.Errorf("%s is not writable: %w", d, err)}
		}
	}
	return nil
}

// probeWrite creates, writes and removes a file in dir.
func probeWrite(dir string) error {
	f, err := os.CreateTemp(dir, ".write-check-*")
	if err != nil {
		return err
	}
	_, werr := f.Write([]byte("ok\n"))
	return errors.Join(werr, f.Close(), os.Remove(f.Name()))
}
