package prefetch_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/modproxy/modproxy/internal/prefetch"
	"github.com/modproxy/modproxy/internal/upstream/upstreamtest"
)

// goEnv is a hermetic environment for the real go command: a fresh module
// cache, the given proxy and the fake upstream's checksum database; the
// machine's build cache keeps it fast.
func goEnv(t *testing.T, proxyURL, sumdb string) (env []string, modcache string) {
	t.Helper()
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go command not found")
	}
	out, err := exec.Command("go", "env", "GOCACHE").Output()
	if err != nil {
		t.Fatalf("go env GOCACHE: %v", err)
	}
	root := t.TempDir()
	modcache = filepath.Join(root, "modcache")
	env = append(os.Environ(),
		"HOME="+root, "GOPATH="+filepath.Join(root, "gopath"), "GOMODCACHE="+modcache,
		"GOCACHE="+strings.TrimSpace(string(out)), "GOPROXY="+proxyURL, "GOSUMDB="+sumdb,
		"GOFLAGS=-mod=mod", "GONOSUMDB=", "GONOSUMCHECK=", "GOPRIVATE=", "GONOPROXY=", "GOINSECURE=",
		"GOTOOLCHAIN=local", "GOTELEMETRY=off", "GOENV=off", "GOWORK=off", "GIT_TERMINAL_PROMPT=0",
	)
	// The module cache is read-only; let the go command remove it.
	t.Cleanup(func() {
		cmd := exec.Command("go", "clean", "-modcache")
		cmd.Env = env
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("go clean -modcache: %v\n%s", err, out)
		}
	})
	return env, modcache
}

func goRun(t *testing.T, dir string, env []string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = dir
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestModCache warms an empty module cache through modproxy with the real
// go command, from a project's go.mod and go.sum (written by go mod tidy),
// then checks that the go command finds everything offline.
func TestModCache(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the go command")
	}
	up := upstreamtest.New(t, []upstreamtest.Module{
		{Path: "example.com/a", Version: "v1.0.0", Files: map[string][]byte{
			"go.mod": []byte("module example.com/a\n\ngo 1.16\n\nrequire (\n\texample.com/b v1.0.0\n\texample.com/unused v1.0.0\n)\n"),
			"a.go":   []byte("package a\n\nimport \"example.com/b\"\n\nfunc A() string { return b.B }\n"),
		}},
		{Path: "example.com/b", Version: "v1.0.0", Files: map[string][]byte{
			"go.mod": []byte("module example.com/b\n\ngo 1.16\n"),
			"b.go":   []byte("package b\n\nconst B = \"b\"\n"),
		}},
		{Path: "example.com/unused", Version: "v1.0.0", Files: map[string][]byte{
			"go.mod": []byte("module example.com/unused\n\ngo 1.16\n"),
			"u.go":   []byte("package unused\n"),
		}},
		mod("example.com/Upper", "v1.1.0"),
	})
	_, key := up.SumDB()

	// The project, made tidy against the upstream directly in a scratch
	// module cache (modproxy and the cache under test see nothing of it).
	// Its dependencies say go 1.16, so their graphs are not pruned and
	// go.sum keeps a go.mod-only line for example.com/unused.
	proj := t.TempDir()
	for name, content := range map[string]string{
		"go.mod":  "module example.com/proj\n\ngo 1.21\n\nrequire example.com/a v1.0.0\n",
		"main.go": "package main\n\nimport \"example.com/a\"\n\nfunc main() { println(a.A()) }\n",
	} {
		if err := os.WriteFile(filepath.Join(proj, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tidyEnv, _ := goEnv(t, up.URL(), key)
	goRun(t, proj, tidyEnv, "mod", "tidy")
	gosum, err := os.ReadFile(filepath.Join(proj, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(gosum), "example.com/unused v1.0.0/go.mod") || strings.Contains(string(gosum), "example.com/unused v1.0.0 h1:") {
		t.Fatalf("go mod tidy did not leave a go.mod-only line for example.com/unused:\n%s", gosum)
	}

	set := prefetch.NewSet()
	if err := set.AddPaths(proj); err != nil {
		t.Fatal(err)
	}
	if err := set.AddArg("arg", "example.com/Upper@v1.1.0"); err != nil {
		t.Fatal(err)
	}
	proxyURL := newModproxy(t, up)
	env, modcache := goEnv(t, proxyURL, key)
	up.ResetCounts()
	f := prefetch.NewModCacheFetcher(prefetch.Options{Env: env, Concurrency: 2, BatchSize: 1})
	rep, err := f.Prefetch(context.Background(), set.Modules())
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() || rep.Fetched != 4 || rep.Cached != 0 || rep.Mode != "modcache" || rep.Target != modcache {
		t.Fatalf("report %+v", rep)
	}
	for _, want := range []struct{ path, version, kind string }{
		{"example.com/a", "v1.0.0", "module"}, {"example.com/b", "v1.0.0", "module"},
		{"example.com/unused", "v1.0.0", "mod"}, {"example.com/Upper", "v1.1.0", "module"},
	} {
		if r := result(t, rep, want.path, want.version, want.kind); r.Outcome != prefetch.Fetched || r.Bytes == 0 {
			t.Errorf("%s: %+v", want.path, r)
		}
	}
	// Everything came through modproxy: the upstream saw the files; the
	// go.mod-only module's zip was never asked for.
	if up.Requests(filePath(t, "example.com/a", "v1.0.0", "zip")) != 1 || up.Requests(filePath(t, "example.com/Upper", "v1.1.0", "zip")) != 1 {
		t.Errorf("zips did not come through modproxy: %q", up.Log())
	}
	if n := up.Requests(filePath(t, "example.com/unused", "v1.0.0", "zip")); n != 0 {
		t.Errorf("the go.mod-only module's zip was fetched %d times", n)
	}
	if _, err := os.Stat(filepath.Join(modcache, "cache", "download", "example.com", "unused", "@v", "v1.0.0.mod")); err != nil {
		t.Errorf("go.mod-only module: %v", err)
	}

	// Offline, the go command has everything: the downloads, the graph and
	// the build.
	offline := append(append([]string(nil), env...), "GOPROXY=off")
	out := goRun(t, proj, offline, "mod", "download", "-json", "example.com/a@v1.0.0", "example.com/b@v1.0.0", "example.com/Upper@v1.1.0")
	dec := json.NewDecoder(strings.NewReader(out))
	for n := 0; ; n++ {
		var m struct{ Path, Error, Zip string }
		if err := dec.Decode(&m); err != nil {
			if n != 3 {
				t.Errorf("offline go mod download reported %d modules:\n%s", n, out)
			}
			break
		}
		if m.Error != "" || m.Zip == "" {
			t.Errorf("offline download of %s: %+v", m.Path, m)
		}
	}
	goRun(t, proj, offline, "list", "-m", "-json", "example.com/unused@v1.0.0")
	goRun(t, proj, offline, "mod", "download")
	goRun(t, proj, offline, "build", "./...")

	// A second run finds everything in the cache and runs nothing.
	up.ResetCounts()
	rep2, err := f.Prefetch(context.Background(), set.Modules())
	if err != nil {
		t.Fatal(err)
	}
	if !rep2.OK() || rep2.Cached != 4 || rep2.Fetched != 0 || up.Total() != 0 {
		t.Errorf("second run: %+v; upstream %q", rep2, up.Log())
	}
	var text strings.Builder
	rep2.WriteText(&text)
	for _, want := range []string{"prefetch into module cache " + modcache + ": 4 module versions in", "  cached          4  (already in the module cache)", "  failed          0"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, text.String())
		}
	}

	// A module the upstream does not have fails with the go command's
	// reason; the others of its batch are unaffected.
	rep3, err := prefetch.NewModCacheFetcher(prefetch.Options{Env: env}).Prefetch(context.Background(), []prefetch.Module{
		{Path: "example.com/missing", Version: "v1.0.0", Need: prefetch.NeedAll},
		{Path: "example.com/missing2", Version: "v1.0.0", Need: prefetch.NeedMod},
		{Path: "example.com/b", Version: "v1.0.0", Need: prefetch.NeedAll},
	})
	if err != nil {
		t.Fatal(err)
	}
	if rep3.OK() || rep3.Failed != 2 || rep3.Cached != 1 {
		t.Errorf("missing modules: %+v", rep3)
	}
	for _, r := range rep3.Results {
		if r.Outcome == prefetch.Failed && !strings.Contains(r.Error, r.Path+"@v1.0.0") {
			t.Errorf("failure without the go command's reason: %+v", r)
		}
	}
}
