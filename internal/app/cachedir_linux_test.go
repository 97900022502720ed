package app_test

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"

	"github.com/modproxy/modproxy/internal/app"
	"github.com/modproxy/modproxy/internal/config"
)

// TestUnwritableCacheDir: an existing cache directory the server cannot
// write is a configuration error naming cache_dir (the command line
// exits 2), not a failure at the first write. As root, which may write
// anywhere, the check runs on a thread whose file-system user is nobody
// (setfsuid), so that permissions apply.
func TestUnwritableCacheDir(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "cache")
	for _, sub := range []string{"objects", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// Readable and searchable by everyone, writable by no one.
	for _, d := range []string{filepath.Dir(root), root} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(dir, 0o555); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Chmod(dir, 0o755) })

	cfg := config.Default()
	cfg.CacheDir = dir
	cfg.Upstream = "off"
	cfg.SumDB = []string{"off"}
	cfg.Verify.Private = []string{}
	cfg.Admin.Listen = ""
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	type result struct {
		srv      *app.Server
		err      error
		writable bool
	}
	done := make(chan result, 1)
	go func() {
		// This goroutine's thread is never given back: it ends with it.
		runtime.LockOSThread()
		if os.Geteuid() == 0 {
			if err := syscall.Setfsuid(65534); err != nil {
				done <- result{err: err}
				return
			}
		}
		f, err := os.CreateTemp(dir, "probe-*")
		if err == nil {
			f.Close()
			os.Remove(f.Name())
			done <- result{writable: true}
			return
		}
		srv, err := app.New(cfg, slog.New(slog.DiscardHandler), app.Info{Version: "test"})
		done <- result{srv: srv, err: err}
	}()
	r := <-done
	switch {
	case r.writable:
		t.Skip("skipped: this process can write in a directory with mode 0555 (file permissions do not apply to it)")
	case r.srv != nil:
		r.srv.Close()
		t.Fatal("app.New accepted an unwritable cache directory")
	}
	var ce *config.Error
	if !errors.As(r.err, &ce) || ce.Key != "cache_dir" || !strings.Contains(r.err.Error(), "not writable") {
		t.Errorf("app.New = %v, want a config error naming cache_dir", r.err)
	}
}
