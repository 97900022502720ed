package proxy_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/modproxy/modproxy/internal/checksum"
	"github.com/modproxy/modproxy/internal/proxy"
	storagefs "github.com/modproxy/modproxy/internal/storage/fs"
	"github.com/modproxy/modproxy/internal/upstream"
	"github.com/modproxy/modproxy/internal/upstream/proxyclient"
	"github.com/modproxy/modproxy/internal/upstream/upstreamtest"
)

// sumReads counts the checksum database requests in an upstream log by
// kind: "lookup", "tile" and "latest", and the most times one path was
// requested.
func sumReads(log []string) (kinds map[string]int, maxRepeat int) {
	kinds = map[string]int{}
	seen := map[string]int{}
	for _, p := range log {
		_, rest, ok := strings.Cut(p, "sumdb/")
		if !ok {
			continue
		}
		_, sub, _ := strings.Cut(rest, "/")
		kind, _, _ := strings.Cut(sub, "/")
		kinds[kind]++
		seen[p]++
		maxRepeat = max(maxRepeat, seen[p])
	}
	return kinds, maxRepeat
}

// coldFill fills n versions the way `go mod download` asks for them (every
// .mod first, then each version's .info and .zip) through a fresh service
// verifying against up's checksum database, and returns the upstream log.
func coldFill(t *testing.T, up *upstreamtest.Server, n int) []string {
	t.Helper()
	name, key := up.SumDB()
	dir := t.TempDir()
	store, err := storagefs.New(filepath.Join(dir, "cache"))
	if err != nil {
		t.Fatal(err)
	}
	sumClient, err := proxyclient.New(up.URL(), proxyclient.Options{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	var svc *proxy.Service
	v, err := checksum.New(checksum.Options{Key: key, StateDir: filepath.Join(dir, "state"),
		Remote: func(ctx context.Context, path string) ([]byte, error) { return svc.ReadSumDB(ctx, name, path) }})
	if err != nil {
		t.Fatal(err)
	}
	svc = newService(t, up, proxy.Options{Store: store, TempDir: store.TempDir(), Verifier: v,
		SumDB: map[string]upstream.Fetcher{name: sumClient}})
	up.ResetCounts()
	for _, exts := range [][]string{{"mod"}, {"info", "zip"}} {
		for i := range n {
			for _, ext := range exts {
				getOutcome(t, svc, fmt.Sprintf("example.com/m%d/@v/v1.0.0.%s", i, ext))
			}
		}
	}
	svc.Close()
	return up.Log()
}

func sumModules(n int) []upstreamtest.Module {
	var ms []upstreamtest.Module
	for i := range n {
		ms = append(ms, upstreamtest.Module{Path: fmt.Sprintf("example.com/m%d", i), Version: "v1.0.0",
			Files: map[string][]byte{"go.mod": fmt.Appendf(nil, "module example.com/m%d\n", i), "m.go": fmt.Appendf(nil, "package m%d\n", i)}})
	}
	return ms
}

// TestColdFillChecksumReads pins what verification costs upstream: one
// lookup per module version (its .mod and .zip share it, and the
// prefetch's reads coalesce with the verifications'), no /latest, no path
// read twice, and tiles only for new tree heads: with the database's tree
// unchanged during the fill, N versions cost one tile read (this small
// tree is one partial tile), and with a tree that grows at every lookup
// (each answer carries a new head), at most one per version.
func TestColdFillChecksumReads(t *testing.T) {
	const n = 8
	check := func(t *testing.T, log []string, maxTiles int) {
		t.Helper()
		kinds, rep := sumReads(log)
		if kinds["lookup"] != n || kinds["latest"] != 0 || kinds["tile"] < 1 || kinds["tile"] > maxTiles || rep != 1 {
			t.Errorf("checksum database reads for %d versions: %v, a path read up to %d times; want %d lookups, 1 to %d tiles, no latest, none twice",
				n, kinds, rep, n, maxTiles)
		}
	}
	t.Run("tree unchanged", func(t *testing.T) {
		up := upstreamtest.New(t, sumModules(n))
		coldFill(t, up, n) // records every version in the database
		check(t, coldFill(t, up, n), 1)
	})
	t.Run("tree growing", func(t *testing.T) {
		up := upstreamtest.New(t, sumModules(n))
		check(t, coldFill(t, up, n), n)
	})
}
