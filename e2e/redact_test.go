package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/modproxy/modproxy/internal/upstream/upstreamtest"
)

// TestCredentialsNeverLogged runs the server at debug level with
// credentials in every upstream and database URL, through a fill, a
// failing upstream (retries, breaker, probes), a failed request and
// /readyz, and a configuration error: no log line, status page or error
// shows a password or a token.
func TestCredentialsNeverLogged(t *testing.T) {
	const (
		password = "pa55-Secret-in-url"
		token    = "tok-Secret-alone"
	)
	mods := []upstreamtest.Module{mod("example.com/a", "v1.0.0", "a", ""), mod("example.com/b", "v1.0.0", "b", "")}
	good := upstreamtest.New(t, mods)
	bad := upstreamtest.New(t, mods, upstreamtest.WithoutSumDB())
	bad.SetFault("ALL", upstreamtest.Fault{Kind: upstreamtest.ServerError})
	name, key := good.SumDB()
	host := func(s *upstreamtest.Server) string { return strings.TrimPrefix(s.URL(), "http://") }
	upstreams := "http://modproxy:" + password + "@" + host(bad) + "|http://" + token + "@" + host(good)
	sumdb := key + " http://modproxy:" + password + "@" + host(good) + "/sumdb/" + name

	cfg := filepath.Join(t.TempDir(), "modproxy.toml")
	if err := os.WriteFile(cfg, []byte("[log]\nlevel = \"debug\"\n[admin]\nlisten = \"127.0.0.1:0\"\n[verify]\nprivate = []\n"+
		"[resilience]\nprobe_interval = \"50ms\"\nbackoff_base = \"1ms\"\nbackoff_max = \"5ms\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	srv := startServer(t, nil, "--config", cfg, "--cache-dir", t.TempDir(), "--upstream", upstreams, "--sumdb", sumdb)
	var bodies []string
	for _, p := range []string{"/example.com/a/@v/v1.0.0.mod", "/example.com/a/@v/v1.0.0.zip"} {
		if status, body := srv.get(t, p); status != 200 {
			t.Fatalf("GET %s: %d %s", p, status, body)
		}
	}
	good.SetFault("example.com/b/@v/v1.0.0.info", upstreamtest.Fault{Kind: upstreamtest.ServerError})
	status, body := srv.get(t, "/example.com/b/@v/v1.0.0.info")
	if status < 500 {
		t.Fatalf("with every upstream failing: %d %s", status, body)
	}
	bodies = append(bodies, string(body))
	_, body = srv.get(t, "/readyz")
	bodies = append(bodies, string(body))
	if !srv.logged(`"msg":"configured"`, `"msg":"filled"`, `"msg":"retrying upstream fetch"`, `"status":502`,
		`"msg":"upstream circuit breaker"`, `"msg":"upstream health probe failed"`, "xxxxx@"+host(bad), "xxxxx@"+host(good)) {
		t.Fatalf("the log lacks the lines this test checks:\n%s", srv.logs.String())
	}

	// A configuration error names the entry, not its credentials.
	cmd := exec.Command(binary, "serve", "--cache-dir", t.TempDir(), "--upstream", "ftp://modproxy:"+password+"@"+host(good), "--sumdb", "off")
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("an ftp upstream was accepted:\n%s", out)
	}
	bodies = append(bodies, string(out))

	for i, line := range append(strings.Split(srv.logs.String(), "\n"), bodies...) {
		for _, secret := range []string{password, token} {
			if strings.Contains(line, secret) {
				t.Errorf("line %d shows a secret: %s", i+1, line)
			}
		}
	}
}
