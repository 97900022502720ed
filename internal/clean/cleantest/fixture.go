package cleantest

import (
	"bufio"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/modproxy/modproxy/internal/upstream/upstreamtest"
	"golang.org/x/mod/module"
)

// FixtureModules are the modules the fixture's fake upstream serves:
//
//	example.com/a v1.0.0   go 1.16 (unpruned), imports b, requires b v1.0.0
//	example.com/a v1.1.0
//	example.com/b v1.0.0   requires d v1.0.0
//	example.com/b v1.1.0
//	example.com/d v1.0.0
//	example.com/c v1.0.0
//	example.com/Upper v1.0.0                          (case-encoded in the cache)
//	example.com/p v0.0.0-20240102030405-abcdefabcdef  (a pseudo-version)
//	example.com/inc v3.0.0+incompatible               (no go.mod)
func FixtureModules() []upstreamtest.Module {
	return []upstreamtest.Module{
		Mod("example.com/a", "v1.0.0",
			"go.mod", "module example.com/a\n\ngo 1.16\n\nrequire example.com/b v1.0.0\n",
			"a.go", "package a\n\nimport \"example.com/b\"\n\nfunc A() string { return \"a1:\" + b.B() }\n"),
		Mod("example.com/a", "v1.1.0",
			"go.mod", "module example.com/a\n\ngo 1.21\n",
			"a.go", "package a\n\nfunc A() string { return \"a1.1\" }\n"),
		Mod("example.com/b", "v1.0.0",
			"go.mod", "module example.com/b\n\ngo 1.21\n\nrequire example.com/d v1.0.0\n",
			"b.go", "package b\n\nfunc B() string { return \"b1\" }\n",
			"sub/deep/x.go", "package deep\n"),
		Mod("example.com/b", "v1.1.0",
			"go.mod", "module example.com/b\n\ngo 1.21\n",
			"b.go", "package b\n\nfunc B() string { return \"b1.1\" }\n"),
		Mod("example.com/d", "v1.0.0", "go.mod", "module example.com/d\n\ngo 1.21\n", "d.go", "package d\n"),
		Mod("example.com/c", "v1.0.0", "go.mod", "module example.com/c\n\ngo 1.21\n", "c.go", "package c\n\nconst C = 1\n"),
		Mod("example.com/Upper", "v1.0.0", "go.mod", "module example.com/Upper\n\ngo 1.21\n", "u.go", "package upper\n\nconst U = 1\n"),
		Mod("example.com/p", "v0.0.0-20240102030405-abcdefabcdef", "go.mod", "module example.com/p\n\ngo 1.21\n", "p.go", "package p\n\nconst P = 1\n"),
		Mod("example.com/inc", "v3.0.0+incompatible", "inc.go", "package inc\n\nconst I = 1\n"),
	}
}

// Fixture is a module cache filled by the go command from FixtureModules:
//   - Proj (to keep) uses a v1.0.0 and b v1.1.0; its go.sum has go.mod-only
//     lines for b v1.0.0 and d v1.0.0;
//   - a project since deleted used b v1.0.0, c, Upper, p and inc, so their
//     trees are extracted (read-only, as the go command leaves them);
//   - a v1.1.0 was downloaded with go mod download.
//
// Keeping what Proj references removes a v1.1.0, c, Upper, p and inc,
// trims b v1.0.0 to its .mod and .info, and keeps a v1.0.0, b v1.1.0 and
// d v1.0.0.
type Fixture struct {
	*Env
	Proj string // ROOT/work/proj
}

// NewFixture builds a Fixture.
func NewFixture(t testing.TB) *Fixture {
	t.Helper()
	e := New(t, FixtureModules())
	proj := WriteFiles(t, filepath.Join(e.Root, "work", "proj"), map[string]string{
		"go.mod":  "module example.com/proj\n\ngo 1.21\n\nrequire (\n\texample.com/a v1.0.0\n\texample.com/b v1.1.0\n)\n",
		"main.go": "package main\n\nimport \"example.com/a\"\n\nfunc main() { println(a.A()) }\n",
	})
	e.MustGo(t, proj, "mod", "tidy")
	e.MustGo(t, proj, "build", "./...")
	other := WriteFiles(t, filepath.Join(e.Root, "other"), map[string]string{
		"go.mod": "module example.com/other\n\ngo 1.21\n\nrequire (\n\texample.com/b v1.0.0\n\texample.com/c v1.0.0\n\texample.com/Upper v1.0.0\n" +
			"\texample.com/p v0.0.0-20240102030405-abcdefabcdef\n\texample.com/inc v3.0.0+incompatible\n)\n",
		"main.go": "package main\n\nimport (\n\t\"example.com/b\"\n\t\"example.com/c\"\n\t\"example.com/Upper\"\n\t\"example.com/p\"\n\t\"example.com/inc\"\n)\n\n" +
			"func main() { println(b.B(), c.C, upper.U, p.P, inc.I) }\n",
	})
	e.MustGo(t, other, "mod", "tidy")
	e.MustGo(t, other, "build", "./...")
	if err := os.RemoveAll(other); err != nil {
		t.Fatal(err)
	}
	e.MustGo(t, e.Root, "mod", "download", "example.com/a@v1.1.0")
	return &Fixture{Env: e, Proj: proj}
}

// GoSumNeeds parses a go.sum on its own (not with the code under test):
// "zip" for versions with an "M V h1:" line, "go.mod" for versions with only
// an "M V/go.mod h1:" line.
func GoSumNeeds(t testing.TB, file string) map[module.Version]string {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[module.Version]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) != 3 {
			continue
		}
		if v, ok := strings.CutSuffix(fields[1], "/go.mod"); ok {
			m := module.Version{Path: fields[0], Version: v}
			if out[m] == "" {
				out[m] = "go.mod"
			}
		} else {
			out[module.Version{Path: fields[0], Version: fields[1]}] = "zip"
		}
	}
	return out
}

// CachedFiles lists, per module version in the cache, the kinds of files
// present, sorted: "info", "mod", "tree", "zip", "ziphash".
func CachedFiles(t testing.TB, modCache string) map[module.Version][]string {
	t.Helper()
	out := map[module.Version][]string{}
	add := func(m module.Version, k string) { out[m] = append(out[m], k) }
	dl := filepath.Join(modCache, "cache", "download")
	err := filepath.WalkDir(dl, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == "sumdb" && filepath.Dir(p) == dl {
			return filepath.SkipDir
		}
		if d.IsDir() || filepath.Base(filepath.Dir(p)) != "@v" {
			return nil
		}
		rel, _ := filepath.Rel(dl, filepath.Dir(filepath.Dir(p)))
		mp, err := module.UnescapePath(filepath.ToSlash(rel))
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		for _, k := range []string{"info", "mod", "zip", "ziphash"} {
			if ev, ok := strings.CutSuffix(d.Name(), "."+k); ok {
				v, err := module.UnescapeVersion(ev)
				if err != nil {
					t.Fatalf("%s: %v", p, err)
				}
				add(module.Version{Path: mp, Version: v}, k)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	err = filepath.WalkDir(modCache, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() || p == modCache {
			return nil
		}
		if p == filepath.Join(modCache, "cache") {
			return filepath.SkipDir
		}
		if esc, ev, ok := strings.Cut(d.Name(), "@"); ok {
			rel, _ := filepath.Rel(modCache, filepath.Join(filepath.Dir(p), esc))
			mp, err1 := module.UnescapePath(filepath.ToSlash(rel))
			v, err2 := module.UnescapeVersion(ev)
			if err1 != nil || err2 != nil {
				t.Fatalf("unexpected directory %s", p)
			}
			add(module.Version{Path: mp, Version: v}, "tree")
			return filepath.SkipDir
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for m := range out {
		sort.Strings(out[m])
	}
	return out
}

// KeepExpected returns what CachedFiles should show after keeping what
// needs (from GoSumNeeds) references: every kind of a "zip" version, the
// info and mod of a "go.mod" version, nothing of the others.
func KeepExpected(before map[module.Version][]string, needs map[module.Version]string) map[module.Version][]string {
	out := map[module.Version][]string{}
	for m, kinds := range before {
		switch needs[m] {
		case "zip":
			out[m] = kinds
		case "go.mod":
			for _, k := range kinds {
				if k == "info" || k == "mod" {
					out[m] = append(out[m], k)
				}
			}
		}
	}
	return out
}
