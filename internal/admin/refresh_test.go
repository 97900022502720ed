package admin_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"testing"

	"github.com/modproxy/modproxy/internal/admin"
	"github.com/modproxy/modproxy/internal/cacheadmin"
)

// refreshBackend is the fake backend with the Refresher capability.
type refreshBackend struct {
	*fakeBackend
	mu  sync.Mutex
	got []string // "actor module namespace"
}

func (b *refreshBackend) Refresh(ctx context.Context, actor string, req admin.RefreshRequest) (admin.RefreshResult, error) {
	if req.Namespace == "nope" {
		return admin.RefreshResult{}, fmt.Errorf("%w: no namespace nope", cacheadmin.ErrInvalid)
	}
	b.mu.Lock()
	b.got = append(b.got, actor+" "+req.Module+" "+req.Namespace)
	b.mu.Unlock()
	return admin.RefreshResult(req), nil
}

// TestRefreshEndpoint: POST /api/refresh takes its module from the JSON
// body or the query, needs the token, refuses a missing module (400) and
// an unknown namespace (400), is POST only, and is 404 on a backend that
// cannot refresh.
func TestRefreshEndpoint(t *testing.T) {
	b := &refreshBackend{fakeBackend: newFake()}
	h := admin.New(admin.Options{Backend: b, Token: testToken})
	for _, tc := range []struct {
		method, target, body string
		hdr                  []string
		want                 int
	}{
		{"POST", "/api/refresh", `{"module":"corp.example.com/lib"}`, auth(testToken), 200},
		{"POST", "/api/refresh?module=corp.example.com/lib&namespace=prod", "", auth(testToken), 200},
		{"POST", "/api/refresh", `{"module":"corp.example.com/lib"}`, nil, 401},
		{"POST", "/api/refresh", `{"module":""}`, auth(testToken), 400},
		{"POST", "/api/refresh", `{"module":"corp.example.com/lib","namespace":"nope"}`, auth(testToken), 400},
		{"GET", "/api/refresh?module=corp.example.com/lib", "", auth(testToken), 405},
	} {
		w := do(t, h, tc.method, tc.target, tc.body, tc.hdr...)
		if w.Code != tc.want {
			t.Errorf("%s %s %s: %d %s, want %d", tc.method, tc.target, tc.body, w.Code, w.Body, tc.want)
		}
	}
	want := []string{"admin@" + clientIP + " corp.example.com/lib ", "admin@" + clientIP + " corp.example.com/lib prod"}
	if fmt.Sprint(b.got) != fmt.Sprint(want) {
		t.Errorf("backend got %q, want %q", b.got, want)
	}
	w := do(t, h, "POST", "/api/refresh?module=corp.example.com/lib&namespace=prod", "", auth(testToken)...)
	var res admin.RefreshResult
	if err := json.Unmarshal(w.Body.Bytes(), &res); err != nil || res != (admin.RefreshResult{Module: "corp.example.com/lib", Namespace: "prod"}) {
		t.Errorf("answer %s (%v)", w.Body, err)
	}

	plain := admin.New(admin.Options{Backend: newFake(), Token: testToken})
	if w := do(t, plain, "POST", "/api/refresh", `{"module":"corp.example.com/lib"}`, auth(testToken)...); w.Code != http.StatusNotFound {
		t.Errorf("backend without Refresh: %d, want 404", w.Code)
	}
}
