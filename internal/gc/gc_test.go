package gc_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modproxy/modproxy/internal/audit"
	"github.com/modproxy/modproxy/internal/gc"
	"github.com/modproxy/modproxy/internal/index"
	"github.com/modproxy/modproxy/internal/modrefs"
	"github.com/modproxy/modproxy/internal/modrefs/modrefstest"
	storagefs "github.com/modproxy/modproxy/internal/storage/fs"
	"github.com/modproxy/modproxy/internal/trash"
)

type fixture struct {
	store *storagefs.Store
	idx   *index.Index
	trash *trash.Trash
	audit *audit.Log
	dir   string
	now   time.Time
}

// newFixture fills a store with modules m0..m(nmod-1), versions v1.0.0..v1.(nver-1).0,
// each with .info, .mod, .zip and .zip.h1; version i of module j was last
// served at now - (j*nver+i) hours, and is 1000*(i+1) bytes of zip.
func newFixture(t *testing.T, nmod, nver int) *fixture {
	t.Helper()
	dir := t.TempDir()
	store, err := storagefs.New(filepath.Join(dir, "cache"))
	if err != nil {
		t.Fatal(err)
	}
	idx, _, err := index.Open(filepath.Join(dir, "index.db"), index.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { idx.Close() })
	tr, err := trash.New(filepath.Join(dir, "trash"), trash.Options{})
	if err != nil {
		t.Fatal(err)
	}
	al, err := audit.Open(filepath.Join(dir, "audit.log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { al.Close() })
	f := &fixture{store: store, idx: idx, trash: tr, audit: al, dir: dir, now: time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)}
	ctx := context.Background()
	for j := range nmod {
		for i := range nver {
			base := fmt.Sprintf("example.com/m%d/@v/v1.%d.0", j, i)
			files := map[string][]byte{
				base + ".info":   []byte(fmt.Sprintf(`{"Version":"v1.%d.0"}`, i)),
				base + ".mod":    []byte(fmt.Sprintf("module example.com/m%d\n", j)),
				base + ".zip":    bytes.Repeat([]byte{byte('a' + i)}, 1000*(i+1)),
				base + ".zip.h1": []byte(fmt.Sprintf("h1:fake-%d-%d=", j, i)),
			}
			at := f.now.Add(-time.Duration(j*nver+i) * time.Hour)
			for k, v := range files {
				info, err := store.Put(ctx, k, bytes.NewReader(v))
				if err != nil {
					t.Fatal(err)
				}
				idx.Stored(k, info.Size, at)
			}
		}
		list := fmt.Sprintf("example.com/m%d/@v/list", j)
		if _, err := store.Put(ctx, list, strings.NewReader("v1.0.0\n")); err != nil {
			t.Fatal(err)
		}
		idx.Stored(list, 7, f.now)
	}
	idx.Flush()
	return f
}

type openGate struct {
	mu   sync.Mutex
	busy map[string]bool
}

func (g *openGate) TryLockVersion(mod, version string) (func(), bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.busy[mod+"@"+version] {
		return nil, false
	}
	return func() {}, true
}

func (f *fixture) runner(g gc.Gate) *gc.Runner {
	if g == nil {
		g = &openGate{}
	}
	return &gc.Runner{Store: f.store, Index: f.idx, Trash: f.trash, Gate: g, Audit: f.audit, Now: func() time.Time { return f.now }}
}

func names(items []gc.Item) []string {
	var out []string
	for _, it := range items {
		out = append(out, it.Module+"@"+it.Version+":"+it.Reason)
	}
	sort.Strings(out)
	return out
}

func TestPolicies(t *testing.T) {
	f := newFixture(t, 3, 4) // 12 versions
	vers, err := gc.Versions(f.idx)
	if err != nil || len(vers) != 12 {
		t.Fatalf("Versions = %d, %v", len(vers), err)
	}
	// The cap bounds what the index records: every version plus the
	// lists (the store's size, as the plan counts it).
	total, _ := f.idx.Totals()
	for _, v := range vers {
		if len(v.Keys) != 4 {
			t.Errorf("%s@%s has keys %v", v.Module, v.Version, v.Keys)
		}
	}
	for _, tc := range []struct {
		name string
		pol  gc.Policy
		want []string
	}{
		{"max idle 9h: versions served 10h+ ago", gc.Policy{MaxIdle: 9*time.Hour + 30*time.Minute},
			[]string{"example.com/m2@v1.2.0:max-idle", "example.com/m2@v1.3.0:max-idle"}},
		{"keep newest 3", gc.Policy{KeepNewest: 3},
			[]string{"example.com/m0@v1.0.0:keep-newest", "example.com/m1@v1.0.0:keep-newest", "example.com/m2@v1.0.0:keep-newest"}},
		{"pins honoured", gc.Policy{KeepNewest: 3, Pins: []string{"example.com/m0@v1.0.0", "example.com/m1"}},
			[]string{"example.com/m2@v1.0.0:keep-newest"}},
		{"size cap evicts least recently used", gc.Policy{MaxBytes: total - 5000},
			// m2 v1.3.0 (oldest, 4000+) then m2 v1.2.0 (3000+) bring it under.
			[]string{"example.com/m2@v1.2.0:size-cap", "example.com/m2@v1.3.0:size-cap"}},
		{"combined", gc.Policy{MaxIdle: 10*time.Hour + 30*time.Minute, KeepNewest: 3},
			[]string{"example.com/m0@v1.0.0:keep-newest", "example.com/m1@v1.0.0:keep-newest", "example.com/m2@v1.0.0:keep-newest", "example.com/m2@v1.3.0:max-idle"}},
		// With the trash's share of the cap, the cap bounds objects and
		// trash together: the objects keep within the cap less the share.
		{"the trash's 3 kB share comes off the objects", gc.Policy{MaxBytes: total - 3000, TrashMaxBytes: 3000},
			[]string{"example.com/m2@v1.2.0:size-cap", "example.com/m2@v1.3.0:size-cap"}},
		{"objects within the cap less the share", gc.Policy{MaxBytes: total + 3000, TrashMaxBytes: 3000}, nil},
		{"a share as large as the cap leaves nothing", gc.Policy{MaxBytes: 1000, TrashMaxBytes: 1000, Pins: []string{"example.com/m0", "example.com/m1"}},
			[]string{"example.com/m2@v1.0.0:size-cap", "example.com/m2@v1.1.0:size-cap", "example.com/m2@v1.2.0:size-cap", "example.com/m2@v1.3.0:size-cap"}},
		{"min-free evicts until the bytes are planned", gc.Policy{FreeBytes: 5000},
			[]string{"example.com/m2@v1.2.0:min-free", "example.com/m2@v1.3.0:min-free"}},
		{"min-free skips pins", gc.Policy{FreeBytes: 5000, Pins: []string{"example.com/m2@v1.3.0"}},
			[]string{"example.com/m2@v1.1.0:min-free", "example.com/m2@v1.2.0:min-free"}},
		{"other rules count towards min-free", gc.Policy{FreeBytes: 5000, KeepNewest: 3},
			[]string{"example.com/m0@v1.0.0:keep-newest", "example.com/m1@v1.0.0:keep-newest", "example.com/m2@v1.0.0:keep-newest", "example.com/m2@v1.3.0:min-free"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			plan, err := gc.MakePlan(f.idx, tc.pol, f.now)
			if err != nil {
				t.Fatal(err)
			}
			if got := names(plan.Items); !slices.Equal(got, tc.want) {
				t.Errorf("plan = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestPinSetsFromGoSum(t *testing.T) {
	f := newFixture(t, 2, 3)
	proj := t.TempDir()
	os.WriteFile(filepath.Join(proj, "go.sum"), []byte("example.com/m0 v1.0.0 h1:x=\nexample.com/m0 v1.0.0/go.mod h1:y=\nexample.com/m1 v1.1.0/go.mod h1:z=\n"), 0o644)
	plan, err := gc.MakePlan(f.idx, gc.Policy{KeepNewest: 1, PinSets: []string{proj}}, f.now)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"example.com/m0@v1.1.0:keep-newest", "example.com/m1@v1.0.0:keep-newest"}
	if got := names(plan.Items); !slices.Equal(got, want) {
		t.Errorf("plan = %q, want %q", got, want)
	}
	if plan.PinnedKept != 2 {
		t.Errorf("PinnedKept = %d, want 2", plan.PinnedKept)
	}
	if _, err := gc.MakePlan(f.idx, gc.Policy{PinSets: []string{filepath.Join(proj, "missing")}}, f.now); err == nil {
		t.Error("a missing pin set is not an error")
	}
}

// TestPinSetsReplace: a pin set pins what the go command uses. For
// "replace m0 v1.0.0 => m0 v1.1.0" that is the replacement, never the
// replaced version, in a single module and when a workspace module replaces
// what another one requires. clean keeps and prefetch fetches the same
// versions (all three read pin sets with modrefs).
func TestPinSetsReplace(t *testing.T) {
	f := newFixture(t, 1, 3)
	for name, files := range modrefstest.ReplaceProjects("example.com/m0", "v1.0.0", "v1.1.0") {
		t.Run(name, func(t *testing.T) {
			proj := modrefstest.Write(t, t.TempDir(), files)
			plan, err := gc.MakePlan(f.idx, gc.Policy{KeepNewest: 1, PinSets: []string{proj}}, f.now)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := names(plan.Items), []string{"example.com/m0@v1.0.0:keep-newest"}; !slices.Equal(got, want) {
				t.Errorf("plan = %q, want %q (the replacement pinned, the replaced version not)", got, want)
			}
		})
	}
}

// TestPinSetsExcludeAndUnusedReplace: a requirement of an excluded version
// pins nothing (the go command drops it); a version replacement no
// requirement uses pins its replacement (a dependency's go.mod can reach the
// replaced version, and the go command then reads the replacement's go.mod).
// A file given by a name no rule reads is an error.
func TestPinSetsExcludeAndUnusedReplace(t *testing.T) {
	f := newFixture(t, 1, 3)
	proj := modrefstest.Write(t, t.TempDir(), map[string]string{
		"go.mod": "module example.com/p\n\ngo 1.22\n\nrequire example.com/m0 v1.0.0\n\nexclude example.com/m0 v1.0.0\n\n" +
			"replace example.com/other v1.0.0 => example.com/m0 v1.1.0\n",
		"pins.txt": "example.com/m0 v1.0.0 h1:x=\n",
	})
	plan, err := gc.MakePlan(f.idx, gc.Policy{KeepNewest: 1, PinSets: []string{proj}}, f.now)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := names(plan.Items), []string{"example.com/m0@v1.0.0:keep-newest"}; !slices.Equal(got, want) {
		t.Errorf("plan = %q, want %q", got, want)
	}
	if _, err := gc.MakePlan(f.idx, gc.Policy{PinSets: []string{filepath.Join(proj, "pins.txt")}}, f.now); !errors.Is(err, modrefs.ErrNotModFile) {
		t.Errorf("pin set pins.txt: %v, want modrefs.ErrNotModFile", err)
	}
}

// TestPinSetUnparsable: a line of a pin set that does not parse is ignored
// and the rest pins; a file that does not parse at all fails the plan (an
// unknown pin could be evicted).
func TestPinSetUnparsable(t *testing.T) {
	f := newFixture(t, 1, 3)
	proj := modrefstest.Write(t, t.TempDir(), map[string]string{"go.sum": "garbage\nexample.com/m0 v1.0.0 h1:x=\n"})
	plan, err := gc.MakePlan(f.idx, gc.Policy{KeepNewest: 1, PinSets: []string{proj}}, f.now)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := names(plan.Items), []string{"example.com/m0@v1.1.0:keep-newest"}; !slices.Equal(got, want) {
		t.Errorf("plan = %q, want %q", got, want)
	}
	modrefstest.Write(t, proj, map[string]string{"go.work": "go 1.22\n\nuse (\n"})
	var fe *modrefs.FileError
	if _, err := gc.MakePlan(f.idx, gc.Policy{KeepNewest: 1, PinSets: []string{proj}}, f.now); !errors.As(err, &fe) || !fe.Skipped {
		t.Errorf("pin set with a go.work that does not parse: %v, want a skipped *modrefs.FileError", err)
	}
}

func TestRunTrashRestoreAudit(t *testing.T) {
	f := newFixture(t, 2, 3)
	ctx := context.Background()
	before := map[string][]byte{}
	for _, k := range []string{"example.com/m0/@v/v1.0.0.zip", "example.com/m0/@v/v1.0.0.zip.h1", "example.com/m0/@v/v1.0.0.info"} {
		before[k] = read(t, f, k)
	}
	plan, err := gc.MakePlan(f.idx, gc.Policy{KeepNewest: 2}, f.now)
	if err != nil {
		t.Fatal(err)
	}
	res, err := f.runner(nil).Run(ctx, plan, "gc:test", "test")
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Evicted) != 2 || res.TrashID == "" {
		t.Fatalf("result %+v", res)
	}
	for k := range before {
		if _, err := f.store.Stat(ctx, k); err == nil {
			t.Errorf("%s still in the store", k)
		}
		if _, ok := f.idx.Get(k); ok {
			t.Errorf("%s still in the index", k)
		}
	}
	if _, err := f.store.Stat(ctx, "example.com/m0/@v/list"); err == nil {
		t.Error("the module's cached list survived the eviction of one of its versions")
	}
	evs, err := audit.Read(filepath.Join(f.dir, "audit.log"))
	if err != nil {
		t.Fatal(err)
	}
	var evicted []string
	for _, e := range evs {
		if e.Action == "evict" {
			evicted = append(evicted, e.Target)
			if e.Bytes == 0 || e.Hashes["zip"] == "" {
				t.Errorf("audit event lacks bytes or hash: %+v", e)
			}
		}
	}
	sort.Strings(evicted)
	if !slices.Equal(evicted, []string{"example.com/m0@v1.0.0", "example.com/m1@v1.0.0"}) {
		t.Errorf("audited evictions %q", evicted)
	}
	ms, err := f.trash.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 1 || len(ms[0].Versions) != 2 {
		t.Fatalf("trash %+v", ms)
	}
	if _, err := f.trash.Restore(ctx, res.TrashID, f.store); err != nil {
		t.Fatal(err)
	}
	for k, want := range before {
		if got := read(t, f, k); !bytes.Equal(got, want) {
			t.Errorf("%s restored with different bytes", k)
		}
	}
	if ms, err := f.trash.List(); err != nil || len(ms) != 0 {
		t.Errorf("trash not empty after restore: %+v, %v", ms, err)
	}
}

func TestRunSkipsVersionsInUse(t *testing.T) {
	f := newFixture(t, 1, 3)
	g := &openGate{busy: map[string]bool{"example.com/m0@v1.0.0": true}}
	plan, err := gc.MakePlan(f.idx, gc.Policy{KeepNewest: 1}, f.now)
	if err != nil {
		t.Fatal(err)
	}
	res, err := f.runner(g).Run(context.Background(), plan, "gc", "test")
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Skipped) != 1 || res.Skipped[0].Version != "v1.0.0" || len(res.Evicted) != 1 {
		t.Fatalf("result %+v", res)
	}
	if _, err := f.store.Stat(context.Background(), "example.com/m0/@v/v1.0.0.zip"); err != nil {
		t.Error("a version in use was evicted")
	}
}

func TestTrashPurgeByAgeAndSize(t *testing.T) {
	f := newFixture(t, 1, 4)
	now := f.now
	tr, err := trash.New(filepath.Join(f.dir, "trash2"), trash.Options{Retention: time.Hour, MaxBytes: 4000, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	r := f.runner(nil)
	r.Trash = tr
	for i := range 3 {
		plan := gc.Plan{}
		vers, err := gc.Versions(f.idx)
		if err != nil {
			t.Fatal(err)
		}
		plan.Items = []gc.Item{{Entry: vers[0], Reason: "test"}}
		if _, err := r.Run(context.Background(), plan, "gc", fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
		now = now.Add(time.Second)
	}
	if ms, err := tr.List(); err != nil || len(ms) != 3 {
		t.Fatalf("%d batches, %v", len(ms), err)
	}
	removed, left, err := tr.Purge()
	// Batches of about 1, 2 and 3 kB: the two oldest go to get under 4000.
	if err != nil || len(removed) != 2 || left > 4000 || removed[0].Reason != "0" {
		t.Fatalf("size purge: removed %d, left %d, %v", len(removed), left, err)
	}
	now = now.Add(2 * time.Hour)
	removed, left, err = tr.Purge()
	if err != nil || len(removed) != 1 || left != 0 {
		t.Fatalf("age purge: removed %d, left %d, %v", len(removed), left, err)
	}
}

func TestIndexRebuildGivesSameSizes(t *testing.T) {
	f := newFixture(t, 3, 3)
	b1, n1 := f.idx.Totals()
	path := f.idx.Path()
	if err := f.idx.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	idx, created, err := index.Open(path, index.Options{})
	if err != nil || !created {
		t.Fatalf("reopen: %v created=%v", err, created)
	}
	defer idx.Close()
	if err := idx.Rebuild(context.Background(), f.store); err != nil {
		t.Fatal(err)
	}
	b2, n2 := idx.Totals()
	if b1 != b2 || n1 != n2 {
		t.Fatalf("rebuilt index: %d bytes %d objects, want %d and %d", b2, n2, b1, n1)
	}
	vers, err := gc.Versions(idx)
	if err != nil || len(vers) != 9 {
		t.Fatalf("%d versions after rebuild, %v", len(vers), err)
	}
}

func read(t *testing.T, f *fixture, key string) []byte {
	t.Helper()
	o, err := f.store.Open(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	b, err := io.ReadAll(o)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestPlanStoreBytesIsTheIndexTotal: a plan's store size is the cache's
// size as the index records it (lists included, as everywhere else), and
// the size cap bounds that figure.
func TestPlanStoreBytesIsTheIndexTotal(t *testing.T) {
	f := newFixture(t, 2, 2)
	vers, err := gc.Versions(f.idx)
	if err != nil {
		t.Fatal(err)
	}
	var versionBytes int64
	for _, v := range vers {
		versionBytes += v.Bytes
	}
	total, _ := f.idx.Totals()
	if total != versionBytes+2*7 {
		t.Fatalf("index total %d, versions %d: the fixture has two 7-byte lists", total, versionBytes)
	}
	plan, err := gc.MakePlan(f.idx, gc.Policy{MaxBytes: versionBytes}, f.now)
	if err != nil {
		t.Fatal(err)
	}
	if plan.StoreBytes != total {
		t.Errorf("plan.StoreBytes = %d, want the index total %d", plan.StoreBytes, total)
	}
	// The versions alone fit the cap; with the lists the store does not.
	if got := names(plan.Items); !slices.Equal(got, []string{"example.com/m1@v1.1.0:size-cap"}) {
		t.Errorf("plan = %q", got)
	}
}

// TestToolchainArchivesNotCounted: the size cap bounds the module cache;
// the toolchain mirror's objects (dl/, bounded by dl.max_total) neither
// count towards it nor make GC evict module versions.
func TestToolchainArchivesNotCounted(t *testing.T) {
	f := newFixture(t, 2, 2)
	total, _ := f.idx.Totals()
	f.idx.Stored("dl/go1.30.1.linux-amd64.tar.gz", 100<<20, f.now)
	f.idx.Stored("dl/go1.30.1.linux-amd64.tar.gz.sha256", 64, f.now)
	f.idx.Stored("dl/listing-all.json", 1<<20, f.now)
	f.idx.Flush()
	plan, err := gc.MakePlan(f.idx, gc.Policy{MaxBytes: total}, f.now)
	if err != nil {
		t.Fatal(err)
	}
	if plan.StoreBytes != total || len(plan.Items) != 0 {
		t.Errorf("store bytes %d (want %d, the module cache alone), evicted %v (want none)", plan.StoreBytes, total, names(plan.Items))
	}
	if gc.Counted("dl/listing.json") || !gc.Counted("sumdb/sum.example/lookup/x@v1.0.0") || !gc.Counted("example.com/m0/@v/list") {
		t.Error("Counted: dl/ must not count, sumdb/ and module files must")
	}
}
