package cacheadmin_test

import (
	"context"
	"io/fs"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/modproxy/modproxy/internal/audit"
	"github.com/modproxy/modproxy/internal/cacheadmin"
	"github.com/modproxy/modproxy/internal/gc"
	"github.com/modproxy/modproxy/internal/metrics"
)

// fakeDisk is a file system of a fixed capacity holding the fixture's
// store and trash: its free space is what their files leave (trash
// manifests are left out, to keep the arithmetic of the tests simple).
type fakeDisk struct {
	t        *testing.T
	f        *fixture
	mu       sync.Mutex
	capacity int64
}

func (d *fakeDisk) used() int64 {
	var n int64
	for _, dir := range []string{filepath.Join(d.f.dir, "cache", "objects"), filepath.Join(d.f.dir, "trash")} {
		err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
			if err != nil || !e.Type().IsRegular() || e.Name() == "manifest.json" {
				return err
			}
			i, err := e.Info()
			if err == nil {
				n += i.Size()
			}
			return err
		})
		if err != nil {
			d.t.Errorf("walking %s: %v", dir, err)
		}
	}
	return n
}

func (d *fakeDisk) free() (int64, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.capacity - d.used(), nil
}

func (d *fakeDisk) setCapacity(n int64) {
	d.mu.Lock()
	d.capacity = n
	d.mu.Unlock()
}

func versionsOf(items []gc.Item) []string {
	var out []string
	for _, it := range items {
		out = append(out, it.Module+"@"+it.Version)
	}
	slices.Sort(out)
	return out
}

func cached(t *testing.T, s *cacheadmin.Service) []string {
	t.Helper()
	mods, err := s.Modules(context.Background(), "", 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, m := range mods {
		for _, v := range m.Versions {
			out = append(out, m.Path+"@"+v.Version)
		}
	}
	return out
}

// TestRunGCBoundsObjectsAndTrash: the size cap bounds what the objects
// and the trash hold together (they share the disk). Filling and
// collecting over and over never leaves more than the cap, and the trash
// keeps its share of recent evictions for restores.
func TestRunGCBoundsObjectsAndTrash(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	const capBytes, share = 1000, 300 // a version is about 140 bytes
	s := f.service(t, func(o *cacheadmin.Options) { o.Policy.MaxBytes, o.Policy.TrashMaxBytes = capBytes, share })
	for i := range 30 {
		f.put(t, "example.com/a", "v1."+strconv.Itoa(i)+".0")
		if _, err := s.RunGC(ctx, "test"); err != nil {
			t.Fatal(err)
		}
		objects, _ := f.idx.Totals()
		if trash := f.trash.Size(); objects+trash > capBytes {
			t.Fatalf("after fill and gc %d: objects %d + trash %d = %d bytes, over the cap of %d", i, objects, trash, objects+trash, capBytes)
		}
	}
	if trash := f.trash.Size(); trash == 0 || trash > share {
		t.Errorf("trash holds %d bytes, want some, at most its share %d", trash, share)
	}
	if objects, _ := f.idx.Totals(); objects < capBytes-share-200 {
		t.Errorf("objects hold %d bytes: more evicted than the cap asks", objects)
	}
}

// TestEnsureFree: below gc.min_free the trash goes first, oldest batch
// first, then the least recently served versions that are not pinned,
// until the free space is back above the threshold; the rest stays.
func TestEnsureFree(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	for _, v := range []string{"v1.0.0", "v1.1.0", "v1.2.0", "v1.3.0", "v1.4.0", "v1.5.0"} {
		f.put(t, "example.com/a", v)
	}
	f.put(t, "example.com/b", "v1.0.0")
	f.put(t, "example.com/c", "v1.0.0")
	disk := &fakeDisk{t: t, f: f}
	s := f.service(t, func(o *cacheadmin.Options) {
		o.FreeSpace, o.MinFree, o.EvictForSpace = disk.free, 1000, true
		o.Policy.Pins = []string{"example.com/a@v1.0.0"}
	})
	older, err := s.Purge(ctx, "test", cacheadmin.PurgeRequest{Module: "example.com/b", Reason: "older batch"})
	if err != nil {
		t.Fatal(err)
	}
	newer, err := s.Purge(ctx, "test", cacheadmin.PurgeRequest{Module: "example.com/c", Reason: "newer batch"})
	if err != nil {
		t.Fatal(err)
	}
	// Plenty of space: nothing happens.
	disk.setCapacity(disk.used() + 5000)
	res, err := s.EnsureFree(ctx)
	if err != nil || len(res.TrashRemoved) != 0 || len(res.Evicted) != 0 || res.Low() {
		t.Fatalf("EnsureFree with room = %+v, %v; want nothing done", res, err)
	}
	// 1000 wanted, 500 free: the two trash batches (282 bytes) and then
	// the two least recently served unpinned versions (284) must go.
	disk.setCapacity(disk.used() + 500)
	res, err = s.EnsureFree(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.Before != 500 || res.Low() || res.After < 1000 {
		t.Errorf("free %d before, %d after; want 500, at least 1000", res.Before, res.After)
	}
	if len(res.TrashRemoved) < 2 || res.TrashRemoved[0].ID != older.TrashID || res.TrashRemoved[1].ID != newer.TrashID {
		t.Errorf("trash removed %+v; want %s then %s first", res.TrashRemoved, older.TrashID, newer.TrashID)
	}
	if got, want := versionsOf(res.Evicted), []string{"example.com/a@v1.1.0", "example.com/a@v1.2.0"}; !slices.Equal(got, want) {
		t.Errorf("evicted %q, want %q (least recently served, the pinned v1.0.0 kept)", got, want)
	}
	for _, it := range res.Evicted {
		if it.Reason != "min-free" {
			t.Errorf("%s@%s evicted for %q, want min-free", it.Module, it.Version, it.Reason)
		}
	}
	if got, want := cached(t, s), []string{"example.com/a@v1.0.0", "example.com/a@v1.3.0", "example.com/a@v1.4.0", "example.com/a@v1.5.0"}; !slices.Equal(got, want) {
		t.Errorf("cached after EnsureFree %q, want %q", got, want)
	}
	if ms, err := f.trash.List(); err != nil || len(ms) != 0 {
		t.Errorf("trash after EnsureFree: %d batches, %v; want empty (keeping it frees nothing)", len(ms), err)
	}
	evs, err := f.audit.Query(audit.Filter{Action: "trash-purge"})
	if err != nil || len(evs) < 3 || !strings.Contains(evs[0].Reason, "low free space") {
		t.Errorf("audit trash-purge events %+v, %v; want one per removed batch, reason low free space", evs, err)
	}

	// More than the cache can give: everything unpinned goes, the result
	// says it is still low, and it ends.
	disk.setCapacity(disk.used() + 10)
	res, err = s.EnsureFree(ctx)
	if err != nil || !res.Low() {
		t.Fatalf("EnsureFree on a disk others fill = %+v, %v; want still low, no error", res, err)
	}
	if got := cached(t, s); !slices.Equal(got, []string{"example.com/a@v1.0.0"}) {
		t.Errorf("cached %q, want only the pinned version", got)
	}
}

// TestEnsureFreeTrashOnly: when evicting objects frees nothing on that
// file system (a bucket), low space only empties the trash.
func TestEnsureFreeTrashOnly(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.put(t, "example.com/a", "v1.0.0")
	f.put(t, "example.com/b", "v1.0.0")
	disk := &fakeDisk{t: t, f: f}
	s := f.service(t, func(o *cacheadmin.Options) { o.FreeSpace, o.MinFree = disk.free, 1000 })
	if _, err := s.Purge(ctx, "test", cacheadmin.PurgeRequest{Module: "example.com/b", Reason: "x"}); err != nil {
		t.Fatal(err)
	}
	disk.setCapacity(disk.used() + 100)
	res, err := s.EnsureFree(ctx)
	if err != nil || len(res.TrashRemoved) != 1 || len(res.Evicted) != 0 || !res.Low() {
		t.Fatalf("EnsureFree = %+v, %v; want the trash emptied, nothing evicted, still low", res, err)
	}
	if got := cached(t, s); !slices.Equal(got, []string{"example.com/a@v1.0.0"}) {
		t.Errorf("cached %q", got)
	}
}

// TestStoreTriggersFreeCheck: a store has the free space checked at once,
// without waiting for the interval.
func TestStoreTriggersFreeCheck(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t)
		ctx := context.Background()
		f.put(t, "example.com/a", "v1.0.0")
		f.put(t, "example.com/b", "v1.0.0")
		disk := &fakeDisk{t: t, f: f}
		disk.setCapacity(1 << 20)
		s := f.service(t, func(o *cacheadmin.Options) {
			o.FreeSpace, o.MinFree, o.EvictForSpace, o.FreeCheckInterval = disk.free, 1000, true, time.Hour
		})
		s.Start(ctx)
		synctest.Wait()
		if got := cached(t, s); len(got) != 2 {
			t.Fatalf("evicted with room to spare: %q", got)
		}
		disk.setCapacity(disk.used() + 900)
		s.Stored("example.com/a/@v/v1.0.0.info", 20, time.Now())
		synctest.Wait()
		if got := cached(t, s); len(got) != 1 {
			t.Errorf("cached after a store on a low disk: %q, want one version evicted at once", got)
		}
		s.Close()
	})
}

// scrapeValue returns the value of an unlabelled sample of m's /metrics.
func scrapeValue(t *testing.T, m *metrics.Metrics, name string) float64 {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	for line := range strings.Lines(rec.Body.String()) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			return f
		}
	}
	t.Fatalf("no sample %s in /metrics", name)
	return 0
}

// TestStoreGaugesCurrent: the store and trash gauges are right from the
// start and follow the index and the trash, with no GC run or timer.
func TestStoreGaugesCurrent(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.put(t, "example.com/a", "v1.0.0")
	m := metrics.New()
	s := f.service(t, func(o *cacheadmin.Options) { o.Metrics = m; o.Policy.MaxBytes = 1 << 20 })
	check := func(when string) {
		t.Helper()
		b, n := f.idx.Totals()
		for name, want := range map[string]int64{"modproxy_store_bytes": b, "modproxy_store_objects": n,
			"modproxy_trash_bytes": f.trash.Size(), "modproxy_store_cap_bytes": 1 << 20} {
			if got := scrapeValue(t, m, name); got != float64(want) {
				t.Errorf("%s: %s = %v, want %d", when, name, got, want)
			}
		}
	}
	check("at start")
	if _, n := f.idx.Totals(); n != 3 {
		t.Fatalf("index holds %d objects, want 3", n)
	}
	f.put(t, "example.com/b", "v1.0.0")
	check("after a store")
	if _, err := s.Purge(ctx, "test", cacheadmin.PurgeRequest{Module: "example.com/a", Reason: "x"}); err != nil {
		t.Fatal(err)
	}
	check("after a purge")
	if f.trash.Size() == 0 {
		t.Error("the purge left the trash empty")
	}
}

// TestRunGCIgnoresToolchainObjects: the toolchain mirror's objects (dl/,
// bounded by dl.max_total) count neither towards the size cap nor against
// the trash's share of it: GC evicts only what the module cache's size
// asks, and the trash keeps its share.
func TestRunGCIgnoresToolchainObjects(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	const capBytes, share = 1000, 300 // a version is about 140 bytes
	s := f.service(t, func(o *cacheadmin.Options) { o.Policy.MaxBytes, o.Policy.TrashMaxBytes = capBytes, share })
	f.idx.Stored("dl/go1.30.1.linux-amd64.tar.gz", 100<<20, time.Now())
	for i := range 6 {
		f.put(t, "example.com/a", "v1."+strconv.Itoa(i)+".0")
	}
	res, err := s.RunGC(ctx, "test")
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Evicted) == 0 || len(res.Evicted) > 2 {
		t.Errorf("evicted %v: want the one or two versions over the cap less the share", versionsOf(res.Evicted))
	}
	if trash := f.trash.Size(); trash == 0 || trash > share {
		t.Errorf("trash holds %d bytes, want the evicted versions, at most its share %d", trash, share)
	}
}
