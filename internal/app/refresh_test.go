package app_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/modproxy/modproxy/internal/admin"
	"github.com/modproxy/modproxy/internal/config"
	"github.com/modproxy/modproxy/internal/coord/coordtest"
	"github.com/modproxy/modproxy/internal/upstream/upstreamtest"
)

func longTTL(c *config.Config) {
	c.Cache.TTL = config.Duration(time.Hour)
	c.Cache.NegativeTTL = config.Duration(time.Hour)
}

func newVersion() upstreamtest.Module {
	return upstreamtest.Module{Path: "example.com/a", Version: "v1.2.0", Files: map[string][]byte{"go.mod": []byte("module example.com/a\n")}}
}

// TestRefreshAPI: with a long TTL a new upstream version is not listed;
// after POST /api/refresh for the module (root and namespaces) the root
// and a namespace list it at once; the refresh is audited.
func TestRefreshAPI(t *testing.T) {
	up := upstreamtest.New(t, testMods(), upstreamtest.WithoutSumDB())
	h := start(t, func(c *config.Config) {
		c.Upstream = up.URL()
		longTTL(c)
		c.Namespaces = []config.Namespace{{Name: "prod"}}
	})
	const list = "/example.com/a/@v/list"
	for _, p := range []string{list, "/prod" + list} {
		if status, body, _ := h.get(t, p); status != 200 || body != "v1.0.0\nv1.1.0\n" {
			t.Fatalf("GET %s: %d %q", p, status, body)
		}
	}
	up.Add(newVersion())
	if _, body, _ := h.get(t, list); body != "v1.0.0\nv1.1.0\n" {
		t.Fatalf("list within its TTL %q, want the cached one", body)
	}
	adm := httptest.NewServer(h.srv.AdminHandler())
	defer adm.Close()
	resp, err := http.Post(adm.URL+"/api/refresh?module=example.com/a", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("POST /api/refresh: %s", resp.Status)
	}
	for _, p := range []string{list, "/prod" + list} {
		if status, body, _ := h.get(t, p); status != 200 || body != "v1.0.0\nv1.1.0\nv1.2.0\n" {
			t.Errorf("GET %s after refresh: %d %q", p, status, body)
		}
	}
	resp, err = http.Post(adm.URL+"/api/refresh?module=example.com/a&namespace=nope", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Errorf("refresh of an unknown namespace: %s, want 400", resp.Status)
	}
	evs := adminGet[[]map[string]any](t, h.srv, "/api/audit?action=refresh")
	if len(evs) != 1 || evs[0]["target"] != "*:example.com/a" {
		t.Errorf("audit %v, want one refresh", evs)
	}
}

// TestClusterRefresh: a refresh asked of one replica reaches another
// (each with its own disk store) through Redis.
func TestClusterRefresh(t *testing.T) {
	redis := coordtest.Start(t)
	up := upstreamtest.New(t, testMods(), upstreamtest.WithoutSumDB())
	var hs []*harness
	for range 2 {
		hs = append(hs, start(t, func(c *config.Config) {
			c.Upstream = up.URL()
			c.Cluster.Redis = redis.Addr
			longTTL(c)
		}))
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for _, h := range hs {
		h.srv.RunBackground(ctx)
	}
	const list = "/example.com/a/@v/list"
	for _, h := range hs {
		if status, _, _ := h.get(t, list); status != 200 {
			t.Fatalf("GET: %d", status)
		}
	}
	up.Add(newVersion())
	time.Sleep(300 * time.Millisecond) // subscriptions up (a message before is lost, as in TestClusterPurgeAndRedisOutage)
	if _, err := hs[0].srv.Admin().(admin.Refresher).Refresh(ctx, "admin", admin.RefreshRequest{Module: "example.com/a"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		_, body, _ := hs[1].get(t, list)
		return body == "v1.0.0\nv1.1.0\nv1.2.0\n"
	})
}
