package goproxy_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modproxy/modproxy/internal/access"
	"github.com/modproxy/modproxy/internal/goproxy"
	"github.com/modproxy/modproxy/internal/upstream/upstreamtest"
)

// authFixture serves the fixture with two teams' tokens and a private
// module of team A's.
type authFixture struct {
	*fixture
	teamA, teamB string
	log          *bytes.Buffer
	logMu        *sync.Mutex
}

func newAuthFixture(t *testing.T) *authFixture {
	t.Helper()
	ctx := context.Background()
	svc, err := access.Open(ctx, access.Options{State: access.NewFile(filepath.Join(t.TempDir(), "tokens.json")), Private: "corp.example.com"})
	if err != nil {
		t.Fatal(err)
	}
	token := func(name, match string) string {
		g, err := access.NewGrant([]access.Scope{access.ScopeRead}, nil, []string{match})
		if err != nil {
			t.Fatal(err)
		}
		secret, _, err := svc.Create(ctx, name, g, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		return secret
	}
	af := &authFixture{teamA: token("team-a", "corp.example.com/team-a/*"), teamB: token("team-b", "corp.example.com/team-b/*"), log: &bytes.Buffer{}, logMu: &sync.Mutex{}}
	extra := []upstreamtest.Module{{Path: "corp.example.com/team-a/lib", Version: "v1.0.0",
		Files: map[string][]byte{"go.mod": []byte("module corp.example.com/team-a/lib\n"), "lib.go": []byte("package lib\n")}}}
	af.fixture = newFixtureOpts(t, extra, goproxy.Options{Access: svc, Logger: slog.New(slog.NewTextHandler(syncWriter{af.logMu, af.log}, nil))})
	return af
}

// syncWriter serialises writes: handlers log from the server's goroutines.
type syncWriter struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (w syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func bearer(token string) map[string]string {
	return map[string]string{"Authorization": "Bearer " + token}
}

// TestAuthRequired: with Access set, every request but the health
// endpoints needs an identity; missing, malformed and unknown credentials
// are a 401 with a Basic challenge; a token works as Bearer and as Basic
// password with any user name.
func TestAuthRequired(t *testing.T) {
	f := newAuthFixture(t)
	for _, hdr := range []map[string]string{
		nil,
		{"Authorization": "Bearer mp_unknown"},
		{"Authorization": "Bearer"},
		{"Authorization": "Negotiate abc"},
		{"Authorization": "Basic %%%"},
	} {
		for _, p := range []string{"/example.com/a/@v/list", "/", "/sumdb/" + mustSumDB(f.fixture) + "/supported"} {
			resp, body := f.do(t, "GET", p, hdr)
			if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") != `Basic realm="modproxy"` ||
				!strings.HasPrefix(string(body), "authentication required: ") {
				t.Errorf("%s with %v: %d %q %q; want 401 with a Basic challenge", p, hdr, resp.StatusCode, resp.Header.Get("WWW-Authenticate"), body)
			}
			if strings.Contains(string(body), "mp_") {
				t.Errorf("%s: the answer shows the token: %q", p, body)
			}
		}
	}
	for _, p := range []string{"/healthz", "/readyz"} {
		if resp, _ := f.do(t, "GET", p, nil); resp.StatusCode != http.StatusOK {
			t.Errorf("%s without credentials: %d, want 200", p, resp.StatusCode)
		}
	}
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte("anyone:"+f.teamB))
	for _, hdr := range []map[string]string{bearer(f.teamA), {"Authorization": basic}} {
		if resp, body := f.do(t, "GET", "/example.com/a/@v/v1.0.0.info", hdr); resp.StatusCode != http.StatusOK {
			t.Errorf("public module with %v: %d %q", hdr, resp.StatusCode, body)
		}
		if resp, _ := f.do(t, "GET", "/sumdb/"+mustSumDB(f.fixture)+"/supported", hdr); resp.StatusCode != http.StatusOK {
			t.Errorf("sumdb supported: %d", resp.StatusCode)
		}
	}
	f.logMu.Lock()
	logged := f.log.String()
	f.logMu.Unlock()
	if !strings.Contains(logged, "identity=team-a") || !strings.Contains(logged, "identity=team-b") {
		t.Errorf("the access log does not name the identities:\n%s", logged)
	}
	if strings.Contains(logged, f.teamA) || strings.Contains(logged, f.teamB) {
		t.Error("a token secret was logged")
	}
}

// TestRefusedIsMissing: team B's token gets team A's private module as a
// 404 that is byte for byte a real miss's answer (team A asking for a
// module that does not exist) apart from the module path, while team A
// downloads it.
func TestRefusedIsMissing(t *testing.T) {
	f := newAuthFixture(t)
	for _, p := range []string{"/corp.example.com/team-a/lib/@v/v1.0.0.info", "/corp.example.com/team-a/lib/@v/list", "/corp.example.com/team-a/lib/@v/v1.0.0.zip"} {
		if resp, body := f.do(t, "GET", p, bearer(f.teamA)); resp.StatusCode != http.StatusOK {
			t.Errorf("team A %s: %d %q", p, resp.StatusCode, body)
		}
	}
	for _, suffix := range []string{"/@v/v1.0.0.info", "/@v/list", "/@latest"} {
		refused, rbody := f.do(t, "GET", "/corp.example.com/team-a/lib"+suffix, bearer(f.teamB))
		missing, mbody := f.do(t, "GET", "/corp.example.com/team-a/xyz"+suffix, bearer(f.teamA))
		if refused.StatusCode != http.StatusNotFound || missing.StatusCode != http.StatusNotFound {
			t.Fatalf("%s: refused %d, missing %d; want 404 both", suffix, refused.StatusCode, missing.StatusCode)
		}
		if got := bytes.ReplaceAll(rbody, []byte("team-a/lib"), []byte("team-a/xyz")); !bytes.Equal(got, mbody) {
			t.Errorf("%s: refused body %q, missing body %q", suffix, rbody, mbody)
		}
		refused.Header.Del("Date")
		missing.Header.Del("Date")
		if rh, mh := headerText(t, refused.Header), headerText(t, missing.Header); rh != mh {
			t.Errorf("%s: headers differ:\nrefused %s\nmissing %s", suffix, rh, mh)
		}
	}
}

func headerText(t *testing.T, h http.Header) string {
	t.Helper()
	var b bytes.Buffer
	if err := h.Write(&b); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func mustSumDB(f *fixture) string {
	name, _ := f.up.SumDB()
	return name
}
