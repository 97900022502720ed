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

// TestTLSAndTokens: the real go command over HTTPS (a test CA in
// SSL_CERT_FILE) to a server with auth.mode = required downloads with a
// netrc line and with the GOAUTH helper after "modproxy login", and fails
// with a 401 without credentials and once the token is revoked.
func TestTLSAndTokens(t *testing.T) {
	up := upstreamtest.New(t, testModules())
	_, sumKey := up.SumDB()
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "modproxy e2e CA")
	caFile := ca.WriteCA(t, dir, "ca.pem")
	certFile, keyFile := ca.Server(t).Write(t, dir, "server")
	cacheDir := t.TempDir()
	cacheArgs := []string{"--cache-dir", cacheDir, "--sumdb", sumKey}

	code, secret, stderr := modproxy(t, nil, "", append(append([]string{"token", "create", "--scope", "read"}, cacheArgs...), "ci")...)
	secret = strings.TrimSpace(secret)
	if code != 0 || !strings.HasPrefix(secret, "mp_") {
		t.Fatalf("token create: exit %d, stdout %q, stderr %q", code, secret, stderr)
	}
	srv := startServer(t, []string{"MODPROXY_ADMIN_LISTEN=127.0.0.1:0"}, append(cacheArgs, "--upstream", up.URL(),
		"--tls-cert", certFile, "--tls-key", keyFile, "--auth", "required")...)
	if !strings.HasPrefix(srv.URL, "https://127.0.0.1:") {
		t.Fatalf("server URL %q, want https://", srv.URL)
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool()}, ForceAttemptHTTP2: true}}
	status := func(token string) int {
		t.Helper()
		req, err := http.NewRequest("GET", srv.URL+"/example.com/a/@v/list", nil)
		if err != nil {
			t.Fatal(err)
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.ProtoMajor != 2 {
			t.Errorf("protocol %s, want HTTP/2", resp.Proto)
		}
		return resp.StatusCode
	}
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
	// The go command matches a netrc machine against the URL's host and
	// port: with a port, the machine name carries it.
	netrc := filepath.Join(dir, "netrc")
	if err := os.WriteFile(netrc, []byte("machine "+strings.TrimPrefix(srv.URL, "https://")+" login x password "+secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
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
