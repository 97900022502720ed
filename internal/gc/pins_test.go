package gc_test

import (
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/modproxy/modproxy/internal/gc"
	"github.com/modproxy/modproxy/internal/index"
)

// memIndex is a metadata index in memory, for planning.
type memIndex map[string]index.Record

func (m memIndex) All(fn func(key string, r index.Record) error) error {
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if err := fn(k, m[k]); err != nil {
			return err
		}
	}
	return nil
}

func (memIndex) Deleted(string) {}
func (memIndex) Flush()         {}

// TestPinVersions: a pin "pattern@version" keeps that version only. Each
// case is built so that ignoring the @version part (pinning the whole
// module) would change the plan: keep-newest 2 evicts v1.0.0 and v1.1.0
// of both modules unless pinned.
func TestPinVersions(t *testing.T) {
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	idx := memIndex{}
	for _, mod := range []string{"example.com/m", "example.com/n"} {
		for _, v := range []string{"v1.0.0", "v1.1.0", "v1.2.0", "v1.3.0"} {
			for _, ext := range []string{".info", ".mod", ".zip"} {
				idx[mod+"/@v/"+v+ext] = index.Record{Size: 100, Stored: now.Add(-time.Hour), LastAccess: now.Add(-time.Hour)}
			}
		}
	}
	all := []string{"example.com/m@v1.0.0", "example.com/m@v1.1.0", "example.com/n@v1.0.0", "example.com/n@v1.1.0"}
	for _, tc := range []struct {
		name   string
		pins   []string
		evict  []string
		pinned int // PinnedKept
	}{
		{"no pins", nil, all, 0},
		{"an evicted version", []string{"example.com/m@v1.0.0"},
			[]string{"example.com/m@v1.1.0", "example.com/n@v1.0.0", "example.com/n@v1.1.0"}, 1},
		{"a version kept anyway", []string{"example.com/m@v1.3.0"}, all, 0},
		{"a version not stored", []string{"example.com/m@v9.9.9"}, all, 0},
		{"the whole module", []string{"example.com/m"}, []string{"example.com/n@v1.0.0", "example.com/n@v1.1.0"}, 2},
		{"a version of every module matching", []string{"example.com/*@v1.1.0"},
			[]string{"example.com/m@v1.0.0", "example.com/n@v1.0.0"}, 2},
		{"a version under a path prefix", []string{"example.com@v1.0.0"},
			[]string{"example.com/m@v1.1.0", "example.com/n@v1.1.0"}, 2},
		{"another module's version", []string{"example.com/other@v1.0.0"}, all, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			plan, err := gc.MakePlan(idx, gc.Policy{KeepNewest: 2, Pins: tc.pins}, now)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, it := range plan.Items {
				got = append(got, it.Module+"@"+it.Version)
			}
			slices.Sort(got)
			if !slices.Equal(got, tc.evict) {
				t.Errorf("pins %q: plan evicts %q, want %q", tc.pins, got, tc.evict)
			}
			if plan.PinnedKept != tc.pinned {
				t.Errorf("pins %q: PinnedKept = %d, want %d", tc.pins, plan.PinnedKept, tc.pinned)
			}
		})
	}
}
