package goproxy_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/modproxy/modproxy/internal/access"
	"github.com/modproxy/modproxy/internal/goproxy"
)

// retryAfter is a rate limit's error, as cacheadmin.RateLimitError.
type retryAfter time.Duration

func (d retryAfter) Error() string             { return "too many" }
func (d retryAfter) RetryAfter() time.Duration { return time.Duration(d) }

// TestRefreshEndpoint: POST /api/refresh on the protocol listener needs a
// token with the publish scope for the module path (a private path
// within the grant's patterns) or the admin scope, whatever auth.mode
// (Access is not set here); it refreshes in the handler's namespace. A
// handler without a Refresher answers POST with 405 as before; a rate
// limit of the Refresher is a 429 with Retry-After in whole seconds.
func TestRefreshEndpoint(t *testing.T) {
	ctx := context.Background()
	svc, err := access.Open(ctx, access.Options{State: access.NewFile(filepath.Join(t.TempDir(), "tokens.json")), Private: "corp.example.com"})
	if err != nil {
		t.Fatal(err)
	}
	token := func(name string, scope access.Scope, match ...string) string {
		g, err := access.NewGrant([]access.Scope{scope}, []string{"prod"}, match)
		if err != nil {
			t.Fatal(err)
		}
		secret, _, err := svc.Create(ctx, name, g, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		return secret
	}
	reader := token("reader", access.ScopeRead)
	ci := token("ci", access.ScopePublish, "corp.example.com/team-a/*")
	adm := token("ops", access.ScopeAdmin)
	limited := token("limited", access.ScopePublish)
	var got []string
	h := goproxy.New(goproxy.Options{Namespace: "prod", Tokens: svc,
		Refresh: func(ctx context.Context, id, actor, ns, mod string) error {
			if id == "limited" {
				return fmt.Errorf("refresh: %w", retryAfter(1500*time.Millisecond))
			}
			got = append(got, id+" "+actor+" "+ns+" "+mod)
			return nil
		}})
	post := func(h http.Handler, tok, target, body string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodPost, target, strings.NewReader(body))
		req.RemoteAddr = "192.0.2.9:1234"
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		return w
	}
	for _, tc := range []struct {
		tok, target, body string
		want              int
	}{
		{"", "/api/refresh?module=corp.example.com/team-a/lib", "", 401},
		{reader, "/api/refresh?module=corp.example.com/team-a/lib", "", 403},
		{ci, "/api/refresh?module=corp.example.com/team-b/lib", "", 403},
		{ci, "/api/refresh", `{"module":"corp.example.com/team-a/lib"}`, 200},
		{ci, "/api/refresh", `{"module":"corp.example.com/team-a/lib","namespace":"dev"}`, 400},
		{ci, "/api/refresh", `{"module":"not a path"}`, 400},
		{adm, "/api/refresh?module=corp.example.com/team-b/lib", "", 200},
	} {
		w := post(h, tc.tok, tc.target, tc.body)
		if w.Code != tc.want {
			t.Errorf("POST %s %s: %d %s, want %d", tc.target, tc.body, w.Code, w.Body, tc.want)
		}
	}
	want := []string{"ci token ci@192.0.2.9 prod corp.example.com/team-a/lib", "ops token ops@192.0.2.9 prod corp.example.com/team-b/lib"}
	if !slices.Equal(got, want) {
		t.Errorf("refreshes %q, want %q", got, want)
	}
	w := post(h, limited, "/api/refresh?module=example.com/m", "")
	if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") != "2" {
		t.Errorf("rate-limited refresh: %d, Retry-After %q; want 429 and 2", w.Code, w.Header().Get("Retry-After"))
	}
	plain := goproxy.New(goproxy.Options{})
	if w := post(plain, ci, "/api/refresh?module=corp.example.com/team-a/lib", ""); w.Code != http.StatusMethodNotAllowed {
		t.Errorf("without a Refresher: %d, want 405", w.Code)
	}
}
