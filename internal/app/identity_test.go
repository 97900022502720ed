package app_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/modproxy/modproxy/internal/access"
	"github.com/modproxy/modproxy/internal/admin"
	"github.com/modproxy/modproxy/internal/app"
	"github.com/modproxy/modproxy/internal/audit"
	"github.com/modproxy/modproxy/internal/config"
	"github.com/modproxy/modproxy/internal/upstream/upstreamtest"
)

// createTokens makes tokens in the cache of cfg (before the server
// starts) and returns their secrets by name.
func createTokens(t *testing.T, cfg config.Config, grants map[string][]access.Scope) map[string]string {
	t.Helper()
	svc, err := app.OpenAccess(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for name, scopes := range grants {
		secret, _, err := svc.Create(context.Background(), name, access.Grant{Scopes: scopes}, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		out[name] = secret
	}
	return out
}

// adminCall sends one admin API request with a bearer token and decodes
// the answer into v (when not nil); it returns the status.
func adminCall(t *testing.T, srv *app.Server, method, path, token, body string, v any) int {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, path, r)
	req.Host = "localhost"
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	rec := httptest.NewRecorder()
	srv.AdminHandler().ServeHTTP(rec, req)
	if v != nil && rec.Code == 200 {
		if err := json.Unmarshal(rec.Body.Bytes(), v); err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
	}
	return rec.Code
}

// TestAuditIdentity: admin API actions made with a token of the admin
// scope name it in their audit records, a read token cannot act (403),
// and a quarantine caused by a protocol request names the requester.
func TestAuditIdentity(t *testing.T) {
	up := upstreamtest.New(t, testMods(), upstreamtest.WithoutSumDB())
	up.SetFault("example.com/a/@v/v1.1.0.zip", upstreamtest.Fault{Kind: upstreamtest.CorruptZip})
	var tokens map[string]string
	h := start(t, func(c *config.Config) {
		c.Upstream = up.URL()
		c.Auth.Mode = "required"
		tokens = createTokens(t, *c, map[string][]access.Scope{"team-a": {access.ScopeRead}, "ops": {access.ScopeAdmin}})
	})
	bearer := func(name string) []string { return []string{"Authorization", "Bearer " + tokens[name]} }
	if status, body, _ := h.get(t, "/example.com/a/@v/v1.0.0.zip", bearer("team-a")...); status != 200 {
		t.Fatalf("zip: %d %s", status, body)
	}
	if status, body, _ := h.get(t, "/example.com/a/@v/v1.1.0.zip", bearer("team-a")...); status != 502 {
		t.Fatalf("corrupt zip: %d %s, want 502", status, body)
	}

	if code := adminCall(t, h.srv, "POST", "/api/purge", tokens["team-a"], `{"module":"example.com/a","versions":"v1.0.0","reason":"test"}`, nil); code != 403 {
		t.Errorf("purge with a read token: %d, want 403", code)
	}
	if code := adminCall(t, h.srv, "POST", "/api/purge", "", `{"module":"example.com/a","versions":"v1.0.0","reason":"test"}`, nil); code != 200 {
		// Loopback without admin.token: the API is open, no identity.
		t.Fatalf("purge without credentials on loopback: %d", code)
	}
	var purged admin.PurgeResult
	if code := adminCall(t, h.srv, "POST", "/api/trash/restore", tokens["ops"], `{"id":"unknown"}`, nil); code != 404 {
		t.Errorf("restore of an unknown batch: %d, want 404", code)
	}
	if status, _, _ := h.get(t, "/example.com/a/@v/v1.0.0.zip", bearer("team-a")...); status != 200 {
		t.Fatalf("zip again: %d", status)
	}
	if code := adminCall(t, h.srv, "POST", "/api/purge", tokens["ops"], `{"module":"example.com/a","versions":"v1.0.0","reason":"test"}`, &purged); code != 200 {
		t.Fatalf("purge with the admin token: %d", code)
	}
	if code := adminCall(t, h.srv, "POST", "/api/trash/restore", tokens["ops"], `{"id":"`+purged.TrashID+`"}`, nil); code != 200 {
		t.Fatalf("restore %q: %d", purged.TrashID, code)
	}
	if code := adminCall(t, h.srv, "POST", "/api/pins", tokens["ops"], `{"pattern":"example.com/a"}`, nil); code != 200 {
		t.Fatalf("pin: %d", code)
	}

	var evs []audit.Event
	if code := adminCall(t, h.srv, "GET", "/api/audit?limit=100", tokens["ops"], "", &evs); code != 200 {
		t.Fatalf("audit: %d", code)
	}
	got := map[string][]string{}
	for _, e := range evs {
		got[e.Action] = append(got[e.Action], e.Identity)
	}
	for action, want := range map[string][]string{
		"quarantine": {"team-a"},
		"purge":      {"ops", ""}, // newest first
		"restore":    {"ops"},
		"pin":        {"ops"},
	} {
		if strings.Join(got[action], ",") != strings.Join(want, ",") {
			t.Errorf("%s records name %q, want %q", action, got[action], want)
		}
	}
	var mine []audit.Event
	if code := adminCall(t, h.srv, "GET", "/api/audit?identity=team-a", tokens["ops"], "", &mine); code != 200 || len(mine) != 1 {
		t.Errorf("audit?identity=team-a: %d, %d events, want 1", code, len(mine))
	}
}

// TestClientsEndpoint: /api/clients and /metrics count protocol requests
// per identity.
func TestClientsEndpoint(t *testing.T) {
	up := upstreamtest.New(t, testMods(), upstreamtest.WithoutSumDB())
	var tokens map[string]string
	h := start(t, func(c *config.Config) {
		c.Upstream = up.URL()
		c.Auth.Mode = "required"
		tokens = createTokens(t, *c, map[string][]access.Scope{"team-a": {access.ScopeRead}, "ops": {access.ScopeAdmin}})
	})
	var sent int64
	for _, p := range []string{"/example.com/a/@v/v1.0.0.info", "/example.com/a/@v/v1.0.0.mod"} {
		// In process, so that the request is counted when it returns.
		req := httptest.NewRequest("GET", p, nil)
		req.Header.Set("Authorization", "Bearer "+tokens["team-a"])
		rec := httptest.NewRecorder()
		h.srv.Handler().ServeHTTP(rec, req)
		if rec.Code != 200 {
			t.Fatalf("GET %s: %d %s", p, rec.Code, rec.Body)
		}
		sent += int64(rec.Body.Len())
	}
	var cs []admin.ClientTraffic
	if code := adminCall(t, h.srv, "GET", "/api/clients", tokens["ops"], "", &cs); code != 200 {
		t.Fatalf("/api/clients: %d", code)
	}
	if len(cs) != 1 || cs[0].Identity != "team-a" || cs[0].Requests != 2 || cs[0].Bytes != sent || cs[0].LastModule != "example.com/a" {
		t.Errorf("/api/clients = %+v, want team-a with 2 requests, %d bytes, last module example.com/a", cs, sent)
	}
	_, body, _ := h.get(t, "/metrics", "Authorization", "Bearer "+tokens["team-a"])
	for name, want := range map[string]string{
		`modproxy_client_requests_total{identity="team-a"}`: "2",
		`modproxy_client_bytes_total{identity="team-a"}`:    formatFloat(sent),
	} {
		if got, _ := sample(body, name); got != want {
			t.Errorf("%s = %q, want %s", name, got, want)
		}
	}
}
