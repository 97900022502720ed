package toolchain_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/modproxy/modproxy/internal/audit"
	"github.com/modproxy/modproxy/internal/index"
	"github.com/modproxy/modproxy/internal/toolchain"
)

// withIndex has the service record into, and bound by, a metadata index.
func withIndex(t *testing.T, maxTotal int64, tweak func(*toolchain.Options)) (*env, *index.Index) {
	t.Helper()
	idx, _, err := index.Open(filepath.Join(t.TempDir(), "index.db"), index.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { idx.Close() })
	e := newEnv(t, func(o *toolchain.Options) {
		o.Index, o.Records, o.MaxTotal = idx, idx, maxTotal
		if tweak != nil {
			tweak(o)
		}
	})
	return e, idx
}

func (e *env) fetch(t *testing.T, name string) {
	t.Helper()
	a, err := e.svc.Archive(context.Background(), name, false)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	read(t, a)
}

func (e *env) evictions(t *testing.T) []string {
	t.Helper()
	recs, err := audit.Read(e.audit.Path())
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range recs {
		if r.Action == "evict" && r.Actor == "toolchain" {
			out = append(out, r.Target)
		}
	}
	return out
}

// TestArchivesBoundedByMaxTotal: storing an archive that takes the stored
// archives over dl.max_total evicts the least recently used, whole
// (archive and .sha256 record), audited; the recently served stay.
func TestArchivesBoundedByMaxTotal(t *testing.T) {
	// older (2 MiB) + windows (1 MiB) + linux (3 MiB) do not fit; without
	// windows they do.
	e, idx := withIndex(t, 5<<20+1000, nil)
	e.fetch(t, older)
	e.clock.Advance(time.Minute)
	e.fetch(t, windows)
	e.clock.Advance(time.Minute)
	e.fetch(t, older) // served again: windows is now the least recently used
	e.clock.Advance(time.Minute)
	if got := e.evictions(t); len(got) != 0 {
		t.Fatalf("evicted %v within the bound", got)
	}
	e.fetch(t, linux)
	w := toolchain.ArchiveKey(windows)
	if e.stored(t, w) || e.stored(t, w+".sha256") {
		t.Errorf("the least recently used archive %s is still stored", windows)
	}
	for _, name := range []string{older, linux} {
		if !e.stored(t, toolchain.ArchiveKey(name)) || !e.stored(t, toolchain.ArchiveKey(name)+".sha256") {
			t.Errorf("%s evicted", name)
		}
	}
	if got := e.evictions(t); len(got) != 1 || got[0] != w {
		t.Errorf("audited evictions %v, want [%s]", got, w)
	}
	idx.Flush()
	if _, ok := idx.Get(w); ok {
		t.Errorf("the index still records %s", w)
	}
	// Asked again, it is fetched again (and another makes room).
	e.fetch(t, windows)
	if n := e.site.Requests(windows); n != 2 {
		t.Errorf("%d downloads of %s, want 2", n, windows)
	}
}

// TestTrimEvictsOverBound: an archive larger than the bound on its own is
// served to the callers that asked for it, and evicted by the next Trim
// (the GC schedule's).
func TestTrimEvictsOverBound(t *testing.T) {
	e, _ := withIndex(t, 2<<20, nil)
	e.fetch(t, linux) // 3 MiB
	if !e.stored(t, toolchain.ArchiveKey(linux)) {
		t.Fatal("the archive just stored was evicted before its callers were served")
	}
	ev, err := e.svc.Trim(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(ev) != 1 || ev[0].File != linux || ev[0].Bytes != int64(len(e.file(linux).Data))+64 {
		t.Errorf("Trim evicted %+v, want %s with its record", ev, linux)
	}
	if e.stored(t, toolchain.ArchiveKey(linux)) {
		t.Error("still stored after Trim")
	}
	if got := e.evictions(t); len(got) != 1 {
		t.Errorf("audited evictions %v", got)
	}
	if ev, err := e.svc.Trim(context.Background()); err != nil || len(ev) != 0 {
		t.Errorf("second Trim: %+v, %v", ev, err)
	}
}
