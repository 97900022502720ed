package clean

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/modproxy/modproxy/internal/audit"
	"github.com/modproxy/modproxy/internal/clean/cleantest"
	"github.com/modproxy/modproxy/internal/modrefs/modrefstest"
	"github.com/modproxy/modproxy/internal/upstream/upstreamtest"
	"github.com/rogpeppe/go-internal/lockedfile"
	"golang.org/x/mod/module"
)

func mv(p, v string) module.Version { return module.Version{Path: p, Version: v} }

// TestKeepReferenced is the acceptance test at the package level: after
// cleaning with the project as the only root, the project still builds with
// GOPROXY=off, and what went is exactly what its go.sum does not need.
func TestKeepReferenced(t *testing.T) {
	f := cleantest.NewFixture(t)
	before := cleantest.CachedFiles(t, f.ModCache)
	needs := cleantest.GoSumNeeds(t, filepath.Join(f.Proj, "go.sum"))
	// The fixture must exercise every case.
	if needs[mv("example.com/b", "v1.0.0")] != "go.mod" || needs[mv("example.com/d", "v1.0.0")] != "go.mod" || needs[mv("example.com/a", "v1.0.0")] != "zip" {
		t.Fatalf("fixture go.sum does not have the expected lines: %v", needs)
	}
	if !slices.Contains(before[mv("example.com/b", "v1.0.0")], "tree") || !slices.Contains(before[mv("example.com/Upper", "v1.0.0")], "tree") {
		t.Fatalf("fixture lacks extracted trees: %v", before)
	}

	p := mustScanPlan(t, f.ModCache, Options{KeepReferenced: []string{f.Proj}})
	want := map[string]Action{
		"example.com/a@v1.1.0":                             ActionRemove,
		"example.com/c@v1.0.0":                             ActionRemove,
		"example.com/Upper@v1.0.0":                         ActionRemove,
		"example.com/p@v0.0.0-20240102030405-abcdefabcdef": ActionRemove,
		"example.com/inc@v3.0.0+incompatible":              ActionRemove,
		"example.com/b@v1.0.0":                             ActionTrim,
	}
	if got := targets(p); !reflect.DeepEqual(got, want) {
		t.Fatalf("plan = %v\nwant %v", got, want)
	}
	for _, it := range p.Items {
		if it.Bytes <= 0 || it.Status != StatusPlanned || it.Category != CategoryModules {
			t.Errorf("item %+v: want measured, planned, modules", it)
		}
	}
	if p.Kept != 3 || p.ReferenceFiles != 2 {
		t.Errorf("kept %d (want 3), reference files %d (want 2)", p.Kept, p.ReferenceFiles)
	}

	res, err := p.Apply(context.Background(), ApplyOptions{})
	if err != nil || res.Done != len(want) || res.Failed != 0 || res.Skipped != 0 || res.Bytes != p.Bytes() {
		t.Fatalf("Apply = %+v, %v", res, err)
	}

	after := cleantest.CachedFiles(t, f.ModCache)
	if want := cleantest.KeepExpected(before, needs); !reflect.DeepEqual(after, want) {
		t.Errorf("after clean:\n%v\nwant\n%v", after, want)
	}
	// Lock files stay; lists no longer name removed versions.
	if _, err := os.Stat(filepath.Join(f.ModCache, "cache/download/example.com/c/@v/v1.0.0.lock")); err != nil {
		t.Errorf("lock file removed: %v", err)
	}
	if got := readList(t, f.ModCache, "example.com/a"); got != "v1.0.0\n" {
		t.Errorf("a list = %q", got)
	}
	if got := readList(t, f.ModCache, "example.com/b"); got != "v1.0.0\nv1.1.0\n" {
		t.Errorf("b list = %q", got)
	}
	if got := readList(t, f.ModCache, "example.com/c"); got != "" {
		t.Errorf("c list = %q", got)
	}

	// The project builds offline.
	if out, err := f.Go(context.Background(), f.Proj, []string{"GOPROXY=off", "GOFLAGS=-mod=mod"}, "build", "./..."); err != nil {
		t.Fatalf("offline build after clean: %v\n%s", err, out)
	}
	// The go command reads the rewritten lists through a file:// proxy.
	fileProxy := "GOPROXY=file://" + filepath.ToSlash(filepath.Join(f.ModCache, "cache", "download"))
	out, err := f.Go(context.Background(), f.Root, []string{fileProxy, "GOSUMDB=off"}, "list", "-m", "-versions", "example.com/a", "example.com/b")
	if err != nil || strings.TrimSpace(out) != "example.com/a v1.0.0\nexample.com/b v1.0.0 v1.1.0" {
		t.Errorf("go list -m -versions through the cache = %q, %v", out, err)
	}
	// Nothing more to do with the same options.
	if p2 := mustScanPlan(t, f.ModCache, Options{KeepReferenced: []string{f.Proj}}); len(p2.Items) != 0 {
		t.Errorf("second plan not empty: %v", targets(p2))
	}
}

// TestKeepReferencedReplace: for "replace a v1.0.0 => a v1.1.0" the go
// command uses the replacement and nothing of the replaced version, in a
// single module and when a workspace module replaces what another one
// requires: a v1.1.0 is kept whole and a v1.0.0 goes. gc pins and prefetch
// fetches the same versions (all three read projects with modrefs).
func TestKeepReferencedReplace(t *testing.T) {
	f := cleantest.NewFixture(t)
	for name, files := range modrefstest.ReplaceProjects("example.com/a", "v1.0.0", "v1.1.0") {
		t.Run(name, func(t *testing.T) {
			proj := cleantest.WriteFiles(t, filepath.Join(t.TempDir(), name), files)
			got := targets(mustScanPlan(t, f.ModCache, Options{KeepReferenced: []string{proj}}))
			if got["example.com/a@v1.0.0"] != ActionRemove || got["example.com/a@v1.1.0"] != "" {
				t.Errorf("a v1.0.0: %q (want remove), a v1.1.0: %q (want kept); plan %v", got["example.com/a@v1.0.0"], got["example.com/a@v1.1.0"], got)
			}
		})
	}
}

func TestDryRunDeletesNothing(t *testing.T) {
	f := cleantest.NewFixture(t)
	before := cleantest.Snapshot(t, f.ModCache)
	for _, o := range []Options{
		{All: true},
		{KeepReferenced: []string{f.Proj}, Toolchains: true, VCS: true, SumDB: true},
		{Compact: true},
		{OlderThan: time.Nanosecond, Modules: []string{"example.com"}},
	} {
		p := mustScanPlan(t, f.ModCache, o)
		if len(p.Items) == 0 {
			t.Errorf("%+v: empty plan", o)
		}
	}
	if d := cleantest.Diff(before, cleantest.Snapshot(t, f.ModCache)); d != "" {
		t.Fatalf("planning changed the cache:\n%s", d)
	}
}

// TestLockedVersionSkipped simulates a go command downloading a version
// (holding its lock, with an extraction in progress) while clean runs with
// a short lock timeout: the version is skipped and left exactly as it was;
// everything else goes.
func TestLockedVersionSkipped(t *testing.T) {
	f := cleantest.NewFixture(t)
	lockPath := filepath.Join(f.ModCache, "cache/download/example.com/c/@v/v1.0.0.lock")
	unlock, err := lockedfile.MutexAt(lockPath).Lock()
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	// Mid-extraction, as the go command leaves it while holding the lock.
	partial := filepath.Join(f.ModCache, "cache/download/example.com/c/@v/v1.0.0.partial")
	if err := os.WriteFile(partial, nil, 0o666); err != nil {
		t.Fatal(err)
	}
	before := cleantest.Snapshot(t, f.ModCache)

	p := mustScanPlan(t, f.ModCache, Options{KeepReferenced: []string{f.Proj}})
	waited := 0
	res, err := p.Apply(context.Background(), ApplyOptions{
		LockTimeout: 300 * time.Millisecond,
		Waiting:     func(target string) { waited++; t.Logf("waiting for %s", target) },
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Skipped != 1 || res.Failed != 0 || res.Done != len(p.Items)-1 || waited != 1 {
		t.Fatalf("result %+v, waited %d", res, waited)
	}
	for _, it := range p.Items {
		if it.Target == "example.com/c@v1.0.0" {
			if it.Status != StatusSkipped || !strings.Contains(it.Error, "locked by another process") {
				t.Errorf("c: status %s, error %q", it.Status, it.Error)
			}
		} else if it.Status != StatusRemoved {
			t.Errorf("%s: status %s %s", it.Target, it.Status, it.Error)
		}
	}
	after := cleantest.Snapshot(t, f.ModCache)
	for k, st := range before {
		if strings.Contains(k, "example.com/c") && after[k] != st {
			t.Errorf("locked version changed: %s: %v -> %v", k, st, after[k])
		}
	}
	for k := range after {
		if strings.Contains(k, "example.com/c") {
			if _, ok := before[k]; !ok {
				t.Errorf("locked version gained %s", k)
			}
		}
	}
}

// TestLockedVersionWaited: clean waits for a version's lock, the "download"
// finishes meanwhile, and once the lock is free clean removes the version
// whole — including what appeared while it waited.
func TestLockedVersionWaited(t *testing.T) {
	f := cleantest.NewFixture(t)
	dl := filepath.Join(f.ModCache, "cache/download/example.com/c/@v")
	unlock, err := lockedfile.MutexAt(filepath.Join(dl, "v1.0.0.lock")).Lock()
	if err != nil {
		t.Fatal(err)
	}
	// The download is not finished: the zip is not there yet.
	zip, err := os.ReadFile(filepath.Join(dl, "v1.0.0.zip"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dl, "v1.0.0.zip")); err != nil {
		t.Fatal(err)
	}

	p := mustScanPlan(t, f.ModCache, Options{Modules: []string{"example.com/c"}})
	if len(p.Items) != 1 {
		t.Fatalf("plan %v", targets(p))
	}
	waiting := make(chan string, 1)
	done := make(chan *Result)
	go func() {
		res, err := p.Apply(context.Background(), ApplyOptions{Waiting: func(target string) { waiting <- target }})
		if err != nil {
			t.Error(err)
		}
		done <- res
	}()
	if got := <-waiting; got != "example.com/c@v1.0.0" {
		t.Errorf("waiting for %q", got)
	}
	// Finish the "download", then release the lock.
	if err := os.WriteFile(filepath.Join(dl, "v1.0.0.zip"), zip, 0o644); err != nil {
		t.Fatal(err)
	}
	unlock()
	res := <-done
	if res.Done != 1 || p.Items[0].Status != StatusRemoved {
		t.Fatalf("result %+v, item %+v", res, p.Items[0])
	}
	if kinds := cleantest.CachedFiles(t, f.ModCache)[mv("example.com/c", "v1.0.0")]; len(kinds) != 0 {
		t.Errorf("c left behind: %v", kinds)
	}
	ents, _ := os.ReadDir(dl)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if strings.Join(names, " ") != "list v1.0.0.lock" {
		t.Errorf("c's @v holds %v, want the list and the lock only", names)
	}
}

func TestCompactThenOfflineBuild(t *testing.T) {
	f := cleantest.NewFixture(t)
	before := cleantest.CachedFiles(t, f.ModCache)
	listBefore := readList(t, f.ModCache, "example.com/b")
	p := mustScanPlan(t, f.ModCache, Options{Compact: true})
	for _, it := range p.Items {
		if it.Action != ActionCompact {
			t.Errorf("%s: action %s", it.Target, it.Action)
		}
	}
	if res, err := p.Apply(context.Background(), ApplyOptions{}); err != nil || res.Failed != 0 {
		t.Fatalf("Apply = %+v, %v", res, err)
	}
	after := cleantest.CachedFiles(t, f.ModCache)
	for m, kinds := range before {
		var want []string
		for _, k := range kinds {
			if k != "tree" {
				want = append(want, k)
			}
		}
		if !reflect.DeepEqual(after[m], want) {
			t.Errorf("%v: %v, want %v", m, after[m], want)
		}
	}
	if got := readList(t, f.ModCache, "example.com/b"); got != listBefore {
		t.Errorf("list changed by compact: %q -> %q", listBefore, got)
	}
	if out, err := f.Go(context.Background(), f.Proj, []string{"GOPROXY=off"}, "build", "./..."); err != nil {
		t.Fatalf("offline build after compact: %v\n%s", err, out)
	}
	if kinds := cleantest.CachedFiles(t, f.ModCache)[mv("example.com/a", "v1.0.0")]; !slices.Contains(kinds, "tree") {
		t.Errorf("a v1.0.0 not extracted again: %v", kinds)
	}
}

func TestTrashRestoreByteIdentical(t *testing.T) {
	for _, tc := range []struct {
		name  string
		trash func(t *testing.T) string
	}{
		{"same file system", func(t *testing.T) string { return filepath.Join(t.TempDir(), "trash") }},
		{"other file system", otherFSTrash},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := cleantest.NewFixture(t)
			trash := tc.trash(t)
			before := cleantest.Snapshot(t, f.ModCache)
			logPath := filepath.Join(t.TempDir(), "audit.log")
			log, err := audit.Open(logPath)
			if err != nil {
				t.Fatal(err)
			}
			defer log.Close()

			p := mustScanPlan(t, f.ModCache, Options{KeepReferenced: []string{f.Proj}, SumDB: true})
			res, err := p.Apply(context.Background(), ApplyOptions{Trash: trash, Audit: log})
			if err != nil || res.Failed != 0 || res.Trash == "" {
				t.Fatalf("Apply = %+v, %v", res, err)
			}
			for _, it := range p.Items {
				if it.Status != StatusTrashed {
					t.Errorf("%s: %s %s", it.Target, it.Status, it.Error)
				}
			}
			if _, err := os.Stat(filepath.Join(f.ModCache, "example.com", "!upper@v1.0.0")); !os.IsNotExist(err) {
				t.Fatalf("Upper tree still there: %v", err)
			}
			runs, err := TrashRuns(trash)
			if err != nil || len(runs) != 1 || runs[0].ID != res.RunID || runs[0].Items != len(p.Items) || runs[0].Bytes != res.Bytes {
				t.Fatalf("TrashRuns = %+v, %v (result %+v)", runs, err, res)
			}

			rr, err := Restore(context.Background(), trash, "", RestoreOptions{Audit: log})
			if err != nil || !rr.Emptied || rr.RunID != res.RunID || len(rr.Items) != len(p.Items) {
				t.Fatalf("Restore = %+v, %v", rr, err)
			}
			after := cleantest.Snapshot(t, f.ModCache)
			// Lists are rewritten twice: same bytes, new modification time.
			for k, st := range before {
				if filepath.Base(k) == "list" {
					if a := after[k]; a.SHA256 != st.SHA256 || a.Mode != st.Mode {
						t.Errorf("%s: %v -> %v", k, st, a)
					}
					delete(before, k)
					delete(after, k)
				}
			}
			if d := cleantest.Diff(before, after); d != "" {
				t.Fatalf("restore is not byte-identical:\n%s", d)
			}
			if runs, _ := TrashRuns(trash); len(runs) != 0 {
				t.Errorf("trash not emptied: %+v", runs)
			}
			// The restored cache works offline.
			if out, err := f.Go(context.Background(), f.Root, []string{"GOPROXY=off"}, "mod", "download", "example.com/c@v1.0.0", "example.com/Upper@v1.0.0"); err != nil {
				t.Fatalf("offline download after restore: %v\n%s", err, out)
			}

			events, err := audit.Read(logPath)
			if err != nil {
				t.Fatal(err)
			}
			counts := map[string]int{}
			for _, e := range events {
				counts[e.Action]++
				if e.Actor != "clean" || e.Time.IsZero() || !strings.Contains(e.Reason, res.RunID) {
					t.Errorf("audit event %+v", e)
				}
			}
			if counts["remove"] != 6 || counts["trim"] != 1 || counts["clean"] != 1 || counts["restore"] != len(p.Items) {
				t.Errorf("audit actions %v", counts)
			}
		})
	}
}

// otherFSTrash returns a trash directory on another file system than the
// temporary directory (tmpfs /dev/shm), to exercise the copy path, or skips.
func otherFSTrash(t *testing.T) string {
	dir, err := os.MkdirTemp("/dev/shm", "clean-trash-")
	if err != nil {
		t.Skip("no /dev/shm")
	}
	t.Cleanup(func() { cleantest.MakeWritable(dir); os.RemoveAll(dir) })
	if sameFileSystem(t, dir, t.TempDir()) {
		t.Skip("/dev/shm is on the same file system as the temporary directory")
	}
	return filepath.Join(dir, "trash")
}

// TestRestoreConflict: a version downloaded again after it was trashed
// stays as downloaded, and its trashed copy stays in the trash.
func TestRestoreConflict(t *testing.T) {
	f := cleantest.NewFixture(t)
	trash := filepath.Join(t.TempDir(), "trash")
	p := mustScanPlan(t, f.ModCache, Options{Modules: []string{"example.com/c", "example.com/a@v1.1.0"}})
	if _, err := p.Apply(context.Background(), ApplyOptions{Trash: trash}); err != nil {
		t.Fatal(err)
	}
	f.MustGo(t, f.Root, "mod", "download", "example.com/c@v1.0.0")
	rr, err := Restore(context.Background(), trash, "", RestoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	status := map[string]string{}
	for _, it := range rr.Items {
		status[it.Target] = it.Status
	}
	// c is back as the go command downloaded it; its trashed files stay in
	// the trash.
	if status["example.com/a@v1.1.0"] != "restored" || status["example.com/c@v1.0.0"] == "restored" || rr.Emptied {
		t.Errorf("restore %+v", rr)
	}
	if kinds := cleantest.CachedFiles(t, f.ModCache)[mv("example.com/c", "v1.0.0")]; !reflect.DeepEqual(kinds, []string{"info", "mod", "tree", "zip", "ziphash"}) {
		t.Errorf("c: %v", kinds)
	}
	if runs, _ := TrashRuns(trash); len(runs) != 1 {
		t.Errorf("run should stay in the trash: %+v", runs)
	}
	freed, err := EmptyTrash(trash, nil)
	if err != nil || freed <= 0 {
		t.Errorf("EmptyTrash = %d, %v", freed, err)
	}
	if runs, _ := TrashRuns(trash); len(runs) != 0 {
		t.Errorf("trash not empty: %+v", runs)
	}
}

func TestOlderThanAndModulePatterns(t *testing.T) {
	f := cleantest.NewFixture(t)
	day := 24 * time.Hour
	setAge(t, f.ModCache, mv("example.com/c", "v1.0.0"), 40*day)
	setAge(t, f.ModCache, mv("example.com/a", "v1.0.0"), 40*day)
	setAge(t, f.ModCache, mv("example.com/a", "v1.1.0"), 10*day)

	for _, tc := range []struct {
		o    Options
		want []string
	}{
		{Options{OlderThan: 30 * day}, []string{"example.com/a@v1.0.0", "example.com/c@v1.0.0"}},
		{Options{OlderThan: 30 * day, KeepReferenced: []string{f.Proj}}, []string{"example.com/c@v1.0.0"}},
		{Options{OlderThan: 5 * day, Modules: []string{"example.com/a"}}, []string{"example.com/a@v1.0.0", "example.com/a@v1.1.0"}},
		{Options{Modules: []string{"example.com/*@v1.1.0"}}, []string{"example.com/a@v1.1.0", "example.com/b@v1.1.0"}},
		{Options{Modules: []string{"example.com/Upper,example.com/p@v0.0.0-2024*"}}, []string{"example.com/Upper@v1.0.0", "example.com/p@v0.0.0-20240102030405-abcdefabcdef"}},
		{Options{Modules: []string{"example.com/inc@v3.0.0+incompatible"}}, []string{"example.com/inc@v3.0.0+incompatible"}},
	} {
		p := mustScanPlan(t, f.ModCache, tc.o)
		if got := sortedKeys(targets(p)); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%+v: plan %v, want %v", tc.o, got, tc.want)
		}
		for _, it := range p.Items {
			if tc.o.OlderThan > 0 && !strings.Contains(it.Reason, "downloaded") {
				t.Errorf("reason %q", it.Reason)
			}
		}
	}
}

func TestAll(t *testing.T) {
	f := cleantest.NewFixture(t)
	// A leftover temporary file, as an interrupted go command leaves.
	stray := filepath.Join(f.ModCache, "cache/download/example.com/c/@v/v1.0.0.zip12345.tmp")
	if err := os.WriteFile(stray, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	p := mustScanPlan(t, f.ModCache, Options{All: true})
	cats := map[Category]int{}
	for _, it := range p.Items {
		cats[it.Category]++
	}
	if cats[CategoryModules] != 9 || cats[CategorySumDB] != 1 || cats[CategoryOther] != 1 {
		t.Fatalf("categories %v", cats)
	}
	res, err := p.Apply(context.Background(), ApplyOptions{})
	if err != nil || res.Failed != 0 {
		t.Fatalf("Apply = %+v, %v", res, err)
	}
	// Only lock files and (empty) lists remain.
	err = filepath.WalkDir(f.ModCache, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if !strings.HasSuffix(p, ".lock") && filepath.Base(p) != "lock" && filepath.Base(p) != "list" {
			t.Errorf("left after --all: %s", p)
		}
		if filepath.Base(p) == "list" {
			if b, _ := os.ReadFile(p); len(b) != 0 {
				t.Errorf("%s = %q", p, b)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// The go command fills the cache again.
	f.MustGo(t, f.Proj, "build", "./...")
}

func TestToolchains(t *testing.T) {
	var mods []upstreamtest.Module
	for _, v := range []string{"v0.0.1-go1.98.0.linux-amd64", "v0.0.1-go1.99.1.linux-amd64", "v0.0.1-go1.99.1.darwin-arm64", "v0.0.1-go1.97.2.linux-amd64"} {
		mods = append(mods, cleantest.Mod(ToolchainModule, v, "go/VERSION", toolchainGoVersion(v)+"\n"))
	}
	e := cleantest.New(t, mods)
	proj := cleantest.WriteFiles(t, filepath.Join(e.Root, "proj"), map[string]string{
		"go.mod": "module example.com/proj\n\ngo 1.21\n\ntoolchain go1.99.1\n",
	})
	for _, m := range mods {
		e.MustGo(t, e.Root, "mod", "download", m.Path+"@"+m.Version)
	}
	// Modules alone never touch toolchains.
	p := mustScanPlan(t, e.ModCache, Options{KeepReferenced: []string{proj}})
	for _, it := range p.Items {
		if it.Category == CategoryToolchains {
			t.Errorf("toolchain selected without --toolchains: %s", it.Target)
		}
	}
	p = mustScanPlan(t, e.ModCache, Options{KeepReferenced: []string{proj}, Toolchains: true, KeepToolchains: []string{"go1.97.2"}})
	if got := targets(p); !reflect.DeepEqual(got, map[string]Action{ToolchainModule + "@v0.0.1-go1.98.0.linux-amd64": ActionRemove}) {
		t.Fatalf("plan %v", got)
	}
	var tc *Item
	for _, it := range p.Items {
		if it.Category == CategoryToolchains {
			tc = it
		}
	}
	if tc == nil || tc.Bytes == 0 {
		t.Fatalf("toolchain item %+v", tc)
	}
	if res, err := p.Apply(context.Background(), ApplyOptions{}); err != nil || res.Done != 1 {
		t.Fatalf("Apply = %+v, %v", res, err)
	}
	if got := readList(t, e.ModCache, ToolchainModule); got != "v0.0.1-go1.97.2.linux-amd64\nv0.0.1-go1.99.1.darwin-arm64\nv0.0.1-go1.99.1.linux-amd64\n" {
		t.Errorf("toolchain list %q", got)
	}
	totals := p.Totals()
	if totals[1].Category != CategoryToolchains || totals[1].Items != 1 || totals[1].Bytes != tc.Bytes {
		t.Errorf("totals %+v", totals)
	}
}

func TestOptionErrors(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "f")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		o    Options
		want string
	}{
		{Options{}, "nothing selected"},
		{Options{All: true, Compact: true}, "--all"},
		{Options{OlderThan: -time.Hour}, "negative"},
		{Options{Modules: []string{"example.com/[x"}}, "malformed"},
		{Options{Modules: []string{"example.com/x@"}}, "malformed"},
		{Options{KeepReferenced: []string{filepath.Join(dir, "missing")}}, "no such file"},
		{Options{KeepReferenced: []string{file}}, "not a directory"},
	} {
		err := tc.o.Validate()
		var oe *OptionError
		if !errors.As(err, &oe) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want an OptionError with %q", tc.o, err, tc.want)
		}
	}
	// A root without any go files is refused by Plan.
	inv, err := Scan(context.Background(), filepath.Join(dir, "nocache"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = inv.Plan(context.Background(), Options{KeepReferenced: []string{dir}})
	var oe *OptionError
	if !errors.As(err, &oe) || !strings.Contains(err.Error(), "no go.mod") {
		t.Errorf("empty root: %v", err)
	}
	if _, err := Scan(context.Background(), "relative/cache"); err == nil {
		t.Error("relative module cache accepted")
	}
}

// sameFileSystem reports whether a and b (directories) are on one file
// system: whether a file renames from one to the other.
func sameFileSystem(t *testing.T, a, b string) bool {
	src := filepath.Join(a, "probe")
	if err := os.WriteFile(src, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(src)
	dst := filepath.Join(b, "probe")
	if err := os.Rename(src, dst); err != nil {
		return false
	}
	os.Remove(dst)
	return true
}

// TestConcurrentGoModDownload runs a real `go mod download` whose zip
// arrives slowly (so the go command holds the version lock for a while)
// while clean removes the same version: clean waits for the lock, and
// whatever the interleaving, the version ends up whole or wholly gone.
func TestConcurrentGoModDownload(t *testing.T) {
	f := cleantest.NewFixture(t)
	c := mv("example.com/c", "v1.0.0")
	// Start from a cache without c.
	p := mustScanPlan(t, f.ModCache, Options{Modules: []string{c.Path}})
	if _, err := p.Apply(context.Background(), ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	zipPath := "example.com/c/@v/v1.0.0.zip"
	f.Upstream.SetFault(zipPath, upstreamtest.Fault{Kind: upstreamtest.SlowBody, Chunk: 16, Delay: 50 * time.Millisecond})
	f.Upstream.ResetCounts()
	download := make(chan error, 1)
	go func() {
		out, err := f.Go(context.Background(), f.Root, nil, "mod", "download", c.Path+"@"+c.Version)
		if err != nil {
			err = errors.New(err.Error() + ": " + out)
		}
		download <- err
	}()
	// The go command takes the version lock before it asks for the zip.
	deadline := time.Now().Add(time.Minute)
	for f.Upstream.Requests(zipPath) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the go command never asked for the zip")
		}
		time.Sleep(10 * time.Millisecond)
	}
	p = mustScanPlan(t, f.ModCache, Options{Modules: []string{c.Path}})
	if len(p.Items) != 1 {
		t.Fatalf("plan %v (the .info and .mod are written before the zip)", targets(p))
	}
	waited := false
	res, err := p.Apply(context.Background(), ApplyOptions{Waiting: func(string) { waited = true }})
	if err != nil || res.Failed != 0 || !waited {
		t.Fatalf("Apply = %+v, %v; waited %v", res, err, waited)
	}
	derr := <-download
	t.Logf("go mod download: %v; clean: %s", derr, p.Items[0].Status)
	kinds := cleantest.CachedFiles(t, f.ModCache)[c]
	switch {
	case len(kinds) == 0:
	case reflect.DeepEqual(kinds, []string{"info", "mod", "tree", "zip", "ziphash"}) || reflect.DeepEqual(kinds, []string{"info", "mod", "zip", "ziphash"}):
		// The go command finished after clean (it extracts under a second
		// lock); what it left must be usable offline.
		if out, err := f.Go(context.Background(), f.Root, []string{"GOPROXY=off"}, "mod", "download", c.Path+"@"+c.Version); err != nil {
			t.Errorf("offline download: %v\n%s", err, out)
		}
	default:
		t.Fatalf("half a version left: %v", kinds)
	}
	// And the go command can always fetch it again.
	f.Upstream.ClearFaults()
	f.MustGo(t, f.Root, "mod", "download", c.Path+"@"+c.Version)
}

// TestSkipTrash: module trees in a trash under a project root are not
// projects; Options.Skip keeps their go.mod files out of the references.
func TestSkipTrash(t *testing.T) {
	f := cleantest.NewFixture(t)
	work := filepath.Dir(f.Proj)
	trash := filepath.Join(work, "trash")
	// a v1.0.0's tree holds a go.mod requiring b v1.0.0 (and no go.sum).
	p := mustScanPlan(t, f.ModCache, Options{Modules: []string{"example.com/a@v1.0.0"}, Compact: true})
	if _, err := p.Apply(context.Background(), ApplyOptions{Trash: trash}); err != nil {
		t.Fatal(err)
	}
	if p := mustScanPlan(t, f.ModCache, Options{KeepReferenced: []string{work}}); targets(p)["example.com/b@v1.0.0"] != "" {
		t.Fatalf("without Skip, the trashed go.mod should keep b v1.0.0: %v", targets(p))
	}
	p = mustScanPlan(t, f.ModCache, Options{KeepReferenced: []string{work}, Skip: []string{trash}})
	if targets(p)["example.com/b@v1.0.0"] != ActionTrim {
		t.Fatalf("with Skip: %v", targets(p))
	}
}

// TestRestoreTreeNeedsZiphash: a trashed tree is not put back when its
// .ziphash has gone meanwhile: the go command would not trust it.
func TestRestoreTreeNeedsZiphash(t *testing.T) {
	f := cleantest.NewFixture(t)
	trash := filepath.Join(t.TempDir(), "trash")
	p := mustScanPlan(t, f.ModCache, Options{Compact: true, Modules: []string{"example.com/c"}})
	if res, err := p.Apply(context.Background(), ApplyOptions{Trash: trash}); err != nil || res.Done != 1 {
		t.Fatalf("Apply = %+v, %v", res, err)
	}
	if err := os.Remove(filepath.Join(f.ModCache, "cache/download/example.com/c/@v/v1.0.0.ziphash")); err != nil {
		t.Fatal(err)
	}
	rr, err := Restore(context.Background(), trash, "", RestoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rr.Items) != 1 || rr.Items[0].Status != "left" || len(rr.Items[0].Left) != 1 || !strings.Contains(rr.Items[0].Left[0], "v1.0.0.ziphash is missing") || rr.Emptied {
		t.Fatalf("restore %+v", rr)
	}
	if kinds := cleantest.CachedFiles(t, f.ModCache)[mv("example.com/c", "v1.0.0")]; slices.Contains(kinds, "tree") {
		t.Errorf("tree restored without its .ziphash: %v", kinds)
	}
}
