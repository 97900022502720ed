package e2e

import (
	"context"
	"crypto/tls"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/modproxy/modproxy/internal/tlsconf/tlstest"
	"github.com/modproxy/modproxy/internal/upstream/upstreamtest"
)

// modproxy runs the built binary with args and env and returns its exit
// code, stdout and stderr.
func modproxy(t *testing.T, env []string, stdin string, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		return ee.ExitCode(), out.String(), errb.String()
	case err != nil:
		t.Fatalf("modproxy %s: %v", strings.Join(args, " "), err)
	}
	return 0, out.String(), errb.String()
}

// tlsServer is a modproxy serving HTTPS with auth.mode = required.
type tlsServer struct {
	srv       *server
	ca        *tlstest.CA
	caFile    string // the CA, for SSL_CERT_FILE
	dir       string
	cacheArgs []string // --cache-dir and --sumdb, for the token commands
	client    *http.Client
	// certFile and keyFile are the server's certificate pair.
	certFile, keyFile string
}

// startTLSServer starts modproxy over up with a test CA's certificate and
// auth.mode = required (env adds to its environment, args to its
// arguments).
func startTLSServer(t *testing.T, up *upstreamtest.Server, env []string, args ...string) *tlsServer {
	t.Helper()
	_, sumKey := up.SumDB()
	ts := &tlsServer{dir: t.TempDir(), ca: tlstest.NewCA(t, "modproxy e2e CA")}
	ts.caFile = ts.ca.WriteCA(t, ts.dir, "ca.pem")
	ts.client = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ts.ca.Pool()}, ForceAttemptHTTP2: true}}
	ts.certFile, ts.keyFile = ts.ca.Server(t).Write(t, ts.dir, "server")
	ts.cacheArgs = []string{"--cache-dir", t.TempDir(), "--sumdb", sumKey}
	serve := append(append([]string{}, ts.cacheArgs...), "--upstream", up.URL(), "--tls-cert", ts.certFile, "--tls-key", ts.keyFile, "--auth", "required")
	ts.srv = startServer(t, append([]string{"MODPROXY_ADMIN_LISTEN=127.0.0.1:0"}, env...), append(serve, args...)...)
	if !strings.HasPrefix(ts.srv.URL, "https://127.0.0.1:") {
		t.Fatalf("server URL %q, want https://", ts.srv.URL)
	}
	return ts
}

// createToken runs "modproxy token create [FLAGS] NAME" and returns the
// secret once the running server accepts it (within the reload bound:
// it has 15 s).
func (ts *tlsServer) createToken(t *testing.T, name string, flags ...string) string {
	t.Helper()
	args := append(append(append([]string{"token", "create"}, flags...), ts.cacheArgs...), name)
	code, secret, stderr := modproxy(t, nil, "", args...)
	secret = strings.TrimSpace(secret)
	if code != 0 || !strings.HasPrefix(secret, "mp_") || strings.Contains(secret, "\n") {
		t.Fatalf("token create: exit %d, stdout %q, stderr %q", code, secret, stderr)
	}
	deadline := time.Now().Add(15 * time.Second)
	for ts.status(t, "/", secret) == http.StatusUnauthorized {
		if time.Now().After(deadline) {
			t.Fatalf("the server does not accept the new token %s after 15 s", name)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return secret
}

// status is the status of an HTTP/2 GET of path with the token ("": none).
func (ts *tlsServer) status(t *testing.T, path, token string) int {
	t.Helper()
	req, err := http.NewRequest("GET", ts.srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := ts.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.ProtoMajor != 2 {
		t.Errorf("protocol %s, want HTTP/2", resp.Proto)
	}
	return resp.StatusCode
}

// netrc writes a netrc file with token for the server. The go command
// matches a netrc machine against the URL's host and port: with a port,
// the machine name carries it.
func (ts *tlsServer) netrc(t *testing.T, name, token string) string {
	t.Helper()
	p := filepath.Join(ts.dir, name)
	if err := os.WriteFile(p, []byte("machine "+strings.TrimPrefix(ts.srv.URL, "https://")+" login x password "+token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestTLSAndTokens: the real go command over HTTPS (a test CA in
// SSL_CERT_FILE) to a server with auth.mode = required downloads with a
// netrc line and with the GOAUTH helper after "modproxy login", and fails
// with a 401 without credentials and once the token is revoked.
func TestTLSAndTokens(t *testing.T) {
	up := upstreamtest.New(t, testModules())
	_, sumKey := up.SumDB()
	ts := startTLSServer(t, up, nil)
	secret := ts.createToken(t, "ci")
	srv, caFile, dir, cacheArgs := ts.srv, ts.caFile, ts.dir, ts.cacheArgs
	status := func(token string) int { return ts.status(t, "/example.com/a/@v/list", token) }
	if got := status(secret); got != http.StatusOK {
		t.Fatalf("Bearer token: %d", got)
	}

	g := newGoEnv(t, srv.URL, sumKey)
	cfgHome := filepath.Join(dir, "config")
	g.vars = append(g.vars, "SSL_CERT_FILE="+caFile, "XDG_CONFIG_HOME="+cfgHome)
	g.write(t, "go.mod", "module example.com/proj\n\ngo 1.21\n\nrequire example.com/a v1.0.0\n")
	download := func(t *testing.T, vars ...string) (string, error) {
		t.Helper()
		g.freshModCache(t)
		saved := g.vars
		g.vars = append(append([]string{}, g.vars...), vars...)
		defer func() { g.vars = saved }()
		return g.try("mod", "download", "example.com/a")
	}
	netrc := ts.netrc(t, "netrc", secret)
	t.Run("netrc", func(t *testing.T) {
		if out, err := download(t, "GOAUTH=netrc", "NETRC="+netrc); err != nil {
			t.Fatalf("go mod download with a netrc line: %v\n%s", err, out)
		}
	})
	t.Run("no credentials", func(t *testing.T) {
		out, err := download(t, "GOAUTH=off")
		if err == nil || !strings.Contains(out, "401 Unauthorized") {
			t.Fatalf("go mod download without credentials: %v\n%s", err, out)
		}
	})
	t.Run("GOAUTH helper", func(t *testing.T) {
		if code, stdout, stderr := modproxy(t, []string{"XDG_CONFIG_HOME=" + cfgHome}, secret+"\n", "login", srv.URL); code != 0 || stdout != "" {
			t.Fatalf("login: exit %d, stdout %q, stderr %q", code, stdout, stderr)
		}
		if out, err := download(t, "GOAUTH="+binary+" auth", "NETRC="+filepath.Join(dir, "no-netrc")); err != nil {
			t.Fatalf("go mod download with GOAUTH: %v\n%s", err, out)
		}
	})
	t.Run("revoked", func(t *testing.T) {
		if code, _, stderr := modproxy(t, nil, "", append(append([]string{"token", "revoke"}, cacheArgs...), "ci")...); code != 0 {
			t.Fatalf("token revoke: exit %d, %q", code, stderr)
		}
		deadline := time.Now().Add(15 * time.Second)
		for status(secret) != http.StatusUnauthorized {
			if time.Now().After(deadline) {
				t.Fatal("the revoked token is still accepted after 15 s")
			}
			time.Sleep(100 * time.Millisecond)
		}
		out, err := download(t, "GOAUTH=netrc", "NETRC="+netrc)
		if err == nil || !strings.Contains(out, "401 Unauthorized") {
			t.Fatalf("go mod download with a revoked token: %v\n%s", err, out)
		}
	})
	if !srv.logged(`"identity":"ci"`) {
		t.Error("the access log does not name the identity")
	}
}

// TestRefusesAnonymousBeyondLoopback: serve on a non-loopback address with
// auth.mode = "off" exits 2 naming auth.mode and auth.allow_anonymous.
func TestRefusesAnonymousBeyondLoopback(t *testing.T) {
	code, _, stderr := modproxy(t, []string{"MODPROXY_ADMIN_LISTEN=127.0.0.1:0"}, "", "serve", "--listen", "0.0.0.0:0",
		"--cache-dir", t.TempDir(), "--upstream", "off", "--sumdb", "off")
	if code != 2 || !strings.Contains(stderr, "auth.mode") || !strings.Contains(stderr, "auth.allow_anonymous") {
		t.Fatalf("exit %d, stderr %q; want 2 naming auth.mode and auth.allow_anonymous", code, stderr)
	}
}

// TestTwoTeams: team A's token downloads its private module (verify.private,
// from the upstream), team B's gets a 404 for it, and both get public
// modules.
func TestTwoTeams(t *testing.T) {
	mods := append(testModules(), upstreamtest.Module{Path: "corp.example.com/team-a/lib", Version: "v1.0.0",
		Files: map[string][]byte{"go.mod": []byte("module corp.example.com/team-a/lib\n\ngo 1.21\n"), "lib.go": []byte("package lib\n")}})
	up := upstreamtest.New(t, mods)
	_, sumKey := up.SumDB()
	ts := startTLSServer(t, up, []string{"MODPROXY_VERIFY_PRIVATE=corp.example.com"})
	teamA := ts.netrc(t, "netrc-a", ts.createToken(t, "team-a", "--match", "corp.example.com/team-a/*"))
	teamB := ts.netrc(t, "netrc-b", ts.createToken(t, "team-b", "--match", "corp.example.com/team-b/*"))
	g := newGoEnv(t, ts.srv.URL, sumKey)
	g.vars = append(g.vars, "SSL_CERT_FILE="+ts.caFile, "GONOSUMDB=corp.example.com", "GOAUTH=netrc")
	g.write(t, "go.mod", "module example.com/proj\n\ngo 1.21\n")
	download := func(netrc, mod string) (string, error) {
		g.freshModCache(t)
		g.vars = append(g.vars, "NETRC="+netrc)
		return g.try("mod", "download", mod)
	}
	for _, netrc := range []string{teamA, teamB} {
		if out, err := download(netrc, "example.com/a@v1.0.0"); err != nil {
			t.Errorf("public module with %s: %v\n%s", filepath.Base(netrc), err, out)
		}
	}
	if out, err := download(teamA, "corp.example.com/team-a/lib@v1.0.0"); err != nil {
		t.Fatalf("team A's module with team A's token: %v\n%s", err, out)
	}
	out, err := download(teamB, "corp.example.com/team-a/lib@v1.0.0")
	if err == nil || !strings.Contains(out, "404 Not Found") {
		t.Fatalf("team A's module with team B's token: %v\n%s; want a 404", err, out)
	}
	if !ts.srv.logged(`"identity":"team-a"`, `"identity":"team-b"`) {
		t.Error("the access log does not name both teams")
	}
}
