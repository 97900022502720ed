package artifact

import (
	"fmt"
	"sync"
	"testing"
)

// TestParseCache checks that the cache answers what Parse answers, for
// paths seen before and new ones, more paths than it has slots (so that
// slots are shared and replaced), and invalid paths (never kept).
func TestParseCache(t *testing.T) {
	c := NewParseCache()
	var paths []string
	for i := range 3 * parseCacheSlots {
		paths = append(paths, fmt.Sprintf("example.com/m%d/@v/v1.%d.0.%s", i%500, i, []string{"info", "mod", "zip"}[i%3]))
	}
	paths = append(paths, "example.com/a/@v/list", "example.com/a/@latest", "example.com/a/@v/master.info",
		"github.com/!burnt!sushi/toml/@v/v1.3.2.zip", "example.com/a/@v/v1.0.0+incompatible.mod",
		"example.com/a/v2/@v/v1.0.0.info", "../x/@v/list", "example.com/A/@v/v1.0.0.info", "example.com/a/@v/v1.0.info")
	for round := range 3 {
		for _, p := range paths {
			want, werr := Parse(p)
			got, gerr := c.Parse(p)
			if got != want || (gerr == nil) != (werr == nil) || (gerr != nil && gerr.Error() != werr.Error()) {
				t.Fatalf("round %d, %q: cache %+v, %v; Parse %+v, %v", round, p, got, gerr, want, werr)
			}
		}
	}
}

// TestParseCacheHitAllocations asserts that a remembered path is answered
// without allocating.
func TestParseCacheHitAllocations(t *testing.T) {
	c := NewParseCache()
	const p = "github.com/!burnt!sushi/toml/@v/v1.3.2.info"
	if _, err := c.Parse(p); err != nil {
		t.Fatal(err)
	}
	if a := testing.AllocsPerRun(100, func() { _, _ = c.Parse(p) }); a != 0 {
		t.Errorf("%v allocations per remembered parse, want 0", a)
	}
}

// TestParseCacheConcurrent parses from many goroutines at once (run with
// -race), paths sharing slots.
func TestParseCacheConcurrent(t *testing.T) {
	c := NewParseCache()
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 2000 {
				p := fmt.Sprintf("example.com/m/@v/v1.0.%d.mod", (i*7+g)%(parseCacheSlots+100))
				got, err := c.Parse(p)
				if err != nil || got.Key != p || got.Kind != Mod {
					t.Errorf("%q: %+v, %v", p, got, err)
					return
				}
			}
		})
	}
	wg.Wait()
}

func BenchmarkParse(b *testing.B) {
	const p = "github.com/!burnt!sushi/toml/@v/v1.3.2.info"
	b.Run("Parse", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = Parse(p)
		}
	})
	b.Run("ParseCache", func(b *testing.B) {
		c := NewParseCache()
		b.ReportAllocs()
		for b.Loop() {
			_, _ = c.Parse(p)
		}
	})
}
