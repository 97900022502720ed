package modrefs_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/mod/module"
	"golang.org/x/tools/txtar"

	"github.com/modproxy/modproxy/internal/modrefs"
)

// expectations are the txtar files that state what reading the others
// gives; every other file of an archive is written to a directory, which
// the test reads with Set.AddPaths.
//
//	args          the paths to read, one a line (default ".")
//	skip          Options.Skip, one directory a line
//	want          the referenced versions: "PATH@VERSION NEED"
//	skipped       the skipped requirements: "FILE: PATH@VERSION: REASON"
//	problems      the problems: "FILE:LINE: ERROR", then " (skipped)" when the file was
//	error         the error of AddPaths
//	replacements  (checked when present) "FILE:LINE: OLD => NEW", then " (used)"
//	go            (checked when present) GoVersions, one a line
//	files         (checked when present) Files, in the order read
//
// want, skipped, problems and error are always checked: a missing one must
// be empty. Paths are relative to the directory.
var expectations = []string{"args", "skip", "want", "skipped", "problems", "error", "replacements", "go", "files"}

// TestRules states the rules of the package doc, one archive per rule.
func TestRules(t *testing.T) {
	archives, err := filepath.Glob(filepath.Join("testdata", "*.txtar"))
	if err != nil {
		t.Fatal(err)
	}
	if len(archives) == 0 {
		t.Fatal("no testdata/*.txtar")
	}
	for _, name := range archives {
		t.Run(strings.TrimSuffix(filepath.Base(name), ".txtar"), func(t *testing.T) {
			ar, err := txtar.ParseFile(name)
			if err != nil {
				t.Fatal(err)
			}
			if len(strings.TrimSpace(string(ar.Comment))) == 0 {
				t.Error("the archive's comment states no rule")
			}
			want := map[string]string{}
			dir := t.TempDir()
			for _, f := range ar.Files {
				if slices.Contains(expectations, f.Name) {
					want[f.Name] = string(f.Data)
					continue
				}
				p := filepath.Join(dir, filepath.FromSlash(f.Name))
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, f.Data, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			t.Chdir(dir)
			args := lines(want["args"])
			if len(args) == 0 {
				args = []string{"."}
			}
			s := modrefs.New(modrefs.Options{Skip: lines(want["skip"])})
			got := map[string]string{}
			if err := s.AddPaths(context.Background(), args...); err != nil {
				got["error"] = err.Error() + "\n"
			}
			got["want"] = render(s.Refs(), func(r modrefs.Ref) string { return r.Path + "@" + r.Version.Version + " " + r.Need.String() })
			got["skipped"] = render(s.Skipped(), func(k modrefs.Skip) string {
				return k.File + ": " + k.Path + "@" + k.Version.Version + ": " + k.Reason
			})
			got["problems"] = render(s.Problems(), func(p *modrefs.FileError) string {
				if p.Skipped {
					return p.Error() + " (skipped)"
				}
				return p.Error()
			})
			got["replacements"] = render(s.Replacements(), func(r modrefs.Replacement) string {
				line := fmt.Sprintf("%s:%d: %s => %s", r.File, r.Line, modString(r.Old), modString(r.New))
				if r.Used {
					line += " (used)"
				}
				return line
			})
			got["go"] = render(s.GoVersions(), func(g string) string { return g })
			got["files"] = render(s.Files(), filepath.ToSlash)
			for _, sec := range []string{"want", "skipped", "problems", "error", "replacements", "go", "files"} {
				w, ok := want[sec]
				if !ok && slices.Contains([]string{"replacements", "go", "files"}, sec) {
					continue
				}
				if got[sec] != w {
					t.Errorf("%s:\ngot:\n%swant:\n%s", sec, got[sec], w)
				}
			}
		})
	}
}

// TestData: AddGoMod and AddGoSum read content with the same rules.
func TestData(t *testing.T) {
	s := modrefs.New(modrefs.Options{})
	s.AddGoMod("a/go.mod", []byte("module example.com/m\n\ngo 1.22\n\nrequire example.com/a v1.0.0\n\nreplace example.com/a v1.0.0 => example.com/a v1.0.1\n"))
	s.AddGoSum("a/go.sum", []byte("example.com/a v1.0.1/go.mod h1:x=\nexample.com/b v1.0.0/go.mod h1:x=\nbad\n"))
	want := []modrefs.Ref{
		{Version: mv("example.com/a", "v1.0.1"), Need: modrefs.Zip},
		{Version: mv("example.com/b", "v1.0.0"), Need: modrefs.GoMod},
	}
	if got := s.Refs(); !slices.Equal(got, want) {
		t.Errorf("refs %v, want %v", got, want)
	}
	if n := s.Need(mv("example.com/a", "v1.0.0")); n != modrefs.None {
		t.Errorf("replaced version needs %v", n)
	}
	if p := s.Problems(); len(p) != 1 || p[0].File != "a/go.sum" || p[0].Line != 3 || p[0].Skipped {
		t.Errorf("problems %v", p)
	}
	if len(s.Files()) != 0 {
		t.Errorf("content counted as files read: %v", s.Files())
	}
}

func mv(p, v string) module.Version { return module.Version{Path: p, Version: v} }

func modString(m module.Version) string {
	if m.Version == "" {
		return m.Path
	}
	return m.Path + "@" + m.Version
}

func lines(s string) []string {
	var out []string
	for l := range strings.Lines(s) {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

func render[T any](items []T, f func(T) string) string {
	var b strings.Builder
	for _, it := range items {
		b.WriteString(f(it) + "\n")
	}
	return b.String()
}
