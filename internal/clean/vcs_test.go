package clean

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/modproxy/modproxy/internal/clean/cleantest"
	"github.com/rogpeppe/go-internal/lockedfile"
)

// vcsFixture downloads a private module straight from a git repository on
// disk (GOPRIVATE, so no proxy and no checksum database; the https URL is
// rewritten to the local bare repository with url.insteadOf), which leaves
// a real clone in cache/vcs.
func vcsFixture(t *testing.T) (*cleantest.Env, []string) {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("no git")
	}
	e := cleantest.New(t, cleantest.FixtureModules())
	work := filepath.Join(e.Root, "gitwork")
	bare := filepath.Join(e.Root, "repo.git")
	gitconfig := filepath.Join(e.Root, "gitconfig")
	gitEnv := []string{
		"GIT_CONFIG_GLOBAL=" + gitconfig, "GIT_CONFIG_NOSYSTEM=1",
		"GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com",
	}
	cleantest.WriteFiles(t, work, map[string]string{"go.mod": "module vcs.example.com/repo.git\n\ngo 1.21\n", "r.go": "package repo\n"})
	if err := os.WriteFile(gitconfig, []byte("[url \"file://"+bare+"\"]\n\tinsteadOf = https://vcs.example.com/repo\n[init]\n\tdefaultBranch = main\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"init", "-q", work},
		{"-C", work, "add", "."},
		{"-C", work, "commit", "-q", "-m", "init"},
		{"-C", work, "tag", "v1.0.0"},
		{"clone", "-q", "--bare", work, bare},
	} {
		cmd := exec.Command("git", args...)
		cmd.Env = append(os.Environ(), gitEnv...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	extra := append(gitEnv, "GOPRIVATE=vcs.example.com")
	if out, err := e.Go(context.Background(), e.Root, extra, "mod", "download", "vcs.example.com/repo.git@v1.0.0"); err != nil {
		t.Fatalf("direct download: %v\n%s", err, out)
	}
	return e, extra
}

func TestVCSClones(t *testing.T) {
	e, extra := vcsFixture(t)
	clones, _ := filepath.Glob(filepath.Join(e.ModCache, "cache", "vcs", "*.info"))
	if len(clones) != 1 {
		t.Fatalf("want one VCS clone, have %v", clones)
	}
	dir := strings.TrimSuffix(clones[0], ".info")

	// Only with --vcs, matched by --module against the repository.
	if p := mustScanPlan(t, e.ModCache, Options{Compact: true}); hasCategory(p, CategoryVCS) {
		t.Error("VCS clone selected without --vcs")
	}
	if p := mustScanPlan(t, e.ModCache, Options{VCS: true, Modules: []string{"other.example.com"}}); len(p.Items) != 0 {
		t.Errorf("pattern matched the clone: %v", targets(p))
	}
	if p := mustScanPlan(t, e.ModCache, Options{VCS: true, OlderThan: 24 * time.Hour}); len(p.Items) != 0 {
		t.Errorf("fresh clone selected as old: %v", targets(p))
	}
	// --module selects the module's versions too.
	p := mustScanPlan(t, e.ModCache, Options{VCS: true, Modules: []string{"vcs.example.com"}})
	if got := targets(p); len(got) != 2 || got["vcs.example.com/repo.git@v1.0.0"] != ActionRemove || got["git3:https://vcs.example.com/repo"] != ActionRemove {
		t.Fatalf("plan %v", got)
	}
	p = mustScanPlan(t, e.ModCache, Options{VCS: true})
	if len(p.Items) != 1 || p.Items[0].Category != CategoryVCS || p.Items[0].Bytes == 0 {
		t.Fatalf("plan %v", targets(p))
	}

	// Locked by a go command: skipped, untouched.
	unlock, err := lockedfile.MutexAt(dir + ".lock").Lock()
	if err != nil {
		t.Fatal(err)
	}
	before := cleantest.Snapshot(t, filepath.Join(e.ModCache, "cache", "vcs"))
	res, err := p.Apply(context.Background(), ApplyOptions{LockTimeout: 200 * time.Millisecond})
	unlock()
	if err != nil || res.Skipped != 1 {
		t.Fatalf("Apply while locked = %+v, %v", res, err)
	}
	if d := cleantest.Diff(before, cleantest.Snapshot(t, filepath.Join(e.ModCache, "cache", "vcs"))); d != "" {
		t.Fatalf("locked clone changed:\n%s", d)
	}

	p = mustScanPlan(t, e.ModCache, Options{VCS: true})
	if res, err := p.Apply(context.Background(), ApplyOptions{}); err != nil || res.Done != 1 {
		t.Fatalf("Apply = %+v, %v", res, err)
	}
	for _, p := range []string{dir, dir + ".info"} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s: %v", p, err)
		}
	}
	if _, err := os.Stat(dir + ".lock"); err != nil {
		t.Errorf("lock file: %v", err)
	}
	// The go command clones again when it needs to.
	if out, err := e.Go(context.Background(), e.Root, extra, "list", "-m", "-versions", "vcs.example.com/repo.git"); err != nil || !strings.Contains(out, "v1.0.0") {
		t.Fatalf("listing after clean: %v\n%s", err, out)
	}
	if _, err := os.Stat(dir + ".info"); err != nil {
		t.Errorf("not cloned again: %v", err)
	}
}

func TestSumDBCategory(t *testing.T) {
	f := cleantest.NewFixture(t)
	p := mustScanPlan(t, f.ModCache, Options{SumDB: true})
	if len(p.Items) != 1 || p.Items[0].Category != CategorySumDB || p.Items[0].Target != "sum.test.example" || p.Items[0].Bytes == 0 {
		t.Fatalf("plan %+v", p.Items)
	}
	if res, err := p.Apply(context.Background(), ApplyOptions{}); err != nil || res.Done != 1 {
		t.Fatalf("Apply = %+v, %v", res, err)
	}
	if _, err := os.Stat(filepath.Join(f.ModCache, "cache/download/sumdb/sum.test.example")); !os.IsNotExist(err) {
		t.Fatal(err)
	}
	// The next download is verified against the database, which the go
	// command caches again.
	f.MustGo(t, f.Root, "mod", "download", "example.com/d@v1.0.0")
	if _, err := os.Stat(filepath.Join(f.ModCache, "cache/download/sumdb/sum.test.example/lookup/example.com/d@v1.0.0")); err != nil {
		t.Fatal(err)
	}
}

func hasCategory(p *Plan, c Category) bool {
	for _, it := range p.Items {
		if it.Category == c {
			return true
		}
	}
	return false
}
