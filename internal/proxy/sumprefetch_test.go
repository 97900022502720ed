package proxy_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modproxy/modproxy/internal/checksum"
	"github.com/modproxy/modproxy/internal/proxy"
	storagefs "github.com/modproxy/modproxy/internal/storage/fs"
	"github.com/modproxy/modproxy/internal/upstream"
	"github.com/modproxy/modproxy/internal/upstream/proxyclient"
	"github.com/modproxy/modproxy/internal/upstream/upstreamtest"
)

// blockingPrefetcher is a verifier whose prefetches block until released
// (or their context ends) and are counted.
type blockingPrefetcher struct {
	fakeVerifier
	started chan string   // module@version of each prefetch, as it starts
	release chan struct{} // closed to let prefetches finish
	mu      sync.Mutex
	ctxErrs []error // each prefetch's context error when it ended
}

func (p *blockingPrefetcher) Prefetch(ctx context.Context, path, version string) error {
	p.started <- path + "@" + version
	var err error
	select {
	case <-p.release:
	case <-ctx.Done():
		err = ctx.Err()
	}
	p.mu.Lock()
	p.ctxErrs = append(p.ctxErrs, err)
	p.mu.Unlock()
	return err
}

func newBlockingPrefetcher() *blockingPrefetcher {
	return &blockingPrefetcher{fakeVerifier: fakeVerifier{err: func(string, string, bool, string) error { return nil }},
		started: make(chan string, 16), release: make(chan struct{})}
}

func waitStarted(t *testing.T, p *blockingPrefetcher) string {
	t.Helper()
	select {
	case mv := <-p.started:
		return mv
	case <-time.After(10 * time.Second):
		t.Fatal("no checksum database prefetch started")
		return ""
	}
}

// TestSumPrefetchStartsOnFirstMiss: the .info miss of a version starts
// the checksum database prefetch (the .info itself is not verified and
// does not wait for it); the .mod and .zip misses while it is in flight
// start no other; Close cancels the prefetch in flight and waits for it.
func TestSumPrefetchStartsOnFirstMiss(t *testing.T) {
	p := newBlockingPrefetcher()
	f := newAdmissionFixture(t, p)
	ctx := context.Background()
	res, err := f.svc.Get(ctx, mustParse(t, "example.com/a/@v/v1.0.0.info"))
	if err != nil {
		t.Fatal(err)
	}
	read(t, res)
	if mv := waitStarted(t, p); mv != "example.com/a@v1.0.0" {
		t.Fatalf("prefetch of %s, want example.com/a@v1.0.0", mv)
	}
	for _, k := range []string{"example.com/a/@v/v1.0.0.mod", "example.com/a/@v/v1.0.0.zip"} {
		res, err := f.svc.Get(ctx, mustParse(t, k))
		if err != nil {
			t.Fatal(err)
		}
		read(t, res)
	}
	if n := len(p.started); n != 0 {
		t.Fatalf("%d more prefetches started for the version in flight, want none", n)
	}
	p.fakeVerifier.mu.Lock()
	verified := len(p.got)
	p.fakeVerifier.mu.Unlock()
	if verified != 2 {
		t.Fatalf("%d verifications, want the .mod's and the .zip's", verified)
	}
	f.svc.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.ctxErrs) != 1 || !errors.Is(p.ctxErrs[0], context.Canceled) {
		t.Fatalf("prefetch outcomes after Close %v, want one, cancelled", p.ctxErrs)
	}
}

// TestSumPrefetchNotForPrivate: a private module is never looked up, not
// even ahead of time.
func TestSumPrefetchNotForPrivate(t *testing.T) {
	p := newBlockingPrefetcher()
	up := upstreamtest.New(t, mods(), upstreamtest.WithoutSumDB())
	store, err := storagefs.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	svc := newService(t, up, proxy.Options{Store: store, TempDir: store.TempDir(), Verifier: p,
		Private: func(path string) bool { return path == "example.com/a" }})
	for _, k := range []string{"example.com/a/@v/v1.0.0.info", "example.com/a/@v/v1.0.0.mod"} {
		res, err := svc.Get(context.Background(), mustParse(t, k))
		if err != nil {
			t.Fatal(err)
		}
		read(t, res)
	}
	svc.Close()
	if n := len(p.started); n != 0 {
		t.Fatalf("%d prefetches for a private module, want none", n)
	}
}

// TestSumPrefetchCoalesces fills .info, .mod and .zip of several versions
// at once with real verification against the fake checksum database: every
// answer is verified and served, and no lookup or tile is fetched upstream
// twice (prefetches and verifications share the reads).
func TestSumPrefetchCoalesces(t *testing.T) {
	const n = 6
	var ms []upstreamtest.Module
	for i := range n {
		ms = append(ms, upstreamtest.Module{Path: fmt.Sprintf("example.com/m%d", i), Version: "v1.0.0",
			Files: map[string][]byte{"go.mod": fmt.Appendf(nil, "module example.com/m%d\n", i), "m.go": fmt.Appendf(nil, "package m%d\n", i)}})
	}
	up := upstreamtest.New(t, ms)
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
	// Slow module answers, so that prefetches and verifications overlap.
	up.SetFault("example.com/*/@v/*", upstreamtest.Fault{Kind: upstreamtest.Delay, Delay: 50 * time.Millisecond})
	svc = newService(t, up, proxy.Options{Store: store, TempDir: store.TempDir(), Verifier: v,
		SumDB: map[string]upstream.Fetcher{name: sumClient}})
	var wg sync.WaitGroup
	errs := make(chan error, 3*n)
	for i := range n {
		for _, ext := range []string{"info", "mod", "zip"} {
			wg.Go(func() {
				res, err := svc.Get(context.Background(), mustParse(t, fmt.Sprintf("example.com/m%d/@v/v1.0.0.%s", i, ext)))
				if err != nil {
					errs <- err
					return
				}
				if err := res.Close(); err != nil {
					errs <- err
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	svc.Close()
	seen := map[string]int{}
	for _, p := range up.Log() {
		if strings.HasPrefix(p, "sumdb/") {
			seen[p]++
		}
	}
	if len(seen) == 0 {
		t.Fatal("nothing was read from the checksum database")
	}
	for p, c := range seen {
		if c > 1 && !strings.HasSuffix(p, "/latest") {
			t.Errorf("%s fetched upstream %d times, want once", p, c)
		}
	}
}
