package prefetch

import (
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/modproxy/modproxy/internal/modrefs/modrefstest"
)

// needs renders a set as "path@version:info,mod,zip" lines.
func needs(s *Set) []string {
	var out []string
	for _, m := range s.Modules() {
		var ks []string
		for _, k := range m.Need.Kinds() {
			ks = append(ks, k.String())
		}
		out = append(out, m.String()+":"+strings.Join(ks, ","))
	}
	return out
}

func skipped(s *Set) []string {
	var out []string
	for _, sk := range s.Skipped() {
		out = append(out, sk.Path+"@"+sk.Version+": "+sk.Reason)
	}
	return out
}

func TestSetGoSum(t *testing.T) {
	s := NewSet()
	err := s.AddGoSum("go.sum", []byte(`example.com/a v1.0.0 h1:aaa=
example.com/a v1.0.0/go.mod h1:bbb=
example.com/b v1.2.0/go.mod h1:ccc=

github.com/BurntSushi/toml v1.3.2/go.mod h1:ddd=
example.com/inc v2.0.0+incompatible h1:eee=
example.com/b v1.1.0/go.mod h1:fff=
`))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"example.com/a@v1.0.0:info,mod,zip",
		"example.com/b@v1.1.0:mod",
		"example.com/b@v1.2.0:mod",
		"example.com/inc@v2.0.0+incompatible:info,mod,zip",
		"github.com/BurntSushi/toml@v1.3.2:mod",
	}
	if got := needs(s); !reflect.DeepEqual(got, want) {
		t.Errorf("got %q\nwant %q", got, want)
	}
}

func TestSetErrors(t *testing.T) {
	for _, tc := range []struct {
		name, kind, data, want string
	}{
		{"short go.sum line", "sum", "example.com/a v1.0.0\n", "go.sum:1: malformed"},
		{"bad path", "sum", "ok.example/a v1.0.0 h1:x=\nEXAMPLE..com v1.0.0 h1:x=\n", "go.sum:2:"},
		{"non-canonical", "list", "# c\nexample.com/a@v1.0\n", "list:2: example.com/a@v1.0: version is not canonical"},
		{"query", "list", "example.com/a@latest\n", "list:1:"},
		{"no version", "list", "example.com/a\n", "want MODULE@VERSION"},
		{"bad go.mod", "mod", "module x\nrequire (\n", "go.mod:"},
		{"bad require", "mod", "module x\nrequire example.com/a master\n", "go.mod:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := NewSet()
			var err error
			switch tc.kind {
			case "sum":
				err = s.AddGoSum("go.sum", []byte(tc.data))
			case "list":
				err = s.AddList("list", []byte(tc.data))
			case "mod":
				err = s.AddGoMod("go.mod", []byte(tc.data))
			}
			var ie *InputError
			if !errors.As(err, &ie) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v; want an *InputError containing %q", err, tc.want)
			}
		})
	}
}

func TestSetListAndArgs(t *testing.T) {
	s := NewSet()
	if err := s.AddList("l", []byte("# warm these\nexample.com/a@v1.0.0\n\n  example.com/b@v0.1.0-20200101000000-abcdefabcdef # pseudo\nexample.com/a@v1.0.0\n")); err != nil {
		t.Fatal(err)
	}
	if err := s.AddArg("arg", "example.com/Upper@v1.0.0"); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"example.com/Upper@v1.0.0:info,mod,zip",
		"example.com/a@v1.0.0:info,mod,zip",
		"example.com/b@v0.1.0-20200101000000-abcdefabcdef:info,mod,zip",
	}
	if got := needs(s); !reflect.DeepEqual(got, want) {
		t.Errorf("got %q\nwant %q", got, want)
	}
}

// TestSetWorkspace reads a directory with a go.work, two used modules, a
// stray module, go.sum files and ignored directories.
func TestSetWorkspace(t *testing.T) {
	dir := t.TempDir()
	modrefstest.Write(t, dir, map[string]string{
		"go.work":     "go 1.22\n\nuse (\n\t./app\n\t./lib\n)\n\nreplace example.com/old v1.0.0 => example.com/new v1.5.0\n",
		"go.work.sum": "example.com/worksum v1.0.0/go.mod h1:x=\n",
		"app/go.mod": `module example.com/app

go 1.22

require (
	example.com/lib v0.0.0-00010101000000-000000000000
	example.com/a v1.0.0
	example.com/old v1.0.0
	example.com/local v1.0.0
	example.com/mod v1.0.0
)

replace example.com/local => ../local

replace example.com/mod v1.0.0 => example.com/modfork v1.0.1

replace example.com/old => example.com/ignored v9.0.0
`,
		"app/go.sum":            "example.com/a v1.0.0 h1:x=\nexample.com/a v1.0.0/go.mod h1:x=\nexample.com/c v1.0.0/go.mod h1:x=\n",
		"lib/go.mod":            "module example.com/lib\n\ngo 1.22\n\nrequire example.com/b v1.1.0\n",
		"other/go.mod":          "module example.com/other\n\ngo 1.22\n\nrequire example.com/a v1.1.0\n",
		"other/testdata/go.mod": "module example.com/td\n\nrequire example.com/never v1.0.0\n",
		"other/vendor/go.sum":   "example.com/never v1.0.0 h1:x=\n",
		".git/go.sum":           "example.com/never v1.0.0 h1:x=\n",
		"_old/go.sum":           "example.com/never v1.0.0 h1:x=\n",
	})
	s := NewSet()
	// The go.mod of a used module named before the go.work is still read
	// once, with the workspace's replacements.
	if err := s.AddPaths(filepath.Join(dir, "app", "go.mod"), dir); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"example.com/a@v1.0.0:info,mod,zip",
		"example.com/a@v1.1.0:info,mod,zip",
		"example.com/b@v1.1.0:info,mod,zip",
		"example.com/c@v1.0.0:mod",
		"example.com/modfork@v1.0.1:info,mod,zip",
		"example.com/new@v1.5.0:info,mod,zip",
		"example.com/worksum@v1.0.0:mod",
	}
	if got := needs(s); !reflect.DeepEqual(got, want) {
		t.Errorf("got %q\nwant %q", got, want)
	}
	wantSkipped := []string{
		"example.com/lib@v0.0.0-00010101000000-000000000000: workspace module",
		"example.com/local@v1.0.0: replaced by directory ../local",
	}
	if got := skipped(s); !reflect.DeepEqual(got, wantSkipped) {
		t.Errorf("skipped %q\nwant %q", got, wantSkipped)
	}
	if n := len(s.Sources()); n != 6 {
		t.Errorf("read %d files, want 6 (go.work, go.work.sum, 2 go.mod of the workspace, app/go.sum, other/go.mod): %q", n, s.Sources())
	}
}

// TestSetReplace: for "replace a v1.0.0 => a v1.1.0" the go command
// downloads the replacement and nothing of the replaced version, in a single
// module and when a workspace module replaces what another one requires
// (every workspace module's replacements apply to all). gc pins and clean
// keeps the same versions (all three read projects with modrefs).
func TestSetReplace(t *testing.T) {
	for name, files := range modrefstest.ReplaceProjects("example.com/a", "v1.0.0", "v1.1.0") {
		t.Run(name, func(t *testing.T) {
			dir := modrefstest.Write(t, t.TempDir(), files)
			s := NewSet()
			if err := s.AddPaths(dir); err != nil {
				t.Fatal(err)
			}
			if got, want := needs(s), []string{"example.com/a@v1.1.0:info,mod,zip"}; !reflect.DeepEqual(got, want) {
				t.Errorf("got %q, want %q", got, want)
			}
		})
	}
}

// TestSetExcludeAndUnusedReplace: a requirement of an excluded version is
// skipped (the go command drops it), and a version replacement no
// requirement uses needs the replacement's .mod (a dependency's go.mod can
// reach the replaced version, and the go command then reads the
// replacement's go.mod).
func TestSetExcludeAndUnusedReplace(t *testing.T) {
	s := NewSet()
	err := s.AddGoMod("go.mod", []byte("module example.com/m\n\ngo 1.22\n\nrequire (\n\texample.com/a v1.0.0\n\texample.com/b v1.0.0\n)\n\n"+
		"exclude example.com/a v1.0.0\n\nreplace example.com/c v1.0.0 => example.com/c v1.0.1\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := needs(s), []string{"example.com/b@v1.0.0:info,mod,zip", "example.com/c@v1.0.1:mod"}; !reflect.DeepEqual(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
	if got, want := skipped(s), []string{"example.com/a@v1.0.0: excluded"}; !reflect.DeepEqual(got, want) {
		t.Errorf("skipped %q, want %q", got, want)
	}
}

func TestSetPathErrors(t *testing.T) {
	dir := t.TempDir()
	modrefstest.Write(t, dir, map[string]string{"deps.txt": "example.com/a@v1.0.0\n", "go.work": "use ./missing\n"})
	s := NewSet()
	if err := s.AddPaths(filepath.Join(dir, "deps.txt")); err == nil || !strings.Contains(err.Error(), "--list") {
		t.Errorf("list file as a path: %v", err)
	}
	if err := s.AddPaths(filepath.Join(dir, "nope")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing path: %v", err)
	}
	if err := s.AddPaths(dir); err == nil || !strings.Contains(err.Error(), "use ./missing") {
		t.Errorf("go.work using a missing directory: %v", err)
	}
}

func TestSetExclude(t *testing.T) {
	s := NewSet()
	for _, a := range []string{"corp.example/x@v1.0.0", "corp.example/y/z@v1.0.0", "example.com/a@v1.0.0"} {
		if err := s.AddArg("arg", a); err != nil {
			t.Fatal(err)
		}
	}
	if n := s.Exclude("corp.example", "private"); n != 2 {
		t.Errorf("excluded %d, want 2", n)
	}
	if got := needs(s); !reflect.DeepEqual(got, []string{"example.com/a@v1.0.0:info,mod,zip"}) {
		t.Errorf("left %q", got)
	}
	if got := skipped(s); len(got) != 2 || got[0] != "corp.example/x@v1.0.0: private" {
		t.Errorf("skipped %q", got)
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"7", 7 * time.Second},
		{"0", 0},
		{"-3", 0},
		{"soon", 0},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{now.Add(-time.Hour).Format(http.TimeFormat), 0},
	} {
		if got := parseRetryAfter(tc.in, now); got != tc.want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestModGoFlags(t *testing.T) {
	for in, want := range map[string]string{
		"":                              "-mod=mod",
		"-mod=vendor":                   "-mod=mod",
		"-modcacherw --mod=readonly -x": "-modcacherw -x -mod=mod",
	} {
		if got := modGoFlags(in); got != want {
			t.Errorf("modGoFlags(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSecondsJSON(t *testing.T) {
	b, err := Seconds(1500 * time.Millisecond).MarshalJSON()
	if err != nil || string(b) != "1.5" {
		t.Fatalf("MarshalJSON = %s, %v", b, err)
	}
	var s Seconds
	if err := s.UnmarshalJSON([]byte("0.25")); err != nil || time.Duration(s) != 250*time.Millisecond {
		t.Fatalf("UnmarshalJSON = %v, %v", time.Duration(s), err)
	}
}
