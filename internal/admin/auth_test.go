package admin_test

import (
	"context"
	"encoding/base64"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modproxy/modproxy/internal/access"
	"github.com/modproxy/modproxy/internal/admin"
)

// identityBackend records the identity each GCRun's context carries.
type identityBackend struct {
	*fakeBackend
	mu  sync.Mutex
	ids []string
}

func (b *identityBackend) GCRun(ctx context.Context, actor string) (admin.GCResult, error) {
	id, _ := access.FromContext(ctx)
	b.mu.Lock()
	b.ids = append(b.ids, id.Name)
	b.mu.Unlock()
	return b.fakeBackend.GCRun(ctx, actor)
}

func (b *identityBackend) last() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.ids) == 0 {
		return "<no call>"
	}
	return b.ids[len(b.ids)-1]
}

// testAccess returns an access service with an admin token "ops", a
// read-only token "ci" and a revoked admin token "old", and their secrets.
func testAccess(t *testing.T) (*access.Service, map[string]string) {
	t.Helper()
	svc, err := access.Open(context.Background(), access.Options{State: access.NewFile(filepath.Join(t.TempDir(), "tokens.json"))})
	if err != nil {
		t.Fatal(err)
	}
	secrets := map[string]string{}
	for name, scopes := range map[string][]access.Scope{
		"ops": {access.ScopeAdmin}, "ci": {access.ScopeRead}, "old": {access.ScopeAdmin, access.ScopeRead},
	} {
		secret, _, err := svc.Create(context.Background(), name, access.Grant{Scopes: scopes}, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		secrets[name] = secret
	}
	if err := svc.Revoke(context.Background(), "old"); err != nil {
		t.Fatal(err)
	}
	return svc, secrets
}

func basic(user, pass string) []string {
	return []string{"Authorization", "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))}
}

func TestAdminScopeTokens(t *testing.T) {
	svc, secret := testAccess(t)
	for _, withToken := range []bool{true, false} {
		b := &identityBackend{fakeBackend: newFake()}
		opts := admin.Options{Backend: b, Access: svc}
		if withToken {
			opts.Token = testToken
		}
		h := admin.New(opts)
		type tc struct {
			name     string
			hdr      []string
			host     string
			code     int
			identity string // of the call, when it passes
		}
		tests := []tc{
			{"admin token", auth(secret["ops"]), "", 200, "ops"},
			{"admin token as basic password", basic("anyone", secret["ops"]), "", 200, "ops"},
			{"admin token, any host", auth(secret["ops"]), "http://proxy.corp.example", 200, "ops"},
			{"read-only token", auth(secret["ci"]), "", 403, ""},
			{"revoked token", auth(secret["old"]), "", 401, ""},
			{"unknown token", auth("mp_" + strings.Repeat("x", 43)), "", 401, ""},
			{"malformed header", []string{"Authorization", "Negotiate abc"}, "", 401, ""},
		}
		if withToken {
			tests = append(tests,
				tc{"configured token", auth(testToken), "", 200, admin.BootstrapIdentity},
				tc{"no credentials", nil, "", 401, ""})
		} else {
			tests = append(tests,
				tc{"no credentials on loopback", nil, "", 200, ""},
				tc{"configured token not set", auth(testToken), "", 401, ""},
				tc{"no credentials, other host", nil, "http://proxy.corp.example", 403, ""})
		}
		for _, tt := range tests {
			target := "/api/gc/run"
			if tt.host != "" {
				target = tt.host + target
			}
			w := do(t, h, "POST", target, "", tt.hdr...)
			if w.Code != tt.code {
				t.Errorf("token %v, %s: status %d, want %d: %s", withToken, tt.name, w.Code, tt.code, w.Body)
				continue
			}
			switch tt.code {
			case 200:
				if got := b.last(); got != tt.identity {
					t.Errorf("token %v, %s: the backend saw identity %q, want %q", withToken, tt.name, got, tt.identity)
				}
			case 401:
				if !strings.HasPrefix(w.Header().Get("WWW-Authenticate"), "Bearer ") {
					t.Errorf("token %v, %s: 401 without a Bearer challenge", withToken, tt.name)
				}
			case 403:
				if w.Header().Get("WWW-Authenticate") != "" {
					t.Errorf("token %v, %s: 403 with a challenge", withToken, tt.name)
				}
			}
			for _, s := range secret {
				if strings.Contains(w.Body.String(), s) {
					t.Errorf("token %v, %s: the answer holds a token", withToken, tt.name)
				}
			}
		}
	}
}

func TestAuditQueryIdentity(t *testing.T) {
	f := newFake()
	h := admin.New(admin.Options{Backend: f})
	if w := do(t, h, "GET", "/api/audit?identity=+ops+", ""); w.Code != http.StatusOK {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	if f.lastAQ.Identity != "ops" {
		t.Errorf("query identity %q, want ops", f.lastAQ.Identity)
	}
}
