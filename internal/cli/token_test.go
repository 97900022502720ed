package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/modproxy/modproxy/internal/access"
)

// TestTokenCommands: create prints the secret alone on stdout and stores
// only its hash; list shows the token (--json too); revoke marks it
// revoked; bad input is a usage error. The cache is found from
// MODPROXY_CACHE_DIR as serve finds it.
func TestTokenCommands(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"MODPROXY_CACHE_DIR": dir, "MODPROXY_VERIFY_PRIVATE": "corp.example.com", "MODPROXY_SUMDB": "off"}
	code, stdout, stderr := run(t, env, "token", "create", "--scope", "read", "--match", "corp.example.com/team-a/*", "--expires", "24h", "team-a")
	secret := strings.TrimSuffix(stdout, "\n")
	if code != ExitOK || !strings.HasPrefix(secret, access.TokenPrefix) || strings.Contains(secret, "\n") {
		t.Fatalf("create: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	if strings.Contains(stderr, secret) {
		t.Errorf("the secret is on stderr too: %q", stderr)
	}
	if code, _, stderr := run(t, env, "token", "create", "team-a"); code != ExitUsage {
		t.Errorf("create of an existing name: exit %d, %q", code, stderr)
	}
	if code, _, stderr := run(t, env, "token", "create", "--scope", "write", "x"); code != ExitUsage {
		t.Errorf("create with an unknown scope: exit %d, %q", code, stderr)
	}
	code, stdout, _ = run(t, env, "token", "list", "--json")
	var toks []access.Token
	if err := json.Unmarshal([]byte(stdout), &toks); code != ExitOK || err != nil || len(toks) != 1 || toks[0].Name != "team-a" || toks[0].Match[0] != "corp.example.com/team-a/*" {
		t.Fatalf("list --json: exit %d, %v, %q", code, err, stdout)
	}
	if strings.Contains(stdout, secret) {
		t.Error("list shows the secret")
	}
	// The server's view: the stored token authenticates.
	svc, err := access.Open(context.Background(), access.Options{State: access.NewFile(dir + "/state/tokens.json")})
	if err != nil {
		t.Fatal(err)
	}
	r := request(t, "Bearer "+secret)
	if id, err := svc.Authenticate(r); err != nil || id.Name != "team-a" {
		t.Fatalf("Authenticate: %v, %v", id, err)
	}
	if code, _, stderr := run(t, env, "token", "revoke", "team-a"); code != ExitOK {
		t.Fatalf("revoke: exit %d, %q", code, stderr)
	}
	if code, _, _ := run(t, env, "token", "revoke", "nobody"); code != ExitUsage {
		t.Errorf("revoke of an unknown name: exit %d", code)
	}
	if code, stdout, _ := run(t, env, "token", "list"); code != ExitOK || !strings.Contains(stdout, "team-a") || !strings.Contains(stdout, "revoked") {
		t.Errorf("list after revoke: exit %d, %q", code, stdout)
	}
	if err := svc.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Authenticate(r); !errors.Is(err, access.ErrRejected) {
		t.Errorf("revoked token: %v, want ErrRejected", err)
	}
	if code, _, _ := run(t, env, "token", "frob"); code != ExitUsage {
		t.Errorf("unknown subcommand: exit %d", code)
	}
}

// TestLoginAndAuth: login saves the token read from stdin, auth prints it
// in the GOAUTH format for the URL's prefix.
func TestLoginAndAuth(t *testing.T) {
	cfgDir := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", cfgDir)
	t.Setenv("HOME", cfgDir)
	var out, errb bytes.Buffer
	env := Env{Stdout: &out, Stderr: &errb, Stdin: strings.NewReader("mp_secret-token\n"), LookupEnv: func(string) (string, bool) { return "", false }}
	if code := Run(context.Background(), []string{"login", "https://proxy.corp.example:8443/"}, env); code != ExitOK || out.Len() != 0 {
		t.Fatalf("login: exit %d, stdout %q, stderr %q", code, out.String(), errb.String())
	}
	env.Stdin = strings.NewReader("")
	if code := Run(context.Background(), []string{"auth", "https://proxy.corp.example:8443/example.com/a/@v/list"}, env); code != ExitOK ||
		!strings.Contains(out.String(), "Authorization: Bearer mp_secret-token") {
		t.Fatalf("auth: exit %d, stdout %q, stderr %q", code, out.String(), errb.String())
	}
	env.Stdin = strings.NewReader("mp_x\n")
	if code := Run(context.Background(), []string{"login", "http://proxy.corp.example/"}, env); code != ExitUsage {
		t.Errorf("login to an http:// URL: exit %d", code)
	}
}

func request(t *testing.T, authorization string) *http.Request {
	t.Helper()
	r, err := http.NewRequest("GET", "https://proxy.example/example.com/a/@v/list", nil)
	if err != nil {
		t.Fatal(err)
	}
	r.Header.Set("Authorization", authorization)
	return r
}
