package e2e

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/module"

	"github.com/modproxy/modproxy/internal/upstream/upstreamtest"
)

const pseudo = "v0.0.0-20240102030405-abcdef123456"

func testModules() []upstreamtest.Module {
	src := func(pkg string) map[string][]byte {
		return map[string][]byte{pkg + ".go": []byte("package " + pkg + "\n\nconst Name = \"" + pkg + "\"\n")}
	}
	withMod := func(path, pkg string, extra string) map[string][]byte {
		f := src(pkg)
		f["go.mod"] = []byte("module " + path + "\n\ngo 1.21\n" + extra)
		return f
	}
	return []upstreamtest.Module{
		{Path: "example.com/a", Version: "v1.0.0", Files: withMod("example.com/a", "a", "")},
		{Path: "example.com/a", Version: "v1.1.0", Files: withMod("example.com/a", "a", "")},
		{Path: "example.com/a", Version: "v1.2.0-rc.1", Files: withMod("example.com/a", "a", "")},
		{Path: "example.com/b/v2", Version: "v2.0.0", Files: withMod("example.com/b/v2", "b", "\nrequire example.com/a v1.0.0\n")},
		{Path: "github.com/Upper/Case", Version: "v1.0.0", Files: withMod("github.com/Upper/Case", "upper", "")},
		{Path: "example.com/legacy", Version: "v3.0.0+incompatible", Files: src("legacy")},
		{Path: "example.com/pseudo", Version: pseudo, Files: withMod("example.com/pseudo", "pseudo", "")},
	}
}

const mainGo = `package main

import (
	"fmt"

	"example.com/a"
	b "example.com/b/v2"
	"example.com/legacy"
	"example.com/pseudo"
	upper "github.com/Upper/Case"
)

func main() { fmt.Println(a.Name, b.Name, legacy.Name, pseudo.Name, upper.Name) }
`

const goMod = `module example.com/proj

go 1.21

require (
	example.com/a v1.0.0
	example.com/b/v2 v2.0.0
	example.com/legacy v3.0.0+incompatible
	example.com/pseudo ` + pseudo + `
	github.com/Upper/Case v1.0.0
)
`

// TestGoCommand is the end-to-end test: the real go command downloads,
// verifies (through modproxy's /sumdb/ endpoint) and builds a multi-module
// project through modproxy, resolves @latest, a version list, a branch and a
// commit query; then, with the upstream stopped, does it all again from a
// fresh module cache, served from modproxy's cache alone.
func TestGoCommand(t *testing.T) {
	up := upstreamtest.New(t, testModules())
	up.AddQuery("example.com/a", "main", "v1.1.0")
	up.AddQuery("example.com/pseudo", "abcdef123456", pseudo)
	sumName, sumKey := up.SumDB()
	srv := startServer(t, nil, "--cache-dir", t.TempDir(), "--upstream", up.URL(), "--sumdb", sumKey)

	g := newGoEnv(t, srv.URL, sumKey)
	g.write(t, "go.mod", goMod)
	g.write(t, "main.go", mainGo)

	scenario := func(t *testing.T, g *goEnv) {
		g.run(t, "mod", "download")
		out := g.run(t, "run", ".")
		if strings.TrimSpace(out) != "a b legacy pseudo upper" {
			t.Fatalf("go run printed %q", out)
		}
		if out := g.run(t, "list", "-m", "-versions", "example.com/a"); strings.TrimSpace(out) != "example.com/a v1.0.0 v1.1.0 v1.2.0-rc.1" {
			t.Errorf("go list -m -versions = %q", out)
		}
		if out := g.run(t, "list", "-m", "example.com/a@latest"); strings.TrimSpace(out) != "example.com/a v1.1.0" {
			t.Errorf("go list -m @latest = %q", out)
		}
		if out := g.run(t, "list", "-m", "example.com/a@main"); strings.TrimSpace(out) != "example.com/a v1.1.0" {
			t.Errorf("branch query = %q", out)
		}
		if out := g.run(t, "list", "-m", "example.com/pseudo@abcdef123456"); strings.TrimSpace(out) != "example.com/pseudo "+pseudo {
			t.Errorf("commit query = %q", out)
		}
		g.run(t, "get", "example.com/a@latest")
		g.run(t, "build", "./...")
		data, err := os.ReadFile(filepath.Join(g.dir, "go.mod"))
		if err != nil || !strings.Contains(string(data), "example.com/a v1.1.0") {
			t.Errorf("go get @latest did not update go.mod:\n%s", data)
		}
		g.run(t, "mod", "verify")
	}

	if !srv.logged("checksum verification on") {
		t.Fatal("modproxy did not start with checksum verification on")
	}
	t.Run("through upstream", func(t *testing.T) { scenario(t, g) })
	var lookups int
	for _, p := range up.Log() {
		if strings.HasPrefix(p, "sumdb/"+sumName+"/lookup/") {
			lookups++
		}
	}
	if lookups < 5 {
		t.Fatalf("the go command verified %d modules through the checksum database, want >= 5; upstream log: %q", lookups, up.Log())
	}
	for _, p := range up.Log() {
		if strings.HasSuffix(p, "/supported") {
			t.Errorf("/sumdb/%s/supported was forwarded upstream", sumName)
		}
	}

	// The same from a fresh module cache and without go.sum, upstream down.
	up.Stop()
	g.freshModCache(t)
	g.write(t, "go.mod", goMod)
	if err := os.Remove(filepath.Join(g.dir, "go.sum")); err != nil {
		t.Fatal(err)
	}
	t.Run("upstream stopped", func(t *testing.T) { scenario(t, g) })
	if !srv.logged(`"cache":"hit"`) {
		t.Error("no cache hits logged")
	}
}

// TestCrashSafety kills modproxy with SIGKILL while it fills many modules,
// restarts it on the same cache, and checks that everything it serves, and
// everything in its store, is complete and correct.
func TestCrashSafety(t *testing.T) {
	var mods []upstreamtest.Module
	// Incompressible (but deterministic) content, so that each zip is about
	// 200 KB and takes about two seconds to drip.
	rng := rand.New(rand.NewPCG(1, 2))
	filler := make([]byte, 0, 400_000)
	for len(filler) < 400_000 {
		filler = fmt.Appendf(filler, "// %016x%016x\n", rng.Uint64(), rng.Uint64())
	}
	for i := range 24 {
		p := fmt.Sprintf("example.com/m%02d", i)
		mods = append(mods, upstreamtest.Module{Path: p, Version: "v1.0.0", Files: map[string][]byte{
			"go.mod": []byte("module " + p + "\n"), "m.go": []byte("package m\n"), "pad.go": filler,
		}})
	}
	up := upstreamtest.New(t, mods)
	up.SetFault("example.com/*/@v/v1.0.0.zip", upstreamtest.Fault{Kind: upstreamtest.SlowBody, Chunk: 2048, Delay: 20 * time.Millisecond})
	up.SetFault("example.com/*/@v/v1.0.0.mod", upstreamtest.Fault{Kind: upstreamtest.Delay, Delay: 100 * time.Millisecond})
	cacheDir := t.TempDir()
	srv := startServer(t, nil, "--cache-dir", cacheDir, "--upstream", up.URL(), "--sumdb", "off")

	var wg sync.WaitGroup
	for _, m := range mods {
		for _, ext := range []string{".zip", ".mod", ".info"} {
			wg.Go(func() {
				resp, err := http.Get(srv.URL + "/" + m.Path + "/@v/v1.0.0" + ext)
				if err == nil {
					resp.Body.Close()
				}
			})
		}
	}
	time.Sleep(400 * time.Millisecond) // some fills done, many in flight
	srv.kill()
	wg.Wait()

	// Everything in the store after the crash is whole.
	checkStore := func() int {
		n := 0
		err := filepath.WalkDir(filepath.Join(cacheDir, "objects"), func(p string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			rel, _ := filepath.Rel(filepath.Join(cacheDir, "objects"), p)
			rel = filepath.ToSlash(rel)
			escMod, file, _ := strings.Cut(rel, "/@v/")
			mod, _ := module.UnescapePath(escMod)
			got, _ := os.ReadFile(p)
			var want []byte
			switch {
			case strings.HasSuffix(file, ".zip"):
				want = up.ZipBytes(mod, "v1.0.0")
			case strings.HasSuffix(file, ".mod"):
				want = up.ModBytes(mod, "v1.0.0")
			default:
				return nil
			}
			n++
			if !bytes.Equal(got, want) {
				t.Errorf("store holds a bad %s (%d bytes, want %d)", rel, len(got), len(want))
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if ents, _ := os.ReadDir(filepath.Join(cacheDir, "tmp")); len(ents) == 0 {
		t.Error("no partial downloads on disk at the kill; the test did not exercise a crash mid-write")
	}
	before := checkStore()
	t.Logf("%d zips and mods were complete when the server was killed", before)
	if before >= len(mods)*2 {
		t.Fatal("every fill finished before the kill; the test did not exercise a crash mid-write")
	}

	up.ClearFaults()
	srv2 := startServer(t, nil, "--cache-dir", cacheDir, "--upstream", up.URL(), "--sumdb", "off")
	if ents, _ := os.ReadDir(filepath.Join(cacheDir, "tmp")); len(ents) != 0 {
		t.Errorf("temporary files survived the restart: %d", len(ents))
	}
	for _, m := range mods {
		for ext, want := range map[string][]byte{".zip": up.ZipBytes(m.Path, "v1.0.0"), ".mod": up.ModBytes(m.Path, "v1.0.0")} {
			status, body := srv2.get(t, "/"+m.Path+"/@v/v1.0.0"+ext)
			if status != 200 || !bytes.Equal(body, want) {
				t.Errorf("%s%s after restart: %d, %d bytes (want %d)", m.Path, ext, status, len(body), len(want))
			}
		}
	}
	if n := checkStore(); n != len(mods)*2 {
		t.Errorf("store has %d zips and mods, want %d", n, len(mods)*2)
	}
}

// TestGracefulShutdown sends SIGTERM while a slow zip download is in
// flight: the download completes and the server exits 0.
func TestGracefulShutdown(t *testing.T) {
	up := upstreamtest.New(t, testModules())
	up.SetFault("example.com/a/@v/v1.0.0.zip", upstreamtest.Fault{Kind: upstreamtest.Delay, Delay: time.Second})
	srv := startServer(t, nil, "--cache-dir", t.TempDir(), "--upstream", up.URL(), "--sumdb", "off")
	type result struct {
		status int
		body   []byte
		err    error
	}
	// The download runs in its own goroutine, which must not call
	// t.Fatal: when the server is gone early the test would wait forever.
	res := make(chan result, 1)
	go func() {
		resp, err := http.Get(srv.URL + "/example.com/a/@v/v1.0.0.zip")
		if err != nil {
			res <- result{err: err}
			return
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		res <- result{resp.StatusCode, body, err}
	}()
	time.Sleep(300 * time.Millisecond)
	if err := srv.stop(t); err != nil {
		t.Errorf("exit after SIGTERM: %v", err)
	}
	r := <-res
	if r.err != nil {
		t.Fatalf("in-flight download: %v", r.err)
	}
	if r.status != 200 || !bytes.Equal(r.body, up.ZipBytes("example.com/a", "v1.0.0")) {
		t.Errorf("in-flight download: %d, %d bytes", r.status, len(r.body))
	}
}
