package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/modproxy/modproxy/internal/audit"
	"github.com/modproxy/modproxy/internal/clean/cleantest"
	"github.com/rogpeppe/go-internal/lockedfile"
	"golang.org/x/mod/module"
)

// cleanCmd runs runClean with an environment whose go command is the
// fixture's and whose per-user cache directory is inside it.
type cleanCmd struct {
	f    *cleantest.Fixture
	vars map[string]string
}

func newCleanCmd(t *testing.T) *cleanCmd {
	f := cleantest.NewFixture(t)
	return &cleanCmd{f: f, vars: map[string]string{
		"HOME":           filepath.Join(f.Root, "home"),
		"XDG_CACHE_HOME": filepath.Join(f.Root, "home", ".cache"),
	}}
}

func (c *cleanCmd) run(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = runCleanCmd(Env{
		Stdout: &out, Stderr: &errb,
		// Not a terminal: even a "y" here must not confirm anything.
		Stdin:     strings.NewReader("y\n"),
		LookupEnv: func(k string) (string, bool) { v, ok := c.vars[k]; return v, ok },
		GoEnv:     c.f.GoEnv,
	}, args)
	return code, out.String(), errb.String()
}

func (c *cleanCmd) auditLog() string {
	return filepath.Join(c.vars["XDG_CACHE_HOME"], "modproxy", "clean", "audit.log")
}

// TestCleanAcceptance: after "clean --keep-referenced ./proj --yes", the
// project builds with GOPROXY=off, and the versions removed are exactly the
// unreferenced ones.
func TestCleanAcceptance(t *testing.T) {
	c := newCleanCmd(t)
	f := c.f
	before := cleantest.CachedFiles(t, f.ModCache)
	needs := cleantest.GoSumNeeds(t, filepath.Join(f.Proj, "go.sum"))
	t.Chdir(filepath.Dir(f.Proj))

	code, stdout, stderr := c.run(t, "--keep-referenced", "./proj", "--yes")
	if code != ExitOK {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	t.Logf("stdout:\n%s", stdout)
	after := cleantest.CachedFiles(t, f.ModCache)
	want := cleantest.KeepExpected(before, needs)
	if !reflect.DeepEqual(after, want) {
		t.Fatalf("after clean:\n%v\nwant\n%v", after, want)
	}
	// The fixture keeps three versions, trims one and removes five.
	if len(before) != 9 || len(after) != 4 || len(after[cleanTestMV("example.com/b", "v1.0.0")]) != 2 {
		t.Fatalf("fixture changed: before %v after %v", before, after)
	}
	for _, s := range []string{"removed 6 entries", "0 skipped, 0 failed", "example.com/c@v1.0.0", "trim"} {
		if !strings.Contains(stdout, s) {
			t.Errorf("stdout lacks %q", s)
		}
	}
	out, err := f.Go(context.Background(), f.Proj, []string{"GOPROXY=off", "GOFLAGS=-mod=mod"}, "build", "./...")
	if err != nil {
		t.Fatalf("GOPROXY=off go build after clean: %v\n%s", err, out)
	}
	events, err := audit.Read(c.auditLog())
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 7 || events[6].Action != "clean" || events[6].Target != f.ModCache {
		t.Errorf("audit events %+v", events)
	}
	audited := map[string]bool{}
	for _, e := range events[:6] {
		audited[e.Target] = true
	}
	wantAudited := map[string]bool{}
	for m, kinds := range before {
		if len(want[m]) < len(kinds) {
			wantAudited[m.String()] = true
		}
	}
	if !reflect.DeepEqual(audited, wantAudited) {
		t.Errorf("audited %v, want %v", audited, wantAudited)
	}
}

func cleanTestMV(p, v string) module.Version { return module.Version{Path: p, Version: v} }

func TestCleanDryRun(t *testing.T) {
	c := newCleanCmd(t)
	before := cleantest.Snapshot(t, c.f.ModCache)
	for _, args := range [][]string{
		{"--keep-referenced", c.f.Proj},                       // no --yes, no terminal
		{"--keep-referenced", c.f.Proj, "--dry-run", "--yes"}, // --dry-run wins
		{"--all", "--json"},
		{"--compact", "--sumdb", "--vcs", "--toolchains", "--trash"},
	} {
		code, stdout, stderr := c.run(t, args...)
		if code != ExitOK {
			t.Fatalf("%v: exit %d: %s", args, code, stderr)
		}
		if args[len(args)-1] != "--json" && (!strings.Contains(stdout, "dry run: nothing was removed") || !strings.Contains(stdout, "CATEGORY")) {
			t.Errorf("%v: output:\n%s", args, stdout)
		}
	}
	if d := cleantest.Diff(before, cleantest.Snapshot(t, c.f.ModCache)); d != "" {
		t.Fatalf("a dry run changed the cache:\n%s", d)
	}
	if _, err := os.Stat(c.auditLog()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a dry run wrote the audit log: %v", err)
	}
	// Without a per-user cache directory a dry run works, a removal does not.
	home := c.vars
	c.vars = map[string]string{}
	if code, _, stderr := c.run(t, "--compact"); code != ExitOK {
		t.Errorf("dry run without HOME: %d %s", code, stderr)
	}
	if code, _, stderr := c.run(t, "--compact", "--yes"); code != ExitUsage || !strings.Contains(stderr, "per-user cache directory") {
		t.Errorf("removal without HOME: %d %s", code, stderr)
	}
	c.vars = home
	if d := cleantest.Diff(before, cleantest.Snapshot(t, c.f.ModCache)); d != "" {
		t.Fatalf("the cache changed:\n%s", d)
	}

	code, stdout, _ := c.run(t, "--keep-referenced", c.f.Proj)
	for _, s := range []string{"give --yes", "modules     6", "toolchains  0", "vcs         0", "sumdb       0", "total       6", "kept 3 module versions", "example.com/Upper@v1.0.0", "not referenced", "only its go.mod is referenced"} {
		if code != ExitOK || !strings.Contains(stdout, s) {
			t.Errorf("dry-run output lacks %q:\n%s", s, stdout)
		}
	}
}

type jsonReport struct {
	ModCache string `json:"modcache"`
	DryRun   bool   `json:"dry_run"`
	Items    []struct {
		Category, Action, Target, Status, Reason string
		Bytes                                    int64
	} `json:"items"`
	Totals []struct {
		Category string
		Items    int
		Bytes    int64
	} `json:"totals"`
	Bytes  int64 `json:"bytes"`
	Kept   int   `json:"kept_versions"`
	Result *struct {
		RunID   string `json:"run_id"`
		Trash   string `json:"trash"`
		Done    int    `json:"done"`
		Bytes   int64  `json:"bytes"`
		Skipped int    `json:"skipped"`
		Failed  int    `json:"failed"`
	} `json:"result"`
}

func TestCleanJSONTrashRestore(t *testing.T) {
	c := newCleanCmd(t)
	f := c.f
	trash := filepath.Join(f.Root, "trash")
	before := cleantest.Snapshot(t, f.ModCache)

	code, stdout, stderr := c.run(t, "--keep-referenced", f.Proj, "--sumdb", "--json")
	var dry jsonReport
	if err := json.Unmarshal([]byte(stdout), &dry); err != nil || code != ExitOK {
		t.Fatalf("dry run --json: exit %d, %v\n%s\n%s", code, err, stdout, stderr)
	}
	if !dry.DryRun || dry.ModCache != f.ModCache || len(dry.Items) != 7 || dry.Result != nil || dry.Kept != 3 || dry.Bytes <= 0 {
		t.Fatalf("dry run report %+v", dry)
	}
	var sum int64
	for _, tot := range dry.Totals {
		sum += tot.Bytes
		if tot.Category == "sumdb" && tot.Items != 1 {
			t.Errorf("sumdb total %+v", tot)
		}
	}
	if sum != dry.Bytes {
		t.Errorf("totals %d != bytes %d", sum, dry.Bytes)
	}

	code, stdout, stderr = c.run(t, "--keep-referenced", f.Proj, "--sumdb", "--json", "--yes", "--trash", trash)
	var done jsonReport
	if err := json.Unmarshal([]byte(stdout), &done); err != nil || code != ExitOK {
		t.Fatalf("--json --yes: exit %d, %v\n%s\n%s", code, err, stdout, stderr)
	}
	if done.DryRun || done.Result == nil || done.Result.Done != 7 || done.Result.Trash != filepath.Join(trash, done.Result.RunID) || done.Result.Bytes != done.Bytes {
		t.Fatalf("report %+v", done)
	}
	for _, it := range done.Items {
		if it.Status != "trashed" {
			t.Errorf("%s: %s", it.Target, it.Status)
		}
	}

	code, stdout, _ = c.run(t, "restore", "--trash", trash, "--list")
	if code != ExitOK || !strings.Contains(stdout, done.Result.RunID) || !strings.Contains(stdout, f.ModCache) {
		t.Fatalf("restore --list: %d\n%s", code, stdout)
	}
	code, stdout, stderr = c.run(t, "restore", "--trash", trash, "--json", done.Result.RunID)
	var rr struct {
		RunID   string `json:"run_id"`
		Emptied bool   `json:"emptied"`
		Items   []struct{ Status string }
	}
	if err := json.Unmarshal([]byte(stdout), &rr); err != nil || code != ExitOK || !rr.Emptied || len(rr.Items) != 7 {
		t.Fatalf("restore: exit %d, %v: %s %s", code, err, stdout, stderr)
	}
	after := cleantest.Snapshot(t, f.ModCache)
	for k, st := range before {
		if filepath.Base(k) == "list" { // rewritten twice: same bytes, new time
			if after[k].SHA256 != st.SHA256 {
				t.Errorf("%s differs", k)
			}
			delete(before, k)
			delete(after, k)
		}
	}
	if d := cleantest.Diff(before, after); d != "" {
		t.Fatalf("restore is not byte-identical:\n%s", d)
	}
	code, stdout, _ = c.run(t, "restore", "--trash", trash, "--list", "--json")
	if code != ExitOK || strings.TrimSpace(stdout) != "[]" {
		t.Errorf("restore --list --json after restore: %d %q", code, stdout)
	}
	code, _, stderr = c.run(t, "restore", "--trash", trash)
	if code != ExitFailure || !strings.Contains(stderr, "no runs") {
		t.Errorf("restore from an empty trash: %d %q", code, stderr)
	}

	events, err := audit.Read(c.auditLog())
	if err != nil {
		t.Fatal(err)
	}
	actions := map[string]int{}
	for _, e := range events {
		actions[e.Action]++
	}
	if actions["restore"] != 7 || actions["clean"] != 1 || actions["remove"] != 6 || actions["trim"] != 1 {
		t.Errorf("audit actions %v", actions)
	}
}

func TestCleanDefaultTrashAndEmpty(t *testing.T) {
	c := newCleanCmd(t)
	code, stdout, stderr := c.run(t, "--module", "example.com/c", "--trash", "--yes")
	if code != ExitOK || !strings.Contains(stdout, "moved to the trash 1 entries") {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	trash := filepath.Join(c.vars["XDG_CACHE_HOME"], "modproxy", "clean", "trash")
	if !strings.Contains(stdout, "modproxy clean restore --trash "+trash+" ") {
		t.Errorf("no restore hint for %s:\n%s", trash, stdout)
	}
	code, stdout, _ = c.run(t, "restore", "--list")
	if code != ExitOK || !strings.Contains(stdout, "ENTRIES") {
		t.Fatalf("restore --list: %d\n%s", code, stdout)
	}
	code, stdout, _ = c.run(t, "empty-trash")
	if code != ExitOK || !strings.Contains(stdout, "dry run: nothing was deleted") {
		t.Fatalf("empty-trash without --yes: %d\n%s", code, stdout)
	}
	code, stdout, _ = c.run(t, "empty-trash", "--yes")
	if code != ExitOK || !strings.Contains(stdout, "deleted") {
		t.Fatalf("empty-trash --yes: %d\n%s", code, stdout)
	}
	if code, stdout, _ = c.run(t, "restore", "--list"); code != ExitOK || !strings.Contains(stdout, "is empty") {
		t.Errorf("after empty-trash: %s", stdout)
	}
}

func TestCleanLockedVersion(t *testing.T) {
	c := newCleanCmd(t)
	unlock, err := lockedfile.MutexAt(filepath.Join(c.f.ModCache, "cache/download/example.com/c/@v/v1.0.0.lock")).Lock()
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	code, stdout, stderr := c.run(t, "--keep-referenced", c.f.Proj, "--yes", "--lock-timeout", "200ms")
	if code != ExitOK {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	if !strings.Contains(stderr, "waiting for example.com/c@v1.0.0: another process holds its lock (skipped after 200ms)") ||
		!strings.Contains(stdout, "1 skipped") || !strings.Contains(stdout, "locked by another process") {
		t.Errorf("stdout:\n%s\nstderr:\n%s", stdout, stderr)
	}
	if kinds := cleantest.CachedFiles(t, c.f.ModCache)[cleanTestMV("example.com/c", "v1.0.0")]; len(kinds) != 5 {
		t.Errorf("locked version touched: %v", kinds)
	}
}

func TestCleanUsageAndHelp(t *testing.T) {
	c := &cleanCmd{vars: map[string]string{"HOME": t.TempDir()}}
	var goEnvCalls int
	env := func(goEnvErr error) Env {
		return Env{
			Stdout: &bytes.Buffer{}, Stderr: &bytes.Buffer{}, Stdin: strings.NewReader(""),
			LookupEnv: func(k string) (string, bool) { v, ok := c.vars[k]; return v, ok },
			GoEnv: func(ctx context.Context, keys ...string) (map[string]string, error) {
				goEnvCalls++
				return nil, goEnvErr
			},
		}
	}
	e := env(errors.New("no go command"))
	if code := runCleanCmd(e, []string{"--help"}); code != ExitOK {
		t.Fatalf("--help exit %d", code)
	}
	help := e.Stdout.(*bytes.Buffer).String()
	for _, s := range []string{"-all", "-keep-referenced DIR", "-older-than AGE", "-module PATTERN[@VERSION]", "-compact", "-toolchains", "-vcs", "-sumdb",
		"-dry-run", "-yes", "-trash DIR", "-audit-log FILE", "-lock-timeout", "-json", "modproxy clean restore", "empty-trash",
		"not\nwhen a module was last used", "lockedfile", ".ziphash", "@v/list", "Exit status"} {
		if !strings.Contains(help, s) {
			t.Errorf("help lacks %q", s)
		}
	}
	if strings.Contains(help, "\x00") {
		t.Error("help shows the internal default marker")
	}
	for _, sub := range []string{"restore", "empty-trash"} {
		e := env(nil)
		if code := runCleanCmd(e, []string{sub, "--help"}); code != ExitOK || !strings.Contains(e.Stdout.(*bytes.Buffer).String(), "Usage: modproxy clean "+sub) {
			t.Errorf("%s --help: %d %s", sub, code, e.Stdout)
		}
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "nothing selected"},
		{[]string{"--all", "--module", "x.example"}, "--all"},
		{[]string{"--older-than", "soon"}, "invalid age"},
		{[]string{"--module", "x.example/[", "--yes"}, "malformed"},
		{[]string{"--keep-referenced", filepath.Join(c.vars["HOME"], "missing")}, "no such file"},
		{[]string{"--compact", "extra"}, "unexpected arguments"},
		{[]string{"--bogus"}, "bogus"},
		{[]string{"restore", "a", "b"}, "unexpected arguments"},
		{[]string{"restore", "--trash", t.TempDir(), "../x"}, "invalid run ID"},
	} {
		e := env(errors.New("no go command"))
		code := runCleanCmd(e, tc.args)
		if stderr := e.Stderr.(*bytes.Buffer).String(); code != ExitUsage || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want %d with %q", tc.args, code, stderr, ExitUsage, tc.want)
		}
	}
	if goEnvCalls != 0 {
		t.Errorf("usage errors ran go env %d times", goEnvCalls)
	}
	e = env(errors.New("no go command"))
	if code := runCleanCmd(e, []string{"--compact"}); code != ExitFailure || !strings.Contains(e.Stderr.(*bytes.Buffer).String(), "no go command") {
		t.Errorf("go env failure: %d %s", code, e.Stderr)
	}
}

func TestCleanHelpers(t *testing.T) {
	for in, want := range map[string]string{
		"--trash":              "--trash=" + cleanTrashDefault,
		"--trash --yes":        "--trash=" + cleanTrashDefault + " --yes",
		"--trash /t --yes":     "--trash /t --yes",
		"-trash=/t":            "-trash=/t",
		"--yes -- --trash":     "--yes -- --trash",
		"--all --trash --json": "--all --trash=" + cleanTrashDefault + " --json",
	} {
		if got := strings.Join(cleanOptionalTrash(strings.Fields(in)), " "); got != want {
			t.Errorf("cleanOptionalTrash(%q) = %q, want %q", in, got, want)
		}
	}
	if got := cleanKeepToolchains("go1.22.3", "go1.23.0+auto"); !reflect.DeepEqual(got, []string{"go1.22.3", "go1.23.0"}) {
		t.Errorf("cleanKeepToolchains = %v", got)
	}
	if got := cleanKeepToolchains("devel go1.24-abcdef", "local"); got != nil {
		t.Errorf("cleanKeepToolchains(devel) = %v", got)
	}
	if !cleanConfirm(strings.NewReader("Yes\n"), &bytes.Buffer{}, "?") || cleanConfirm(strings.NewReader("\n"), &bytes.Buffer{}, "?") {
		t.Error("cleanConfirm")
	}
	if dir, err := cleanUserCacheDir(Env{LookupEnv: func(k string) (string, bool) { return map[string]string{"HOME": "/h"}[k], k == "HOME" }}); err != nil || (dir != "/h/.cache" && dir != "/h/Library/Caches") {
		t.Errorf("cleanUserCacheDir = %q, %v", dir, err)
	}
	if _, err := cleanUserCacheDir(Env{LookupEnv: func(string) (string, bool) { return "", false }}); err == nil {
		t.Error("no HOME accepted")
	}
}
