package clean

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"golang.org/x/mod/module"
)

func mustScanPlan(t *testing.T, modCache string, o Options) *Plan {
	t.Helper()
	inv, err := Scan(context.Background(), modCache)
	if err != nil {
		t.Fatal(err)
	}
	p, err := inv.Plan(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func targets(p *Plan) map[string]Action {
	out := map[string]Action{}
	for _, it := range p.Items {
		out[it.Target] = it.Action
	}
	return out
}

func readList(t *testing.T, modCache, modPath string) string {
	t.Helper()
	esc, err := module.EscapePath(modPath)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(modCache, "cache", "download", filepath.FromSlash(esc), "@v", "list"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// setAge sets the modification time of every file of m (download files and
// tree) to now-age.
func setAge(t *testing.T, modCache string, m module.Version, age time.Duration) {
	t.Helper()
	esc, _ := module.EscapePath(m.Path)
	ev, _ := module.EscapeVersion(m.Version)
	when := time.Now().Add(-age)
	paths, _ := filepath.Glob(filepath.Join(modCache, "cache", "download", filepath.FromSlash(esc), "@v", ev+".*"))
	paths = append(paths, filepath.Join(modCache, filepath.FromSlash(esc)+"@"+ev))
	for _, p := range paths {
		if _, err := os.Stat(p); err != nil {
			continue
		}
		if err := os.Chtimes(p, when, when); err != nil {
			t.Fatal(err)
		}
	}
}

func sortedKeys[M ~map[K]V, K ~string, V any](m M) []K {
	keys := make([]K, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
