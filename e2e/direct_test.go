package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/modproxy/modproxy/internal/upstream/direct/directtest"
	"github.com/modproxy/modproxy/internal/upstream/upstreamtest"
)

// TestPrivateModuleFromGit: a private module in a bare git repository,
// served on loopback by git http-backend and reached through an insteadOf
// rule, is fetched by modproxy's direct route and downloaded by the real go
// command through modproxy. It never appears in any request to the
// public-looking upstream or to the checksum database; the public
// dependency still comes from the upstream, verified.
func TestPrivateModuleFromGit(t *testing.T) {
	git := directtest.New(t)
	git.MapHost("corp.example.com")
	git.Repo("lib", []directtest.Commit{
		{Tag: "v1.0.0", Files: map[string]string{
			"go.mod": "module corp.example.com/lib.git\n\ngo 1.21\n\nrequire example.com/a v1.0.0\n",
			"lib.go": "package lib\n\nimport \"example.com/a\"\n\nconst Name = \"lib+\" + a.Name\n",
		}},
	})
	up := upstreamtest.New(t, []upstreamtest.Module{mod("example.com/a", "v1.0.0", "a", "const Name = \"a\"")})
	sumName, key := up.SumDB()

	cfgFile := filepath.Join(t.TempDir(), "modproxy.toml")
	cfg := "[verify]\nprivate = [\"corp.example.com\"]\n\n[[route]]\nmatch = \"corp.example.com\"\nupstream = \"direct\"\n"
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	env := append(git.Env(), "GOPRIVATE=corp.example.com")
	srv := startServer(t, env, "--config", cfgFile, "--cache-dir", t.TempDir(), "--upstream", up.URL(), "--sumdb", key)

	g := newGoEnv(t, srv.URL, key)
	g.vars = append(g.vars, "GONOSUMDB=corp.example.com")
	g.write(t, "go.mod", "module example.com/proj\n\ngo 1.21\n\nrequire corp.example.com/lib.git v1.0.0\n")
	g.write(t, "main.go", "package main\n\nimport (\n\t\"fmt\"\n\n\tlib \"corp.example.com/lib.git\"\n)\n\nfunc main() { fmt.Println(lib.Name) }\n")
	if out := g.run(t, "run", "."); !strings.HasSuffix(strings.TrimSpace(out), "\nlib+a") {
		t.Fatalf("go run printed %q", out)
	}
	if out := g.run(t, "list", "-m", "-versions", "corp.example.com/lib.git"); strings.TrimSpace(out) != "corp.example.com/lib.git v1.0.0" {
		t.Errorf("versions of the private module: %q", out)
	}
	for _, p := range up.Log() {
		if strings.Contains(p, "corp.example.com") {
			t.Errorf("the private module reached the public upstream or its checksum database: %s", p)
		}
	}
	lookedUp := false
	for _, p := range up.Log() {
		lookedUp = lookedUp || strings.HasPrefix(p, "sumdb/"+sumName+"/lookup/example.com/a@")
	}
	if !lookedUp {
		t.Error("the public dependency was not verified against the checksum database")
	}
}
