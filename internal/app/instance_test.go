package app_test

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/modproxy/modproxy/internal/app"
	"github.com/modproxy/modproxy/internal/config"
)

// serveInBackground runs srv.Serve until the test ends and returns the
// main listener's address once it is bound.
func serveInBackground(t *testing.T, srv *app.Server) net.Addr {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	addrc := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, func(a net.Addr) { addrc <- a }) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	select {
	case a := <-addrc:
		return a
	case err := <-done:
		t.Fatalf("Serve: %v", err)
	}
	return nil
}

// TestAdminRecord: a serving process records its admin API in
// CACHE_DIR/state/admin.json for the CLI and removes it at shutdown; one
// without an admin listener removes a record an earlier run left.
func TestAdminRecord(t *testing.T) {
	cfg := config.Default()
	cfg.CacheDir = t.TempDir()
	cfg.SumDB = []string{"off"}
	cfg.Verify.Private = []string{}
	cfg.Upstream = "off"
	cfg.Listen = "127.0.0.1:0"
	cfg.Admin.Listen = "127.0.0.1:0"
	cfg.Resilience.ProbeInterval = 0

	if _, ok, err := app.RunningAdmin(cfg.CacheDir); ok || err != nil {
		t.Fatalf("RunningAdmin before any server: %v %v", ok, err)
	}
	t.Run("recorded while serving", func(t *testing.T) {
		srv, err := app.New(cfg, slog.New(slog.DiscardHandler), app.Info{Version: "test"})
		if err != nil {
			t.Fatal(err)
		}
		defer srv.Close()
		serveInBackground(t, srv)
		var st app.AdminState
		waitFor(t, func() bool {
			var ok bool
			st, ok, err = app.RunningAdmin(cfg.CacheDir)
			return ok || err != nil
		})
		if err != nil || st.PID != os.Getpid() {
			t.Fatalf("RunningAdmin = %+v, %v", st, err)
		}
		resp, err := http.Get(st.URL + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s/healthz: %d", st.URL, resp.StatusCode)
		}
	})
	if _, ok, err := app.RunningAdmin(cfg.CacheDir); ok || err != nil {
		t.Errorf("record after shutdown: %v %v", ok, err)
	}

	t.Run("stale record removed", func(t *testing.T) {
		path := filepath.Join(cfg.CacheDir, "state", "admin.json")
		if err := os.WriteFile(path, []byte(`{"url":"http://127.0.0.1:1","pid":1}`), 0o644); err != nil {
			t.Fatal(err)
		}
		if st, ok, err := app.RunningAdmin(cfg.CacheDir); !ok || err != nil || st.URL != "http://127.0.0.1:1" {
			t.Fatalf("RunningAdmin of the stale record = %+v %v %v", st, ok, err)
		}
		off := cfg
		off.Admin.Listen = ""
		srv, err := app.New(off, slog.New(slog.DiscardHandler), app.Info{Version: "test"})
		if err != nil {
			t.Fatal(err)
		}
		defer srv.Close()
		serveInBackground(t, srv)
		waitFor(t, func() bool {
			_, ok, _ := app.RunningAdmin(cfg.CacheDir)
			return !ok
		})
	})
}
