// Package apptest runs modproxy in process for tests of the client tools
// (prefetch, the CLI) that need a real server in front of a fake upstream.
package apptest

import (
	"io"
	"net/http/httptest"
	"testing"

	"github.com/modproxy/modproxy/internal/app"
	"github.com/modproxy/modproxy/internal/config"
	"github.com/modproxy/modproxy/internal/upstream/upstreamtest"
)

// Start runs modproxy on loopback in front of up, with checksum
// verification against up's test database and a cache in a temporary
// directory, and returns its URL. It stops when the test ends. Warming
// (warm.zips) is off: the client tools' tests count what their own
// requests make modproxy fetch upstream.
func Start(t testing.TB, up *upstreamtest.Server) string {
	t.Helper()
	_, key := up.SumDB()
	cfg := config.Default()
	cfg.CacheDir = t.TempDir()
	cfg.Upstream = up.URL()
	cfg.SumDB = []string{key}
	cfg.Verify.Private = []string{}
	cfg.Warm.Zips = false
	srv, err := app.New(cfg, app.NewLogger(cfg.Log, io.Discard), app.Info{Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		ts.Close()
		srv.Close()
	})
	return ts.URL
}
