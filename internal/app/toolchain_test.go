package app_test

import (
	"testing"

	"github.com/modproxy/modproxy/internal/config"
	"github.com/modproxy/modproxy/internal/toolchain/toolchaintest"
	"github.com/modproxy/modproxy/internal/upstream/upstreamtest"
)

// TestToolchainMirrorWired: dl.source mounts the mirror at /dl/ (not in
// namespaces), and cache-only mode at run time covers it.
func TestToolchainMirrorWired(t *testing.T) {
	up := upstreamtest.New(t, testMods(), upstreamtest.WithoutSumDB())
	f := toolchaintest.Archive("go1.30.1", "go1.30.1.linux-arm64.tar.gz", 1<<20)
	g := toolchaintest.Archive("go1.30.1", "go1.30.1.linux-386.tar.gz", 1<<10)
	site := toolchaintest.New(t, f, g)
	h := start(t, func(c *config.Config) {
		c.Upstream = up.URL()
		c.DL.Source = site.URL
		c.Namespaces = []config.Namespace{{Name: "prod"}}
	})
	if code, body, _ := h.get(t, "/dl/"+f.Name); code != 200 || body != string(f.Data) {
		t.Fatalf("GET /dl/%s: %d, %d bytes", f.Name, code, len(body))
	}
	if code, body, _ := h.get(t, "/dl/"+g.Name+".sha256"); code != 200 || body != g.SHA256() {
		t.Errorf(".sha256: %d %q", code, body)
	}
	if code, _, _ := h.get(t, "/prod/dl/"+f.Name); code != 404 {
		t.Errorf("/prod/dl/: %d, want 404", code)
	}
	h.srv.SetOffline(true)
	if code, _, _ := h.get(t, "/dl/"+g.Name); code != 404 || site.Requests(g.Name) != 0 {
		t.Errorf("offline, not stored: %d (%d downloads), want 404 and none", code, site.Requests(g.Name))
	}
	if code, body, _ := h.get(t, "/dl/"+f.Name); code != 200 || body != string(f.Data) {
		t.Errorf("offline, stored: %d", code)
	}
}
