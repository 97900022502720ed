package access

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// memState is a State in memory; err, when set, fails every call.
type memState struct {
	mu     sync.Mutex
	data   []byte
	err    error
	reads  int
	writes int
}

func (m *memState) Read(ctx context.Context) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.reads++
	if m.err != nil {
		return nil, m.err
	}
	if m.data == nil {
		return nil, fs.ErrNotExist
	}
	return bytes.Clone(m.data), nil
}

func (m *memState) Write(ctx context.Context, data []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.writes++
	if m.err != nil {
		return m.err
	}
	m.data = bytes.Clone(data)
	return nil
}

func (m *memState) set(data []byte, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.data, m.err = data, err
}

func openService(t *testing.T, o Options) *Service {
	t.Helper()
	s, err := Open(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func readGrant(t *testing.T, match ...string) Grant {
	t.Helper()
	g, err := NewGrant([]Scope{ScopeRead}, nil, match)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func create(t *testing.T, s *Service, name string, g Grant, expires time.Time) string {
	t.Helper()
	secret, _, err := s.Create(context.Background(), name, g, expires)
	if err != nil {
		t.Fatal(err)
	}
	return secret
}

func bearer(secret string) *http.Request {
	r, err := http.NewRequest("GET", "https://proxy.example/m/@v/list", nil)
	if err != nil {
		panic(err)
	}
	r.Header.Set("Authorization", "Bearer "+secret)
	return r
}

func TestCreateAuthenticateRevoke(t *testing.T) {
	ctx := context.Background()
	s := openService(t, Options{State: &memState{}})
	secret, tok, err := s.Create(ctx, "team-a", readGrant(t, "corp.example.com/team-a/*"), time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(secret, TokenPrefix) || len(secret) != len(TokenPrefix)+43 {
		t.Errorf("secret %q: want %s and 43 base64url characters (32 bytes)", secret, TokenPrefix)
	}
	if tok.Name != "team-a" || tok.Created.IsZero() || !tok.Expires.IsZero() || tok.Status(time.Now()) != "active" {
		t.Errorf("Create returned %+v", tok)
	}
	id, err := s.Authenticate(bearer(secret))
	if err != nil {
		t.Fatal(err)
	}
	if id.Name != "team-a" || id.Kind != KindToken || !s.Allowed(id, ScopeRead, "", "corp.example.com/team-a/lib") {
		t.Errorf("Authenticate = %+v", id)
	}

	other := create(t, s, "team-b", readGrant(t), time.Time{})
	if other == secret {
		t.Fatal("two tokens with the same secret")
	}
	if err := s.Revoke(ctx, "team-a"); err != nil {
		t.Fatal(err)
	}
	_, err = s.Authenticate(bearer(secret))
	var ae *AuthError
	if !errors.Is(err, ErrRejected) || !errors.As(err, &ae) || ae.Name != "team-a" || ae.Reason != "token revoked" {
		t.Errorf("revoked token: %v, want ErrRejected naming team-a", err)
	}
	if _, err := s.Authenticate(bearer(other)); err != nil {
		t.Errorf("the other token after a revocation: %v", err)
	}
	if err := s.Revoke(ctx, "team-a"); err != nil {
		t.Errorf("revoking twice: %v", err)
	}
	if err := s.Revoke(ctx, "nobody"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("revoking an unknown token: %v, want fs.ErrNotExist", err)
	}

	list := s.List()
	if len(list) != 2 || list[0].Name != "team-a" || list[0].Status(time.Now()) != "revoked" || list[1].Name != "team-b" {
		t.Fatalf("List = %+v", list)
	}
}

func TestCreateNames(t *testing.T) {
	ctx := context.Background()
	s := openService(t, Options{State: &memState{}})
	old := create(t, s, "ci", readGrant(t), time.Time{})
	if _, _, err := s.Create(ctx, "ci", readGrant(t), time.Time{}); !errors.Is(err, fs.ErrExist) {
		t.Errorf("second token named ci: %v, want fs.ErrExist", err)
	}
	// A revoked token's name can be given to a new token, which replaces it.
	if err := s.Revoke(ctx, "ci"); err != nil {
		t.Fatal(err)
	}
	fresh := create(t, s, "ci", readGrant(t), time.Time{})
	if _, err := s.Authenticate(bearer(fresh)); err != nil {
		t.Errorf("new token: %v", err)
	}
	if _, err := s.Authenticate(bearer(old)); !errors.Is(err, ErrRejected) {
		t.Errorf("replaced token: %v, want ErrRejected", err)
	}
	if l := s.List(); len(l) != 1 || l[0].Status(time.Now()) != "active" {
		t.Errorf("List = %+v, want one active ci", l)
	}
	for _, bad := range []string{"", "-x", ".x", "a b", "a/b", "ä", strings.Repeat("a", 65), AnonymousName, OtherName} {
		if _, _, err := s.Create(ctx, bad, readGrant(t), time.Time{}); !errors.Is(err, ErrInvalidSpec) {
			t.Errorf("Create(%q): %v, want ErrInvalidSpec", bad, err)
		}
	}
	if _, _, err := s.Create(ctx, "x", Grant{}, time.Time{}); !errors.Is(err, ErrInvalidSpec) {
		t.Errorf("Create without scope: %v, want ErrInvalidSpec", err)
	}
	if _, _, err := s.Create(ctx, "x", readGrant(t), time.Now().Add(-time.Second)); !errors.Is(err, ErrInvalidSpec) {
		t.Errorf("Create with an expiry in the past: %v, want ErrInvalidSpec", err)
	}
}

func TestFileStateKeepsOnlyHashes(t *testing.T) {
	ctx := context.Background()
	p := filepath.Join(t.TempDir(), "state", StateName)
	s := openService(t, Options{State: NewFile(p)})
	expires := time.Now().Add(time.Hour)
	secret, created, err := s.Create(ctx, "ci", readGrant(t, "corp.example.com/*"), expires)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(data, []byte(secret)) || bytes.Contains(data, []byte(secret[len(TokenPrefix):])) {
		t.Fatalf("the state file holds the secret:\n%s", data)
	}
	var doc struct {
		Version int
		Tokens  []map[string]any
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Version != 1 || len(doc.Tokens) != 1 || len(doc.Tokens[0]["sha256"].(string)) != 64 {
		t.Errorf("document %s", data)
	}
	if runtime.GOOS != "windows" {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("state file mode %v, want 0600", fi.Mode().Perm())
		}
	}

	// Another process (a new Service on the same file) accepts the token.
	s2 := openService(t, Options{State: NewFile(p)})
	id, err := s2.Authenticate(bearer(secret))
	if err != nil {
		t.Fatal(err)
	}
	if !id.Expires.Equal(created.Expires) || id.Grant.Match[0] != "corp.example.com/*" {
		t.Errorf("identity after reopening: %+v", id)
	}
	if l := s2.List(); len(l) != 1 || !l[0].Created.Equal(created.Created) {
		t.Errorf("List after reopening = %+v, want %+v", l, created)
	}
}

func TestReloadSeesOtherWriters(t *testing.T) {
	ctx := context.Background()
	st := &memState{}
	server := openService(t, Options{State: st})
	cli := openService(t, Options{State: st})
	secret := create(t, cli, "ci", readGrant(t), time.Time{})
	if _, err := server.Authenticate(bearer(secret)); !errors.Is(err, ErrRejected) {
		t.Fatalf("before reload: %v, want ErrRejected", err)
	}
	if err := server.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := server.Authenticate(bearer(secret)); err != nil {
		t.Fatalf("after reload: %v", err)
	}
	// Create reads the current document first: the server's own change
	// does not drop the token the command created.
	create(t, server, "admin", readGrant(t), time.Time{})
	if l := server.List(); len(l) != 2 {
		t.Errorf("List = %+v, want ci and admin", l)
	}
	if err := cli.Revoke(ctx, "ci"); err != nil {
		t.Fatal(err)
	}
	if err := server.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := server.Authenticate(bearer(secret)); !errors.Is(err, ErrRejected) {
		t.Errorf("after revocation elsewhere and reload: %v, want ErrRejected", err)
	}
}

func TestReloadFailureKeepsTokens(t *testing.T) {
	ctx := context.Background()
	var logs bytes.Buffer
	st := &memState{}
	s := openService(t, Options{State: st, Logger: newLogger(&logs)})
	secret := create(t, s, "ci", readGrant(t), time.Time{})
	good := bytes.Clone(st.data)

	errDown := errors.New("store down")
	st.set(nil, errDown)
	for range 3 {
		if err := s.Reload(ctx); !errors.Is(err, errDown) {
			t.Fatalf("Reload with the store down: %v", err)
		}
	}
	if _, err := s.Authenticate(bearer(secret)); err != nil {
		t.Errorf("token after a failed reload: %v", err)
	}
	if n := strings.Count(logs.String(), "cannot reload tokens"); n != 1 {
		t.Errorf("%d failure lines for 3 failures in a row, want 1:\n%s", n, logs.String())
	}

	st.set([]byte("{not json"), nil)
	if err := s.Reload(ctx); err == nil {
		t.Fatal("Reload of a corrupt document succeeded")
	}
	if _, err := s.Authenticate(bearer(secret)); err != nil {
		t.Errorf("token after a corrupt document: %v", err)
	}
	// A change is never written over a document that cannot be decoded.
	if _, _, err := s.Create(ctx, "other", readGrant(t), time.Time{}); err == nil {
		t.Error("Create over a corrupt document succeeded")
	}
	if string(st.data) != "{not json" {
		t.Errorf("Create replaced the corrupt document with %s", st.data)
	}
	st.set([]byte(`{"version": 2, "tokens": []}`), nil)
	if err := s.Reload(ctx); err == nil {
		t.Error("Reload of a document of a later version succeeded")
	}

	st.set(good, nil)
	if err := s.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "tokens readable again") {
		t.Errorf("no recovery line:\n%s", logs.String())
	}
	// A deleted document is no tokens.
	st.set(nil, nil)
	if err := s.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(bearer(secret)); !errors.Is(err, ErrRejected) {
		t.Errorf("token after its document was deleted: %v, want ErrRejected", err)
	}
}

func TestReloadUnchangedDoesNotRebuild(t *testing.T) {
	st := &memState{}
	s := openService(t, Options{State: st})
	create(t, s, "ci", readGrant(t), time.Time{})
	before := s.cur.Load()
	if err := s.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if s.cur.Load() != before {
		t.Error("Reload of an unchanged document built a new snapshot")
	}
}

func TestDecodeRejectsBadDocuments(t *testing.T) {
	hash := strings.Repeat("ab", 32)
	rec := func(name, h string) string {
		return `{"name":"` + name + `","scopes":["read"],"namespaces":[""],"created":"2025-01-01T00:00:00Z","sha256":"` + h + `"}`
	}
	for name, doc := range map[string]string{
		"short hash":     `{"version":1,"tokens":[` + rec("a", "abcd") + `]}`,
		"non-hex hash":   `{"version":1,"tokens":[` + rec("a", strings.Repeat("zz", 32)) + `]}`,
		"bad name":       `{"version":1,"tokens":[` + rec("a b", hash) + `]}`,
		"duplicate name": `{"version":1,"tokens":[` + rec("a", hash) + `,` + rec("a", strings.Repeat("cd", 32)) + `]}`,
		"duplicate hash": `{"version":1,"tokens":[` + rec("a", hash) + `,` + rec("b", hash) + `]}`,
		"no scope":       `{"version":1,"tokens":[{"name":"a","scopes":[],"sha256":"` + hash + `"}]}`,
		"no version":     `{"tokens":[]}`,
	} {
		if _, err := Open(context.Background(), Options{State: &memState{data: []byte(doc)}}); err == nil {
			t.Errorf("%s: Open succeeded", name)
		}
	}
}
