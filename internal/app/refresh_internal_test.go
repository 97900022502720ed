package app

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/modproxy/modproxy/internal/access"
	"github.com/modproxy/modproxy/internal/config"
)

// TestProtocolRefreshRateLimit: refreshes on the protocol listener are
// limited per identity across namespaces (the default burst of 60 passes,
// then 429 with Retry-After); another identity is not affected.
func TestProtocolRefreshRateLimit(t *testing.T) {
	cfg := config.Default()
	cfg.Listen, cfg.Admin.Listen = "127.0.0.1:0", "off"
	cfg.CacheDir = t.TempDir()
	cfg.Upstream = "http://127.0.0.1:1" // never asked
	cfg.SumDB, cfg.Verify.Private = []string{"off"}, []string{}
	cfg.Resilience.ProbeInterval = 0
	cfg.Namespaces = []config.Namespace{{Name: "prod"}}
	srv, err := New(cfg, slog.New(slog.DiscardHandler), Info{Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ctx := context.Background()
	token := func(name string) string {
		g, err := access.NewGrant([]access.Scope{access.ScopePublish}, []string{"*"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		secret, _, err := srv.access.Create(ctx, name, g, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		return secret
	}
	ci, other := token("ci"), token("ci2")
	h := srv.Handler()
	post := func(tok, path string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodPost, path+"?module=example.com/a", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		return w
	}
	for i := range 60 { // the default burst, half of it in a namespace
		p := "/api/refresh"
		if i%2 == 1 {
			p = "/prod/api/refresh"
		}
		if w := post(ci, p); w.Code != http.StatusOK {
			t.Fatalf("refresh %d: %d %s", i, w.Code, w.Body)
		}
	}
	// Beyond the burst: refused (one more a second comes back, so allow
	// for a slow machine rather than assert on the 61st).
	var w *httptest.ResponseRecorder
	for range 100 {
		if w = post(ci, "/prod/api/refresh"); w.Code != http.StatusOK {
			break
		}
	}
	if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") == "" {
		t.Errorf("refresh beyond the burst: %d %s, Retry-After %q; want 429 with Retry-After", w.Code, w.Body, w.Header().Get("Retry-After"))
	}
	if w := post(other, "/api/refresh"); w.Code != http.StatusOK {
		t.Errorf("another identity: %d %s", w.Code, w.Body)
	}
}
