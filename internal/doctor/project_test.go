package doctor

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/modproxy/modproxy/internal/upstream/upstreamtest"
)

// projectModules are served by the fake proxy: example.com/a v1.2.0 is
// not (the version the project requires and only the local cache has).
func projectModules() []upstreamtest.Module {
	mod := func(path, version string) upstreamtest.Module {
		return upstreamtest.Module{Path: path, Version: version, Files: map[string][]byte{"go.mod": []byte("module " + path + "\n"), "x.go": []byte("package x\n")}}
	}
	return append(testModules(), mod("example.com/a", "v1.0.0"), mod("example.com/a", "v1.1.0"), mod("example.com/b", "v1.0.0"))
}

// writeProject writes a module requiring a version no proxy serves, a
// served one, one whose go.mod alone is needed (go.sum), and a module that
// looks private; it returns the go.mod.
func writeProject(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{
		"go.mod": "module example.com/app\n\ngo 1.22\n\nrequire (\n\texample.com/a v1.2.0\n\texample.com/b v1.0.0\n\tgit.corp.internal/lib v1.0.0\n)\n",
		"go.sum": "example.com/a v1.1.0/go.mod h1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n" +
			"example.com/b v1.0.0 h1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n" +
			"example.com/b v1.0.0/go.mod h1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(dir, "go.mod")
}

// TestProjectVersions: without --module, doctor asks the proxy for every
// version the project references and reports the one the proxy lacks
// (cached here: the stale-cache trap), and never sends the private-looking
// path to the public proxy.
func TestProjectVersions(t *testing.T) {
	srv := upstreamtest.New(t, projectModules())
	env, defaults := publicEnv(t, srv)
	env["GOPROXY"] = strings.TrimSuffix(env["GOPROXY"], ",direct") // the proxy alone
	env["GOMOD"] = writeProject(t)
	// The local module cache still has the version the proxy lost.
	cached := filepath.Join(env["GOMODCACHE"], "cache", "download", "example.com", "a", "@v", "v1.2.0.zip")
	if err := os.MkdirAll(filepath.Dir(cached), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cached, []byte("PK"), 0o644); err != nil {
		t.Fatal(err)
	}
	o := privateOptions(t, env, defaults, "example.com/canary")
	o.Module.Path = "" // no --module: the project
	o.Concurrency = 2

	rep := mustRun(t, o)
	checkExpect(t, rep, []expect{
		{IDProjectVersions, Problem, "4 module versions referenced: 2 served by a proxy, 1 not served"},
		{IDProjectVersions, Problem, "1 not asked (the path looks private"},
		{IDProjectVersions, Problem, "example.com/a@v1.2.0 [cached here]: http://mirror.test:"},
		{IDProjectVersions, Problem, "go get MODULE@VERSION"},
		{IDPrivateModule, Problem, "git.corp.internal/lib looks private"},
	})
	if f := find(rep, IDProjectVersions); len(f) != 1 || strings.Contains(f[0].Seen, "example.com/b@") || strings.Contains(f[0].Seen, "example.com/a@v1.1.0") {
		t.Errorf("served versions listed as missing:\n%s", dump(rep))
	}
	for _, want := range []string{"example.com/a/@v/v1.2.0.info", "example.com/a/@v/v1.1.0.mod", "example.com/b/@v/v1.0.0.info"} {
		if !requested(srv, want) {
			t.Errorf("the proxy was not asked for %s: %v", want, srv.Log())
		}
	}
	if requested(srv, "git.corp.internal") {
		t.Errorf("the private path was sent to the public proxy: %v", srv.Log())
	}
	if !rep.HasProblems() {
		t.Error("no problem reported")
	}

	// With ",direct", the lost version is fetched from version control:
	// a warning (doctor cannot check it), not a problem.
	srv.ResetCounts()
	env["GOPROXY"] += ",direct"
	env["GOPRIVATE"], env["GONOPROXY"], env["GONOSUMDB"] = "git.corp.internal", "git.corp.internal", "git.corp.internal"
	o = privateOptions(t, env, defaults, "example.com/canary")
	o.Module.Path = ""
	rep = mustRun(t, o)
	checkExpect(t, rep, []expect{
		{IDProjectVersions, Warning, "1 served by no proxy (then fetched from version control)"},
		{IDProjectVersions, Warning, "1 fetched from version control (GONOPROXY"},
		{IDProjectVersions, Warning, "example.com/a@v1.2.0 [cached here]"},
	})
	absent(t, rep, IDPrivateModule, Problem)
	if requested(srv, "git.corp.internal") {
		t.Errorf("the private path was sent: %v", srv.Log())
	}

	// Offline: counted, not asked.
	srv.ResetCounts()
	o.Offline = true
	rep = mustRun(t, o)
	checkExpect(t, rep, []expect{{IDProjectVersions, OK, "4 module versions referenced; not checked against GOPROXY (--offline)"}})
	if srv.Total() != 0 {
		t.Errorf("offline, yet the proxy got %v", srv.Log())
	}
}
