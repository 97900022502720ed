package goproxy_test

import (
	"context"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/modproxy/modproxy/internal/access"
	"github.com/modproxy/modproxy/internal/clients"
	"github.com/modproxy/modproxy/internal/goproxy"
)

// TestClientsPerIdentity: every protocol request counts for its identity
// (bytes, last module); failed authentication and health probes count for
// nobody; without authentication requests count as anonymous.
func TestClientsPerIdentity(t *testing.T) {
	ctx := context.Background()
	svc, err := access.Open(ctx, access.Options{State: access.NewFile(filepath.Join(t.TempDir(), "tokens.json"))})
	if err != nil {
		t.Fatal(err)
	}
	secret, _, err := svc.Create(ctx, "ci", access.Grant{Scopes: []access.Scope{access.ScopeRead}}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	for _, auth := range []bool{true, false} {
		tr := clients.New(0)
		o := goproxy.Options{Clients: tr}
		if auth {
			o.Access = svc
		}
		f := newFixtureOpts(t, nil, o)
		serve := func(path, token string) int64 {
			req := httptest.NewRequest("GET", path, nil)
			if token != "" {
				req.Header.Set("Authorization", "Bearer "+token)
			}
			rec := httptest.NewRecorder()
			f.h.ServeHTTP(rec, req)
			return int64(rec.Body.Len())
		}
		var want int64
		wrong := serve("/example.com/a/@v/v1.0.0.mod", "mp_wrong") // a 401 with auth
		want += serve("/example.com/a/@v/v1.0.0.info", secret)
		want += serve("/example.com/a/@v/v1.0.0.zip", secret)
		want += serve("/example.com/missing/@v/list", secret)
		serve("/healthz", "")
		name, requests := "ci", int64(3)
		if !auth {
			name, requests = clients.Anonymous, 4
			want += wrong
		}
		cs := tr.Clients()
		if len(cs) != 1 {
			t.Fatalf("auth %v: clients %+v, want %s only", auth, cs, name)
		}
		c := cs[0]
		if c.Identity != name || c.Requests != requests || c.Bytes != want || c.LastModule != "example.com/missing" || c.LastSeen.IsZero() {
			t.Errorf("auth %v: %+v, want %s with %d requests, %d bytes, last module example.com/missing", auth, c, name, requests, want)
		}
	}
}
