package clean

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/modproxy/modproxy/internal/clean/cleantest"
	"github.com/rogpeppe/go-internal/lockedfile"
	"golang.org/x/mod/module"
)

func TestReadReferences(t *testing.T) {
	root := t.TempDir()
	outside := t.TempDir()
	modCache := filepath.Join(root, "gopath", "pkg", "mod")
	cleantest.WriteFiles(t, root, map[string]string{
		// A module with a go.sum: a require needs the zip all the same (go
		// mod download fetches the zip of every requirement), so r v1.5.0,
		// which the go.sum names by its go.mod only, keeps its zip.
		"p1/go.mod": "module example.com/p1\n\ngo 1.22.3\n\ntoolchain go1.23.4\n\nrequire (\n\texample.com/a v1.0.0\n\texample.com/r v1.5.0\n)\n\n" +
			"replace example.com/x => example.com/y v0.3.0\n\nreplace example.com/local => ../local\n",
		"p1/go.sum": "example.com/a v1.0.0 h1:AAAA\nexample.com/a v1.0.0/go.mod h1:BBBB\nexample.com/b v1.2.0/go.mod h1:CCCC\n" +
			"garbage line\nexample.com/bad notaversion h1:x\n\n",
		// A module without a go.sum: requirements need their zips; an
		// excluded one nothing; a replacement no require uses its go.mod
		// only.
		"p2/go.mod": "module example.com/p2\n\ngo 1.21\n\nrequire example.com/c v2.0.0+incompatible\n\nrequire example.com/ex v1.0.0\n\n" +
			"exclude example.com/ex v1.0.0\n\nreplace example.com/z v1.0.0 => example.com/z v1.0.1\n",
		// A workspace using a module outside the root.
		"ws/go.work":     "go 1.23\n\nuse (\n\t./m\n\t" + filepath.ToSlash(filepath.Join(outside, "ext")) + "\n)\n\nreplace example.com/w => example.com/w v1.1.0\n",
		"ws/go.work.sum": "example.com/ws v0.1.0 h1:DDDD\n",
		"ws/m/go.mod":    "module example.com/m\n\ngo 1.23\n",
		// Not parsed: a broken go.mod is skipped with a warning.
		"broken/go.mod": "module example.com/broken\n\nrequire (\n",
		// Not searched: VCS metadata, the directories the go command
		// ignores, and the module cache.
		".git/go.sum":        "example.com/ignored v1.0.0 h1:x\n",
		"p1/testdata/go.mod": "module example.com/td\n\nrequire example.com/ignored v1.0.0\n",
		"p1/vendor/x/go.mod": "module x\n\nrequire example.com/ignored v1.0.0\n",
		"p1/_old/go.sum":     "example.com/ignored v1.0.0 h1:x\n",
		"gopath/pkg/mod/example.com/q@v1.0.0/go.sum": "example.com/incache v1.0.0 h1:x\n",
	})
	cleantest.WriteFiles(t, outside, map[string]string{
		"ext/go.mod":     "module example.com/ext\n\ngo 1.23\n\nrequire example.com/e v1.0.0\n",
		"ext/go.sum":     "example.com/e v1.0.0 h1:EEEE\n",
		"notread/go.sum": "example.com/notread v1.0.0 h1:x\n",
	})
	r, err := ReadReferences(context.Background(), []string{root}, []string{modCache})
	if err != nil {
		t.Fatal(err)
	}
	want := map[module.Version]Need{
		mv("example.com/a", "v1.0.0"):              NeedZip,
		mv("example.com/b", "v1.2.0"):              NeedGoMod,
		mv("example.com/r", "v1.5.0"):              NeedZip,
		mv("example.com/y", "v0.3.0"):              NeedGoMod,
		mv("example.com/c", "v2.0.0+incompatible"): NeedZip,
		mv("example.com/z", "v1.0.1"):              NeedGoMod,
		mv("example.com/w", "v1.1.0"):              NeedGoMod,
		mv("example.com/ws", "v0.1.0"):             NeedZip,
		mv("example.com/e", "v1.0.0"):              NeedZip,
	}
	if got := r.Referenced(); !reflect.DeepEqual(got, want) {
		t.Errorf("referenced:\n got %v\nwant %v", got, want)
	}
	if got := r.GoVersions(); !reflect.DeepEqual(got, []string{"go1.21", "go1.22.3", "go1.23", "go1.23.4"}) {
		t.Errorf("go versions %v", got)
	}
	for gv, want := range map[string]bool{"go1.22.3": true, "go1.23.4": true, "go1.23.0": true, "go1.23rc1": false, "go1.21.5": true, "go1.22.4": false, "go1.24.0": false} {
		if r.Toolchain(gv) != want {
			t.Errorf("Toolchain(%s) = %v", gv, !want)
		}
	}
	if len(r.Warnings) != 1 || !strings.Contains(r.Warnings[0], "broken") {
		t.Errorf("warnings %v", r.Warnings)
	}
	if len(r.Files) != 9 {
		t.Errorf("read %d files: %v", len(r.Files), r.Files)
	}
	if r.Need(mv("example.com/a", "v1.1.0")) != NeedNone {
		t.Error("unreferenced version needed")
	}
}

func TestReadReferencesUnreadable(t *testing.T) {
	if os.Getuid() == 0 {
		t.Skip("root reads everything")
	}
	root := t.TempDir()
	cleantest.WriteFiles(t, root, map[string]string{"a/go.sum": "", "b/go.sum": ""})
	if err := os.Chmod(filepath.Join(root, "b"), 0); err != nil {
		t.Fatal(err)
	}
	defer os.Chmod(filepath.Join(root, "b"), 0o755)
	if _, err := ReadReferences(context.Background(), []string{root}, nil); err == nil {
		t.Fatal("unreadable directory ignored")
	}
}

func TestParseAge(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"30d": 30 * 24 * time.Hour, "2w": 14 * 24 * time.Hour, "1.5d": 36 * time.Hour, "36h": 36 * time.Hour, "90m": 90 * time.Minute, "0d": 0,
	} {
		if got, err := ParseAge(in); err != nil || got != want {
			t.Errorf("ParseAge(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "d", "-3d", "30", "thirty days", "3y"} {
		if _, err := ParseAge(in); err == nil {
			t.Errorf("ParseAge(%q) accepted", in)
		}
	}
}

func TestPatterns(t *testing.T) {
	pats, err := parsePatterns([]string{"example.com/a, corp.example.com/*@v1.*", "golang.org/toolchain@v0.0.1-go1.21*"})
	if err != nil {
		t.Fatal(err)
	}
	for m, want := range map[module.Version]bool{
		mv("example.com/a", "v2.0.0"):                             true,
		mv("example.com/a/sub", "v2.0.0"):                         true,
		mv("example.com/ab", "v2.0.0"):                            false,
		mv("corp.example.com/x/y", "v1.4.0"):                      true,
		mv("corp.example.com/x/y", "v2.0.0"):                      false,
		mv("golang.org/toolchain", "v0.0.1-go1.21.0.linux-amd64"): true,
		mv("golang.org/toolchain", "v0.0.1-go1.22.0.linux-amd64"): false,
	} {
		if got := matchModule(pats, m); got != want {
			t.Errorf("match %v = %v", m, got)
		}
	}
	if !matchModule(nil, mv("any.example/x", "v1.0.0")) {
		t.Error("no patterns must match everything")
	}
	for remote, want := range map[string]string{
		"git3:https://github.example/Owner/Repo.git":   "github.example/Owner/Repo",
		"git3:ssh://git@corp.example.com:2222/a/b.git": "corp.example.com/a/b",
		"hg:https://hg.example/r/":                     "hg.example/r",
	} {
		if got := repoPath(remote); got != want {
			t.Errorf("repoPath(%q) = %q, want %q", remote, got, want)
		}
	}
	cp, _ := parsePatterns([]string{"corp.example.com"})
	if !matchRepo(cp, "git3:ssh://git@corp.example.com:2222/a/b.git") || matchRepo(cp, "git3:https://other.example/a") {
		t.Error("matchRepo")
	}
	vp, _ := parsePatterns([]string{"corp.example.com@v1.0.0"})
	if matchRepo(vp, "git3:https://corp.example.com/a") {
		t.Error("a pattern with a version matched a clone")
	}
}

func TestToolchainGoVersion(t *testing.T) {
	for in, want := range map[string]string{
		"v0.0.1-go1.22.3.linux-amd64":   "go1.22.3",
		"v0.0.1-go1.21rc2.darwin-arm64": "go1.21rc2",
		"v0.0.1-go1.21.0.windows-386":   "go1.21.0",
		"v1.0.0":                        "",
	} {
		if got := toolchainGoVersion(in); got != want {
			t.Errorf("toolchainGoVersion(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestLockTimeoutAndCancel(t *testing.T) {
	path := filepath.Join(t.TempDir(), "v1.0.0.lock")
	unlock, err := lockedfile.MutexAt(path).Lock()
	if err != nil {
		t.Fatal(err)
	}
	calls := 0
	_, err = lock(context.Background(), path, 150*time.Millisecond, func() { calls++ })
	var le *LockedError
	if !errors.As(err, &le) || le.Path != path || calls != 1 {
		t.Fatalf("lock while held = %v (calls %d)", err, calls)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(50 * time.Millisecond); cancel() }()
	if _, err := lock(ctx, path, 0, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("lock with canceled context = %v", err)
	}
	unlock()
	// The abandoned attempts release the lock once they get it.
	u, err := lock(context.Background(), path, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	u()
}

func TestRewriteListLikeTheGoCommand(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "@v")
	cleantest.WriteFiles(t, dir, map[string]string{
		"v1.10.0.mod": "", "v1.2.0.mod": "", "v1.2.0.info": "", "v1.9.0.zip": "", "v2.0.0+incompatible.mod": "",
		"v0.0.0-20240102030405-abcdefabcdef.mod": "", "v1.0.0-!r!c1.mod": "", "v1.0.mod": "", "list": "stale\nlonger than the result\n",
	})
	if err := rewriteList(dir); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "list"))
	// As the go command: escaped names that are not canonical (upper-case
	// pre-releases) and non-canonical versions are not listed.
	if want := "v0.0.0-20240102030405-abcdefabcdef\nv1.2.0\nv1.10.0\nv2.0.0+incompatible\n"; string(b) != want {
		t.Errorf("list = %q, want %q", b, want)
	}
	// A missing list stays missing.
	other := filepath.Join(t.TempDir(), "@v")
	cleantest.WriteFiles(t, other, map[string]string{"v1.0.0.mod": ""})
	if err := rewriteList(other); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(other, "list")); !os.IsNotExist(err) {
		t.Errorf("list created: %v", err)
	}
}

func TestScanEmptyAndStray(t *testing.T) {
	inv, err := Scan(context.Background(), filepath.Join(t.TempDir(), "none"))
	if err != nil || len(inv.Versions()) != 0 {
		t.Fatalf("missing cache: %v, %v", inv, err)
	}
	mc := t.TempDir()
	cleantest.WriteFiles(t, mc, map[string]string{
		"cache/download/example.com/a/@v/v1.0.0.mod":          "module example.com/a\n",
		"cache/download/example.com/a/@v/v1.0.0.lock":         "",
		"cache/download/example.com/a/@v/v1.0.0.mod123.tmp":   "",
		"cache/download/example.com/a/@v/list":                "v1.0.0\n",
		"cache/download/example.com/!a!b/@v/v1.0.0-!r!c.info": "{}",
		"cache/download/example.com/x/@v/v1.0.0.lock":         "",
		"cache/download/sumdb/sum.test.example/latest":        "x",
		"cache/vcs/" + strings.Repeat("ab", 32) + "/HEAD":     "",
		"cache/vcs/" + strings.Repeat("ab", 32) + ".info":     "git3:https://h.example/r",
		"cache/vcs/" + strings.Repeat("ab", 32) + ".lock":     "",
		"cache/vcs/stray":                   "",
		"cache/lock":                        "",
		"example.com/a@v1.0.0/a.go":         "package a\n",
		"example.com/a@v1.0.0.tmp-123/a.go": "package a\n",
		"example.com/!a!b@v1.0.0-!r!c/x.go": "package ab\n",
		"example.com/weird@notaversion/x":   "",
		"stray.txt":                         "",
	})
	inv, err = Scan(context.Background(), mc)
	if err != nil {
		t.Fatal(err)
	}
	if got := inv.Versions(); !reflect.DeepEqual(got, []module.Version{mv("example.com/AB", "v1.0.0-RC"), mv("example.com/a", "v1.0.0")}) {
		t.Errorf("versions %v", got)
	}
	var other []string
	for _, p := range inv.other {
		rel, _ := filepath.Rel(mc, p)
		other = append(other, filepath.ToSlash(rel))
	}
	want := []string{"cache/download/example.com/a/@v/v1.0.0.mod123.tmp", "cache/vcs/stray", "example.com/weird@notaversion", "stray.txt"}
	if !reflect.DeepEqual(other, want) {
		t.Errorf("other %v, want %v", other, want)
	}
	if len(inv.vcs) != 1 || inv.vcs[0].remote != "git3:https://h.example/r" || len(inv.sumdbs) != 1 {
		t.Errorf("vcs %v sumdbs %v", inv.vcs, inv.sumdbs)
	}
	// --all: the leftover tree goes with its version.
	p, err := inv.Plan(context.Background(), Options{All: true})
	if err != nil {
		t.Fatal(err)
	}
	if res, err := p.Apply(context.Background(), ApplyOptions{}); err != nil || res.Failed+res.Skipped != 0 {
		t.Fatalf("Apply = %+v, %v", res, err)
	}
	var left []string
	_ = filepath.WalkDir(mc, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(mc, p)
			left = append(left, filepath.ToSlash(rel))
		}
		return nil
	})
	wantLeft := []string{"cache/download/example.com/!a!b/@v/v1.0.0-!r!c.lock", "cache/download/example.com/a/@v/list", "cache/download/example.com/a/@v/v1.0.0.lock",
		"cache/download/example.com/x/@v/v1.0.0.lock", "cache/lock", "cache/vcs/" + strings.Repeat("ab", 32) + ".lock"}
	if !reflect.DeepEqual(left, wantLeft) {
		t.Errorf("left after --all: %v", left)
	}
	if _, err := os.Stat(filepath.Join(mc, "example.com")); !os.IsNotExist(err) {
		t.Errorf("empty tree parent kept: %v", err)
	}
}
