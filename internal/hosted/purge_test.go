package hosted

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/modproxy/modproxy/internal/storage"
)

// openShared opens the purge marks kept in the shared store st.
func openShared(t *testing.T, st MarksStore) *purges {
	t.Helper()
	p, err := openPurges(context.Background(), storeMarks{st})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestSharedPurgeMarksFenced: on a shared store the purge marks are
// changed by creating the next generation, so a replica that changes marks
// it read before another replica's change (its cluster lock lost during a
// pause) is refused with ErrRaced instead of writing the other's change
// away. Marks kept in the document of before generations are carried over.
func TestSharedPurgeMarksFenced(t *testing.T) {
	ctx := context.Background()
	st, _ := segBucket(t)
	mark := func(r string) Mark { return Mark{Time: time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC), Reason: r} }
	old := time.Now().Add(-48 * time.Hour).UTC().Format(time.RFC3339)
	legacy := []byte(`{"corp.example.com/a@v1.0.0": {"time": "` + old + `", "reason": "old"}}`)
	if _, err := st.Put(ctx, SharedPurgesKey, bytes.NewReader(legacy)); err != nil {
		t.Fatal(err)
	}
	open := func() *purges { return openShared(t, st) }
	keys := func(p *purges) []string { return slices.Sorted(maps.Keys(p.m)) }
	p1, p2 := open(), open()
	if got := keys(p1); !slices.Equal(got, []string{"corp.example.com/a@v1.0.0"}) {
		t.Fatalf("marks of the old document: %v", got)
	}
	if err := p1.change(ctx, func(m map[string]Mark) { m["corp.example.com/b@v1.0.0"] = mark("b") }); err != nil {
		t.Fatal(err)
	}
	err := p2.change(ctx, func(m map[string]Mark) { m["corp.example.com/c@v1.0.0"] = mark("c") })
	if !errors.Is(err, ErrRaced) {
		t.Fatalf("a change of marks read before another replica's: %v, want ErrRaced", err)
	}
	if _, ok := p2.get("corp.example.com/c@v1.0.0"); ok {
		t.Fatal("a refused change is in memory")
	}
	if err := p2.reload(ctx); err != nil {
		t.Fatal(err)
	}
	if err := p2.change(ctx, func(m map[string]Mark) { m["corp.example.com/c@v1.0.0"] = mark("c") }); err != nil {
		t.Fatal(err)
	}
	if err := p1.reload(ctx); err != nil {
		t.Fatal(err)
	}
	want := []string{"corp.example.com/a@v1.0.0", "corp.example.com/b@v1.0.0", "corp.example.com/c@v1.0.0"}
	if got := keys(p1); !slices.Equal(got, want) || p1.gen != 2 {
		t.Fatalf("marks after both changes: %v (generation %d), want %v (2)", got, p1.gen, want)
	}
	if err := p1.remove(ctx, "corp.example.com/a@v1.0.0"); err != nil {
		t.Fatal(err)
	}
	m, err := ReadPurges(ctx, t.TempDir(), st)
	if err != nil {
		t.Fatal(err)
	}
	if got := slices.Sorted(maps.Keys(m)); !slices.Equal(got, want[1:]) {
		t.Fatalf("ReadPurges: %v, want %v", got, want[1:])
	}
}

// TestSharedPurgeMarksRollingUpgrade: a replica of a version before
// generations still writes the old document; a purge it records after the
// generations began is seen by the newer replicas (a version it purged
// stays blocked), and carried into the next generation, while a mark of
// the old document that a generation removed is not brought back.
func TestSharedPurgeMarksRollingUpgrade(t *testing.T) {
	ctx := context.Background()
	st, _ := segBucket(t)
	putLegacy := func(doc string) {
		t.Helper()
		if _, err := st.Put(ctx, SharedPurgesKey, bytes.NewReader([]byte(doc))); err != nil {
			t.Fatal(err)
		}
	}
	stamp := func(d time.Duration) string { return time.Now().Add(d).UTC().Format(time.RFC3339) }
	old := stamp(-48 * time.Hour)
	putLegacy(`{"corp.example.com/a@v1.0.0": {"time": "` + old + `", "reason": "old"}}`)
	p := openShared(t, st)
	if err := p.remove(ctx, "corp.example.com/a@v1.0.0"); err != nil { // generation 1, without a
		t.Fatal(err)
	}
	// The older replica's clock is 10 s behind: its purge after generation
	// 1 is stamped before it.
	putLegacy(`{"corp.example.com/a@v1.0.0": {"time": "` + old + `", "reason": "old"},
		"corp.example.com/d@v1.0.0": {"time": "` + stamp(-10*time.Second) + `", "reason": "purged by an older replica"}}`)
	if err := p.reload(ctx); err != nil {
		t.Fatal(err)
	}
	if got := slices.Sorted(maps.Keys(p.m)); !slices.Equal(got, []string{"corp.example.com/d@v1.0.0"}) || p.gen != 1 {
		t.Fatalf("marks after an older replica's purge: %v (generation %d), want only d's (1)", got, p.gen)
	}
	if err := p.change(ctx, func(m map[string]Mark) { m["corp.example.com/e@v1.0.0"] = Mark{Time: time.Now(), Reason: "e"} }); err != nil {
		t.Fatal(err)
	}
	if err := st.Delete(ctx, SharedPurgesKey); err != nil {
		t.Fatal(err)
	}
	m, err := ReadPurges(ctx, t.TempDir(), st)
	if err != nil {
		t.Fatal(err)
	}
	if got := slices.Sorted(maps.Keys(m)); !slices.Equal(got, []string{"corp.example.com/d@v1.0.0", "corp.example.com/e@v1.0.0"}) {
		t.Fatalf("generation 2 without the old document: %v, want d's mark carried over and e's", got)
	}
}

// staleMarks answers reads with a fixed generation (a listing that lags
// behind a write this process made).
type staleMarks struct {
	doc string
	gen int64
}

func (s staleMarks) read(context.Context) ([]byte, int64, error) { return []byte(s.doc), s.gen, nil }
func (s staleMarks) write(context.Context, int64, []byte) (int64, error) {
	return 0, errors.New("not written")
}

// TestPurgeReloadKeepsNewerGeneration: a reload that reads an older
// generation than the one held (read before this process's own change
// was visible) does not install it; the same or a newer one is installed.
func TestPurgeReloadKeepsNewerGeneration(t *testing.T) {
	ctx := context.Background()
	p := &purges{m: map[string]Mark{"corp.example.com/new@v1.0.0": {Reason: "held"}}, gen: 2}
	p.files = staleMarks{doc: `{"corp.example.com/old@v1.0.0": {"reason": "older"}}`, gen: 1}
	if err := p.reload(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok := p.get("corp.example.com/new@v1.0.0"); !ok || p.gen != 2 {
		t.Fatalf("an older generation replaced the one held: %v (generation %d)", p.m, p.gen)
	}
	p.files = staleMarks{doc: `{"corp.example.com/next@v1.0.0": {"reason": "newer"}}`, gen: 3}
	if err := p.reload(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok := p.get("corp.example.com/next@v1.0.0"); !ok || p.gen != 3 || len(p.m) != 1 {
		t.Fatalf("a newer generation not installed: %v (generation %d)", p.m, p.gen)
	}
}

// TestSharedPurgeMarksPruned: writers keep the latest generations and
// delete the older ones; a writer that read a generation since deleted,
// and so can create its successor again, is still refused with ErrRaced,
// and what it wrote is not read.
func TestSharedPurgeMarksPruned(t *testing.T) {
	ctx := context.Background()
	st, _ := segBucket(t)
	open := func() *purges { return openShared(t, st) }
	p := open()
	var stale *purges
	const n = keepGenerations + 4
	for i := 1; i <= n; i++ {
		if err := p.change(ctx, func(m map[string]Mark) {
			m[fmt.Sprintf("corp.example.com/m@v1.0.%d", i)] = Mark{Time: time.Now(), Reason: "r"}
		}); err != nil {
			t.Fatal(err)
		}
		if i == 2 {
			stale = open() // has read generation 2
		}
	}
	var gens []int64
	if err := (storeMarks{st}).walk(ctx, func(g int64, _ storage.Info) { gens = append(gens, g) }); err != nil {
		t.Fatal(err)
	}
	if want := keepGenerations; len(gens) != want || slices.Min(gens) != n-keepGenerations+1 || slices.Max(gens) != n {
		t.Fatalf("generations kept: %v, want the latest %d of %d", gens, want, n)
	}
	err := stale.change(ctx, func(m map[string]Mark) { m["corp.example.com/stale@v1.0.0"] = Mark{Reason: "stale"} })
	if !errors.Is(err, ErrRaced) {
		t.Fatalf("a change of a generation since deleted: %v, want ErrRaced", err)
	}
	m, err := ReadPurges(ctx, t.TempDir(), st)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := m["corp.example.com/stale@v1.0.0"]; ok || len(m) != n {
		t.Fatalf("marks read after the stale write: %d, stale one present %v; want the %d marks", len(m), ok, n)
	}
}
