package app_test

import (
	"context"
	"testing"
	"time"

	"github.com/modproxy/modproxy/internal/config"
	"github.com/modproxy/modproxy/internal/vulndb/vulndbtest"
)

// TestVulnMirrorAtStart: with vuln.source set, the first refresh runs when
// the background work starts, and the database is served at /vuln/ of the
// root and of every namespace.
func TestVulnMirrorAtStart(t *testing.T) {
	files := vulndbtest.Build(t, vulndbtest.Entry{ID: "GO-2099-0001", Modified: time.Date(2099, 1, 2, 3, 4, 5, 0, time.UTC),
		Affected: []vulndbtest.Affected{{Module: "example.com/a", Fixed: "1.1.0"}}})
	src := vulndbtest.NewServer(t, files)
	h := start(t, func(c *config.Config) {
		c.Upstream = "off"
		c.Vuln.Source = src.URL()
		c.Namespaces = []config.Namespace{{Name: "prod"}}
	})
	if code, _, _ := h.get(t, "/vuln/index/db.json"); code != 404 {
		t.Fatalf("/vuln/ before the first refresh: %d, want 404", code)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	h.srv.RunBackground(ctx)
	deadline := time.Now().Add(10 * time.Second)
	for src.Requests("ID/GO-2099-0001.json") == 0 || h.srv.VulnStatus().Generation == "" {
		if time.Now().After(deadline) {
			t.Fatal("no refresh after the background work started")
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, prefix := range []string{"", "/prod"} {
		for name, want := range files {
			if code, body, hdr := h.get(t, prefix+"/vuln/"+name); code != 200 || body != string(want) || hdr.Get("Content-Type") != "application/json" {
				t.Errorf("GET %s/vuln/%s: %d %q (%s)", prefix, name, code, body, hdr.Get("Content-Type"))
			}
		}
	}
}
