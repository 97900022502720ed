package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/modproxy/modproxy/internal/upstream/upstreamtest"
)

// modproxyCmd runs the built binary with env and fails the test on error.
func modproxyCmd(t *testing.T, env []string, args ...string) string {
	t.Helper()
	out, err := tryModproxy(env, args...)
	if err != nil {
		t.Fatalf("modproxy %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func tryModproxy(env []string, args ...string) (string, error) {
	cmd := exec.Command(binary, args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestAirGap: instance A, in front of a fake upstream and its test checksum
// database, warms a project through the go command and exports it; instance
// B, offline with no upstream, imports the bundle and serves it; the go
// command with the test database as GOSUMDB (reached through B's /sumdb/)
// and a fresh module cache and checksum database cache downloads and
// verifies the project through B, with nothing turned off. A second
// bundle --since the first brings a new module across.
func TestAirGap(t *testing.T) {
	mods := []upstreamtest.Module{
		mod("example.com/alpha", "v1.0.0", "alpha", "const A = 1"),
		mod("example.com/beta", "v1.1.0", "beta", "const B = 2"),
		mod("example.com/gamma", "v0.2.0", "gamma", "const C = 3"),
	}
	up := upstreamtest.New(t, mods)
	_, key := up.SumDB()
	env := []string{"MODPROXY_VERIFY_PRIVATE=none.invalid"}
	dirA, dirB := t.TempDir(), t.TempDir()
	a := startServer(t, env, "--cache-dir", dirA, "--upstream", up.URL(), "--sumdb", key)

	project := "module example.com/proj\n\ngo 1.21\n\nrequire (\n\texample.com/alpha v1.0.0\n\texample.com/beta v1.1.0\n\texample.com/gamma v0.2.0\n)\n"
	warm := newGoEnv(t, a.URL, key)
	warm.write(t, "go.mod", project)
	warm.run(t, "mod", "download")
	bundle1 := filepath.Join(t.TempDir(), "one.bundle")
	out := modproxyCmd(t, env, "export", "--cache-dir", dirA, "--sumdb", key, "--from", warm.dir, "-o", bundle1)
	if !strings.Contains(out, "3 module versions") {
		t.Errorf("export says:\n%s", out)
	}

	// A bundle with one flipped byte is refused with exit status 1.
	data, err := os.ReadFile(bundle1)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/3] ^= 0x20
	bad := filepath.Join(t.TempDir(), "bad.bundle")
	if err := os.WriteFile(bad, data, 0o644); err != nil {
		t.Fatal(err)
	}
	dirC := t.TempDir()
	out, err = tryModproxy(env, "import", bad, "--cache-dir", dirC, "--sumdb", key)
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(out, "refused, nothing changed") {
		t.Errorf("import of a tampered bundle: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(dirC, "objects", "example.com")); !os.IsNotExist(err) {
		t.Errorf("the refused import stored objects: %v", err)
	}

	// The inside: dry run first (changes nothing), then the import.
	out = modproxyCmd(t, env, "import", bundle1, "--cache-dir", dirB, "--sumdb", key, "--dry-run")
	if !strings.Contains(out, "add example.com/alpha/@v/v1.0.0.zip") || !strings.Contains(out, "would import") {
		t.Errorf("dry run says:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(dirB, "objects", "example.com")); !os.IsNotExist(err) {
		t.Fatalf("the dry run stored objects: %v", err)
	}
	out = modproxyCmd(t, env, "import", bundle1, "--cache-dir", dirB, "--sumdb", key)
	if !strings.Contains(out, "verified 3 module versions") || !strings.Contains(out, "trusted tree head advanced") {
		t.Errorf("import says:\n%s", out)
	}
	b := startServer(t, append(env, "MODPROXY_OFFLINE=true"), "--cache-dir", dirB, "--upstream", "off", "--sumdb", key)

	g := newGoEnv(t, b.URL, key) // fresh GOPATH: no checksum database cache
	g.write(t, "go.mod", project)
	g.write(t, "main.go", "package main\n\nimport (\n\t_ \"example.com/alpha\"\n\t_ \"example.com/beta\"\n\t_ \"example.com/gamma\"\n)\n\nfunc main() {}\n")
	g.run(t, "mod", "download") // no go.sum: every module is looked up in the database through B
	if out := g.run(t, "mod", "verify"); !strings.Contains(out, "all modules verified") {
		t.Errorf("go mod verify: %s", out)
	}
	g.run(t, "build", "./...")
	sum, err := os.ReadFile(filepath.Join(g.dir, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range mods {
		if want := up.GoSum(m.Path, m.Version); !strings.Contains(string(sum), want) {
			t.Errorf("go.sum lacks %q:\n%s", want, sum)
		}
	}
	name, _ := up.SumDB()
	if _, err := os.Stat(filepath.Join(strings.TrimPrefix(goVar(g, "GOPATH"), "GOPATH="), "pkg", "sumdb", name, "latest")); err != nil {
		t.Errorf("the go command verified nothing against the checksum database: %v", err)
	}

	if !b.logged(`"path":"/sumdb/` + name + `/lookup/example.com/alpha@v1.0.0","status":200`) {
		t.Errorf("B did not serve the checksum database lookups")
	}

	// A new module on the outside, a --since bundle, imported in order.
	delta := mod("example.com/delta", "v1.0.0", "delta", "const D = 4")
	up.Add(delta)
	warm.write(t, "go.mod", strings.Replace(project, ")\n", "\texample.com/delta v1.0.0\n)\n", 1))
	warm.run(t, "mod", "download")
	bundle2 := filepath.Join(t.TempDir(), "two.bundle")
	modproxyCmd(t, env, "export", "--cache-dir", dirA, "--sumdb", key, "--from", warm.dir, "--since", bundle1, "-o", bundle2)
	out = modproxyCmd(t, env, "import", bundle2, "--cache-dir", dirB, "--sumdb", key)
	if !strings.Contains(out, "verified 1 module versions") {
		t.Errorf("second import says:\n%s", out)
	}
	// The same client (its checksum database cache at the first tree
	// head) now gets the new module, proved in the newer tree.
	g.write(t, "go.mod", strings.Replace(project, ")\n", "\texample.com/delta v1.0.0\n)\n", 1))
	g.run(t, "mod", "download")
	if out := g.run(t, "mod", "verify"); !strings.Contains(out, "all modules verified") {
		t.Errorf("go mod verify: %s", out)
	}
	// A new module cache, the checksum database cache at the newer tree:
	// the first bundle's modules are verified in the newer tree.
	g.freshModCache(t)
	if err := os.Remove(filepath.Join(g.dir, "go.sum")); err != nil {
		t.Fatal(err)
	}
	g.run(t, "mod", "download")
	if out := g.run(t, "mod", "verify"); !strings.Contains(out, "all modules verified") {
		t.Errorf("go mod verify: %s", out)
	}
	if strings.Contains(b.logs.String(), `"status":404`) {
		t.Errorf("B answered 404 to the go command:\n%s", b.logs.String())
	}
}

func goVar(g *goEnv, name string) string {
	v := ""
	for _, kv := range g.vars {
		if strings.HasPrefix(kv, name+"=") {
			v = kv
		}
	}
	return v
}
