package e2e

import (
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/modproxy/modproxy/internal/testenv"
	"github.com/modproxy/modproxy/internal/upstream/upstreamtest"
	"github.com/modproxy/modproxy/internal/vulndb/vulndbtest"
)

// govulncheck finds the govulncheck binary (PATH, then GOPATH/bin), or
// skips the test (fails under CI=true: .ci/run installs it).
func govulncheck(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("govulncheck"); err == nil {
		return p
	}
	if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		p := filepath.Join(strings.TrimSpace(string(out)), "bin", "govulncheck")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	testenv.Unavailable(t, "govulncheck not found: go install golang.org/x/vuln/cmd/govulncheck@v1.10.0")
	return ""
}

// vulnModule is a fake module with a vulnerable function, and vulnEntry
// the advisory for it.
var vulnModule = upstreamtest.Module{Path: "example.com/vulnerable", Version: "v1.0.0", Files: map[string][]byte{
	"go.mod": []byte("module example.com/vulnerable\n\ngo 1.21\n"),
	"v.go":   []byte("package vulnerable\n\n// Hello is vulnerable.\nfunc Hello() string { return \"hello\" }\n"),
}}

var vulnEntry = vulndbtest.Entry{ID: "GO-2099-0042", Modified: time.Date(2099, 1, 2, 3, 4, 5, 0, time.UTC), Aliases: []string{"CVE-2099-4242"},
	Summary: "Hello is vulnerable in example.com/vulnerable",
	Affected: []vulndbtest.Affected{{Module: "example.com/vulnerable", Fixed: "1.0.1",
		Packages: []vulndbtest.Package{{Path: "example.com/vulnerable", Symbols: []string{"Hello"}}}}}}

const vulnProject = `package main

import (
	"fmt"

	"example.com/vulnerable"
)

func main() { fmt.Println(vulnerable.Hello()) }
`

// TestGovulncheck: modproxy mirrors a vulnerability database (made in the
// test, served on loopback) from vuln.source, and govulncheck -db
// MODPROXY/vuln reports its advisory for a project whose module came
// through the same modproxy.
func TestGovulncheck(t *testing.T) {
	tool := govulncheck(t)
	up := upstreamtest.New(t, []upstreamtest.Module{vulnModule})
	_, sumKey := up.SumDB()
	vdb := vulndbtest.NewServer(t, vulndbtest.Build(t, vulnEntry))
	srv := startServer(t, []string{"MODPROXY_VULN_SOURCE=" + vdb.URL()}, "--cache-dir", t.TempDir(), "--upstream", up.URL(), "--sumdb", sumKey)
	if !srv.logged("vulnerability database admitted") {
		t.Fatal("modproxy did not mirror the vulnerability database at start-up")
	}
	g := newGoEnv(t, srv.URL, sumKey)
	g.write(t, "go.mod", "module example.com/proj\n\ngo 1.21\n\nrequire example.com/vulnerable v1.0.0\n")
	g.write(t, "main.go", vulnProject)
	g.run(t, "build", "./...")

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, tool, "-db", srv.URL+"/vuln", "./...")
	cmd.Dir = g.dir
	cmd.Env = append(os.Environ(), g.vars...)
	out, err := cmd.CombinedOutput()
	// govulncheck exits 3 when it found vulnerabilities.
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 3 {
		t.Fatalf("govulncheck: %v, want exit status 3 (vulnerabilities found)\n%s", err, out)
	}
	for _, want := range []string{"GO-2099-0042", "example.com/vulnerable", "v1.0.1"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("govulncheck's report does not name %s:\n%s", want, out)
		}
	}
}

// TestVulnImport: modproxy vuln import admits the database archive into
// the cache directory and the server serves it at /vuln/; a corrupt
// archive is refused with exit status 1 and the database stays as it was.
func TestVulnImport(t *testing.T) {
	dir := t.TempDir()
	files := vulndbtest.Build(t, vulnEntry)
	good := filepath.Join(t.TempDir(), "vulndb.zip")
	files.WriteZip(t, good)
	modproxy := func(args ...string) (string, int) {
		cmd := exec.Command(binary, append(args, "--cache-dir", dir, "--sumdb", "off")...)
		out, err := cmd.CombinedOutput()
		if ee, ok := err.(*exec.ExitError); ok {
			return string(out), ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return string(out), 0
	}
	if out, code := modproxy("vuln", "import", good); code != 0 {
		t.Fatalf("vuln import: exit %d\n%s", code, out)
	}
	corrupt := vulndbtest.Build(t, vulnEntry)
	corrupt["ID/GO-2099-0042.json"] = []byte(`{"id": "GO-2099-0042", "affected": [{"package": {"name": "example.com/vulnerable"}, "ranges": [{"type": "SEMVER", "events": [{"fixed": "not a version"}]}]}]}`)
	bad := filepath.Join(t.TempDir(), "bad.zip")
	corrupt.WriteZip(t, bad)
	if out, code := modproxy("vuln", "import", bad); code != 1 || !strings.Contains(out, "refused, nothing changed") {
		t.Errorf("vuln import of a corrupt entry: exit %d\n%s", code, out)
	}
	srv := startServer(t, nil, "--cache-dir", dir, "--upstream", "off", "--sumdb", "off")
	for name, want := range files {
		if code, body := srv.get(t, "/vuln/"+name); code != 200 || string(body) != string(want) {
			t.Errorf("GET /vuln/%s: %d %q, want %q", name, code, body, want)
		}
	}
}

// TestVulnerablePolicy: the supply-chain policy reads the database
// modproxy mirrors. The real go command cannot build the project in a
// namespace that blocks vulnerable versions (403 naming the advisory and
// the fixed version), builds it in one that warns (the zip carries
// X-Modproxy-Advisory) and in one that blocks with an exemption for the
// advisory.
func TestVulnerablePolicy(t *testing.T) {
	up := upstreamtest.New(t, []upstreamtest.Module{vulnModule})
	_, sumKey := up.SumDB()
	vdb := vulndbtest.NewServer(t, vulndbtest.Build(t, vulnEntry))
	cfgFile := filepath.Join(t.TempDir(), "modproxy.toml")
	cfg := `[vuln]
source = "` + vdb.URL() + `"

[[namespace]]
name = "prod"
[namespace.policy]
vulnerable = "block"

[[namespace]]
name = "dev"
[namespace.policy]
vulnerable = "warn"

[[namespace]]
name = "reviewed"
[namespace.policy]
vulnerable = "block"
[[namespace.policy.exempt]]
id = "GO-2099-0042"
reason = "Hello is not reachable from our code"
`
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	srv := startServer(t, []string{"MODPROXY_ADMIN_LISTEN="}, "--config", cfgFile, "--cache-dir", t.TempDir(), "--upstream", up.URL(), "--sumdb", sumKey)
	if !srv.logged("vulnerability database admitted") {
		t.Fatal("modproxy did not mirror the vulnerability database at start-up")
	}
	project := func(ns string) *goEnv {
		g := newGoEnv(t, srv.URL+"/"+ns, sumKey)
		g.write(t, "go.mod", "module example.com/proj\n\ngo 1.21\n\nrequire example.com/vulnerable v1.0.0\n")
		g.write(t, "main.go", vulnProject)
		return g
	}

	out, err := project("prod").try("build", "./...")
	if err == nil || !strings.Contains(out, "403 Forbidden") || !strings.Contains(out, "GO-2099-0042") || !strings.Contains(out, "v1.0.1") {
		t.Errorf("build in the blocking namespace: %v, want a 403 naming GO-2099-0042 and v1.0.1\n%s", err, out)
	}
	project("dev").run(t, "build", "./...")
	resp, err := http.Get(srv.URL + "/dev/example.com/vulnerable/@v/v1.0.0.zip")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(resp.Header.Get("X-Modproxy-Advisory"), "GO-2099-0042") {
		t.Errorf("zip in the warning namespace: %d, X-Modproxy-Advisory %q", resp.StatusCode, resp.Header.Get("X-Modproxy-Advisory"))
	}
	project("reviewed").run(t, "build", "./...")
}
