package cacheadmin_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/modproxy/modproxy/internal/audit"
	"github.com/modproxy/modproxy/internal/cacheadmin"
	"github.com/modproxy/modproxy/internal/index"
	"github.com/modproxy/modproxy/internal/storage"
	storagefs "github.com/modproxy/modproxy/internal/storage/fs"
	"github.com/modproxy/modproxy/internal/trash"
)

// fixture is a cache on disk: store, index, trash, audit log.
type fixture struct {
	dir   string
	store *storagefs.Store
	idx   *index.Index
	trash *trash.Trash
	audit *audit.Log
}

func newFixture(t *testing.T) *fixture {
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
	return &fixture{dir: dir, store: store, idx: idx, trash: tr, audit: al}
}

// put stores mod@version's .info, .mod and .zip.
func (f *fixture) put(t *testing.T, mod, version string) {
	t.Helper()
	base := mod + "/@v/" + version
	for k, v := range map[string]string{
		base + ".info": `{"Version":"` + version + `"}`,
		base + ".mod":  "module " + mod + "\n",
		base + ".zip":  strings.Repeat("z", 100),
	} {
		info, err := f.store.Put(context.Background(), k, strings.NewReader(v))
		if err != nil {
			t.Fatal(err)
		}
		f.idx.Stored(k, info.Size, time.Now())
	}
	f.idx.Flush()
}

// gate locks versions; the ones in busy are in use.
type gate struct{ busy map[string]bool }

func (g gate) TryLockVersion(mod, version string) (func(), bool) {
	if g.busy[mod+"@"+version] {
		return nil, false
	}
	return func() {}, true
}

func (f *fixture) options(mutate ...func(*cacheadmin.Options)) cacheadmin.Options {
	o := cacheadmin.Options{Store: f.store, StateDir: filepath.Join(f.dir, "state"), Index: f.idx, Trash: f.trash,
		Gate: gate{}, Audit: f.audit}
	for _, m := range mutate {
		m(&o)
	}
	return o
}

func (f *fixture) service(t *testing.T, mutate ...func(*cacheadmin.Options)) *cacheadmin.Service {
	t.Helper()
	s, err := cacheadmin.New(f.options(mutate...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// TestStatePersists: pins and blocks survive a restart, in the files and
// formats of earlier releases.
func TestStatePersists(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.put(t, "example.com/a", "v1.0.0")
	sum := filepath.Join(f.dir, "go.sum")
	if err := os.WriteFile(sum, []byte("example.com/b v1.2.0 h1:x=\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var applied [][]cacheadmin.Block
	s := f.service(t, func(o *cacheadmin.Options) {
		o.Policy.Pins = []string{"example.com/configured"}
		o.OnBlocks = func(b []cacheadmin.Block) { applied = append(applied, b) }
	})
	if err := s.AddPin(ctx, "test", cacheadmin.Pin{Pattern: "example.com/pinned/*"}); err != nil {
		t.Fatal(err)
	}
	if err := s.AddPin(ctx, "test", cacheadmin.Pin{Set: sum}); err != nil {
		t.Fatal(err)
	}
	res, err := s.Purge(ctx, "test", cacheadmin.PurgeRequest{Module: "example.com/a", Versions: "v1.0.0", Reason: "leak", Block: true})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Versions, []string{"v1.0.0"}) || !res.Blocked || res.TrashID == "" {
		t.Errorf("purge = %+v", res)
	}
	want := cacheadmin.Block{Match: "example.com/a", Versions: "v1.0.0", Reason: "purged: leak"}
	if len(applied) != 1 || !slices.Equal(applied[0], []cacheadmin.Block{want}) {
		t.Errorf("OnBlocks got %+v, want one call with %+v", applied, want)
	}
	s.Close()

	again := f.service(t, func(o *cacheadmin.Options) { o.Policy.Pins = []string{"example.com/configured"} })
	if got := again.Blocks(); !slices.Equal(got, []cacheadmin.Block{want}) {
		t.Errorf("blocks after restart %+v", got)
	}
	pins := again.Pins(ctx)
	if !slices.Equal(pins.Patterns, []string{"example.com/configured", "example.com/pinned/*"}) || !slices.Equal(pins.Sets, []string{sum}) {
		t.Errorf("pins after restart %+v", pins)
	}
	// The files keep the format earlier releases wrote and read.
	for name, want := range map[string]string{
		"blocked.json": `[{"Match":"example.com/a","Versions":"v1.0.0","Reason":"purged: leak"}]`,
		"pins.json":    `{"patterns":["example.com/pinned/*"],"sets":["` + sum + `"]}`,
	} {
		data, err := os.ReadFile(filepath.Join(f.dir, "state", name))
		if err != nil {
			t.Fatal(err)
		}
		var compact bytes.Buffer
		if err := json.Compact(&compact, data); err != nil {
			t.Fatal(err)
		}
		if compact.String() != want {
			t.Errorf("%s = %s, want %s", name, compact.String(), want)
		}
	}
	if _, err := f.store.Stat(ctx, "example.com/a/@v/v1.0.0.zip"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("purged zip: %v, want gone", err)
	}
}

// TestSharedState: with a shared store, state lives in it under _state/
// and nothing is written to the local state directory.
func TestSharedState(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	s := f.service(t, func(o *cacheadmin.Options) { o.Shared = true })
	if err := s.AddPin(ctx, "test", cacheadmin.Pin{Pattern: "example.com/x"}); err != nil {
		t.Fatal(err)
	}
	data, err := storage.ReadSmall(ctx, f.store, "_state/pins.json", 4096)
	if err != nil || !strings.Contains(string(data), "example.com/x") {
		t.Fatalf("_state/pins.json = %q, %v", data, err)
	}
	if _, err := os.Stat(filepath.Join(f.dir, "state")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("local state directory written with a shared store: %v", err)
	}
	other := f.service(t, func(o *cacheadmin.Options) { o.Shared = true })
	if got := other.Pins(ctx).Patterns; !slices.Equal(got, []string{"example.com/x"}) {
		t.Errorf("another replica on the store sees pins %v", got)
	}
}

// TestErrorClasses: requests that cannot succeed say why with a class.
func TestErrorClasses(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.put(t, "example.com/a", "v1.0.0")
	f.put(t, "example.com/a", "v1.1.0")
	s := f.service(t, func(o *cacheadmin.Options) { o.Gate = gate{busy: map[string]bool{"example.com/a@v1.1.0": true}} })
	purge := func(r cacheadmin.PurgeRequest) error {
		_, err := s.Purge(ctx, "test", r)
		return err
	}
	for _, tc := range []struct {
		name string
		err  error
		want error
	}{
		{"purge without reason", purge(cacheadmin.PurgeRequest{Module: "example.com/a"}), cacheadmin.ErrInvalid},
		{"purge bad module", purge(cacheadmin.PurgeRequest{Module: "Example..com", Reason: "x"}), cacheadmin.ErrInvalid},
		{"purge bad range", purge(cacheadmin.PurgeRequest{Module: "example.com/a", Versions: ">=banana", Reason: "x"}), cacheadmin.ErrInvalid},
		{"pin without pattern or set", s.AddPin(ctx, "test", cacheadmin.Pin{}), cacheadmin.ErrInvalid},
		{"pin with both", s.AddPin(ctx, "test", cacheadmin.Pin{Pattern: "a", Set: "b"}), cacheadmin.ErrInvalid},
		{"pin set that does not exist", s.AddPin(ctx, "test", cacheadmin.Pin{Set: filepath.Join(f.dir, "nope")}), cacheadmin.ErrInvalid},
		{"unpin what is not pinned", s.RemovePin(ctx, "test", cacheadmin.Pin{Pattern: "example.com/nope"}), cacheadmin.ErrNotFound},
		{"restore unknown batch", func() error { _, err := s.Restore(ctx, "test", "nope"); return err }(), cacheadmin.ErrNotFound},
	} {
		if !errors.Is(tc.err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, tc.err, tc.want)
		}
	}
	// The cause is kept.
	err := s.AddPin(ctx, "test", cacheadmin.Pin{Set: filepath.Join(f.dir, "nope")})
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("pin set error %v lost its cause", err)
	}

	// A version in use: the others are purged, and the purge says to retry.
	res, err := s.Purge(ctx, "test", cacheadmin.PurgeRequest{Module: "example.com/a", Reason: "x"})
	if !errors.Is(err, cacheadmin.ErrConflict) || !slices.Equal(res.Versions, []string{"v1.0.0"}) {
		t.Errorf("purge with a version in use = %+v, %v; want v1.0.0 purged and ErrConflict", res, err)
	}
	if _, err := f.store.Stat(ctx, "example.com/a/@v/v1.1.0.zip"); err != nil {
		t.Errorf("the version in use was evicted: %v", err)
	}
}

func TestRestore(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.put(t, "example.com/a", "v1.0.0")
	s := f.service(t)
	res, err := s.Purge(ctx, "test", cacheadmin.PurgeRequest{Module: "example.com/a", Reason: "oops"})
	if err != nil {
		t.Fatal(err)
	}
	batches, err := s.Trash(ctx)
	if err != nil || len(batches) != 1 || batches[0].ID != res.TrashID {
		t.Fatalf("trash = %+v, %v", batches, err)
	}
	m, err := s.Restore(ctx, "test", res.TrashID)
	if err != nil || !slices.Equal(m.Versions, []string{"example.com/a@v1.0.0"}) {
		t.Fatalf("restore = %+v, %v", m, err)
	}
	mods, err := s.Modules(ctx, "", 0)
	if err != nil || len(mods) != 1 || len(mods[0].Versions) != 1 || !slices.Equal(mods[0].Versions[0].Files, []string{"info", "mod", "zip"}) {
		t.Fatalf("modules after restore = %+v, %v", mods, err)
	}
	if sum := s.Summary(ctx); sum.Versions != 1 || sum.Objects != 3 {
		t.Errorf("summary after restore = %+v", sum)
	}
}

// TestIndexNotReady: while IndexReady refuses (the index is being
// rebuilt), every operation that reads the whole index fails with its
// error, of class ErrUnavailable, and changes nothing; the summary still
// answers with what the index holds so far.
func TestIndexNotReady(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.put(t, "example.com/a", "v1.0.0")
	notReady := fmt.Errorf("%w: the metadata index is being rebuilt", cacheadmin.ErrUnavailable)
	s := f.service(t, func(o *cacheadmin.Options) {
		o.Policy.MaxIdle = time.Nanosecond // everything would be evicted
		o.IndexReady = func(context.Context) error { return notReady }
	})
	_, planErr := s.Plan(ctx)
	_, gcErr := s.RunGC(ctx, "test")
	_, purgeErr := s.Purge(ctx, "test", cacheadmin.PurgeRequest{Module: "example.com/a", Reason: "x"})
	_, modErr := s.Modules(ctx, "", 0)
	_, _, topErr := s.TopModules(ctx, 5)
	for name, err := range map[string]error{"plan": planErr, "gc": gcErr, "purge": purgeErr, "modules": modErr, "top modules": topErr} {
		if !errors.Is(err, cacheadmin.ErrUnavailable) || !errors.Is(err, notReady) {
			t.Errorf("%s: %v, want the readiness error", name, err)
		}
	}
	if _, err := f.store.Stat(ctx, "example.com/a/@v/v1.0.0.zip"); err != nil {
		t.Errorf("evicted while the index was not ready: %v", err)
	}
	if sum := s.Summary(ctx); sum.Objects != 3 {
		t.Errorf("summary = %+v", sum)
	}
}
