package proxy_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	iofs "io/fs"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modproxy/modproxy/internal/artifact"
	"github.com/modproxy/modproxy/internal/cachepolicy"
	"github.com/modproxy/modproxy/internal/proxy"
	storagefs "github.com/modproxy/modproxy/internal/storage/fs"
	"github.com/modproxy/modproxy/internal/upstream"
	"github.com/modproxy/modproxy/internal/upstream/proxyclient"
	"github.com/modproxy/modproxy/internal/upstream/upstreamtest"
)

func mods() []upstreamtest.Module {
	big := bytes.Repeat([]byte("// padding so that the zip takes a while to drip\n"), 4000)
	return []upstreamtest.Module{
		{Path: "example.com/a", Version: "v1.0.0", Files: map[string][]byte{"go.mod": []byte("module example.com/a\n\ngo 1.21\n"), "a.go": []byte("package a\n"), "big.go": big}},
		{Path: "example.com/a", Version: "v1.1.0", Files: map[string][]byte{"go.mod": []byte("module example.com/a\n\ngo 1.21\n"), "a.go": []byte("package a\n// v1.1.0\n")}},
	}
}

// clock is a settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type fixture struct {
	up    *upstreamtest.Server
	svc   *proxy.Service
	clock *clock
}

func newFixture(t *testing.T, policy cachepolicy.Policy, opts ...func(*proxy.Options)) *fixture {
	t.Helper()
	up := upstreamtest.New(t, mods())
	client, err := proxyclient.New(up.URL(), proxyclient.Options{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	store, err := storagefs.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	c := &clock{t: time.Now()}
	o := proxy.Options{
		Store:    store,
		Upstream: &upstream.Chain{Links: []upstream.Link{{Fetcher: client}}},
		TempDir:  store.TempDir(),
		Policy:   policy,
		Now:      c.Now,
	}
	for _, opt := range opts {
		opt(&o)
	}
	svc := proxy.New(o)
	t.Cleanup(svc.Close)
	return &fixture{up: up, svc: svc, clock: c}
}

func mustParse(t *testing.T, p string) artifact.Request {
	t.Helper()
	r, err := artifact.Parse(p)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func read(t *testing.T, res *proxy.Result) []byte {
	t.Helper()
	defer res.Close()
	b, err := io.ReadAll(res.Object)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestCoalescing(t *testing.T) {
	f := newFixture(t, cachepolicy.Default())
	const key = "example.com/a/@v/v1.0.0.zip"
	f.up.SetFault(key, upstreamtest.Fault{Kind: upstreamtest.SlowBody, Chunk: 16 << 10, Delay: 20 * time.Millisecond})
	want := f.up.ZipBytes("example.com/a", "v1.0.0")
	req := mustParse(t, key)
	var wg sync.WaitGroup
	var misses, coalesced atomic.Int32
	errs := make(chan error, 50)
	for range 50 {
		wg.Go(func() {
			res, err := f.svc.Get(context.Background(), req)
			if err != nil {
				errs <- err
				return
			}
			switch res.Outcome {
			case proxy.Miss:
				misses.Add(1)
			case proxy.Coalesced:
				coalesced.Add(1)
			}
			defer res.Close()
			got, err := io.ReadAll(res.Object)
			if err != nil {
				errs <- err
				return
			}
			if !bytes.Equal(got, want) {
				errs <- errors.New("client got different bytes")
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := f.up.Requests(key); n != 1 {
		t.Errorf("upstream got %d requests for the zip, want 1", n)
	}
	// Exactly one request fetched; the others joined it (or, if they
	// started after it finished, hit the cache).
	if misses.Load() != 1 {
		t.Errorf("outcomes: %d miss, %d coalesced; want exactly 1 miss", misses.Load(), coalesced.Load())
	}
	// Later requests are hits.
	res, err := f.svc.Get(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if res.Outcome != proxy.Hit {
		t.Errorf("outcome after fill = %s, want hit", res.Outcome)
	}
	if !bytes.Equal(read(t, res), want) {
		t.Error("hit served different bytes")
	}
}

func TestFillSurvivesClientDisconnect(t *testing.T) {
	f := newFixture(t, cachepolicy.Default())
	const key = "example.com/a/@v/v1.0.0.zip"
	f.up.SetFault(key, upstreamtest.Fault{Kind: upstreamtest.Delay, Delay: 300 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := f.svc.Get(ctx, mustParse(t, key)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Get with short deadline = %v, want deadline exceeded", err)
	}
	// The fill continues; the next request joins it or hits.
	res, err := f.svc.Get(context.Background(), mustParse(t, key))
	if err != nil {
		t.Fatal(err)
	}
	if got := read(t, res); !bytes.Equal(got, f.up.ZipBytes("example.com/a", "v1.0.0")) {
		t.Error("wrong bytes")
	}
	if n := f.up.Requests(key); n != 1 {
		t.Errorf("upstream got %d requests, want 1", n)
	}
}

func TestInvalidAnswersAreNotStored(t *testing.T) {
	for _, tc := range []struct {
		name  string
		key   string
		fault upstreamtest.Fault
	}{
		{"wrong version info", "example.com/a/@v/v1.0.0.info", upstreamtest.Fault{Kind: upstreamtest.WrongVersion}},
		{"wrong version zip", "example.com/a/@v/v1.0.0.zip", upstreamtest.Fault{Kind: upstreamtest.WrongVersion}},
		{"corrupt zip", "example.com/a/@v/v1.0.0.zip", upstreamtest.Fault{Kind: upstreamtest.CorruptZip}},
		{"reset mid zip", "example.com/a/@v/v1.0.0.zip", upstreamtest.Fault{Kind: upstreamtest.Reset}},
		{"server error", "example.com/a/@v/v1.0.0.mod", upstreamtest.Fault{Kind: upstreamtest.ServerError}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, cachepolicy.Default())
			f.up.SetFault(tc.key, tc.fault)
			req := mustParse(t, tc.key)
			if res, err := f.svc.Get(context.Background(), req); err == nil {
				res.Close()
				t.Fatal("Get succeeded on a bad upstream answer")
			} else if errors.Is(err, iofs.ErrNotExist) {
				t.Fatalf("bad answer reported as not found: %v", err)
			}
			// Healed upstream: the next request fetches again and succeeds.
			f.up.ClearFaults()
			res, err := f.svc.Get(context.Background(), req)
			if err != nil {
				t.Fatalf("after healing: %v", err)
			}
			if res.Outcome != proxy.Miss {
				t.Errorf("outcome = %s, want miss (nothing was stored)", res.Outcome)
			}
			res.Close()
			if n := f.up.Requests(tc.key); n < 2 {
				t.Errorf("upstream requests = %d, want a refetch", n)
			}
		})
	}
}

func TestNegativeCache(t *testing.T) {
	f := newFixture(t, cachepolicy.Default())
	const key = "example.com/missing/@v/list"
	for range 3 {
		if _, err := f.svc.Get(context.Background(), mustParse(t, key)); !errors.Is(err, iofs.ErrNotExist) {
			t.Fatalf("Get = %v, want not found", err)
		}
	}
	if n := f.up.Requests(key); n != 1 {
		t.Errorf("upstream requests = %d, want 1 (negative cache)", n)
	}
	f.clock.Add(2 * time.Minute)
	if _, err := f.svc.Get(context.Background(), mustParse(t, key)); !errors.Is(err, iofs.ErrNotExist) {
		t.Fatalf("Get after negative TTL = %v, want not found", err)
	}
	if n := f.up.Requests(key); n != 2 {
		t.Errorf("upstream requests after negative TTL = %d, want 2", n)
	}
	// 5xx is never cached.
	f.up.SetFault("example.com/a/@v/list", upstreamtest.Fault{Kind: upstreamtest.ServerError, Times: 1})
	if _, err := f.svc.Get(context.Background(), mustParse(t, "example.com/a/@v/list")); err == nil {
		t.Fatal("want error")
	}
	res, err := f.svc.Get(context.Background(), mustParse(t, "example.com/a/@v/list"))
	if err != nil {
		t.Fatalf("5xx was cached: %v", err)
	}
	res.Close()
}

func TestMutableFreshness(t *testing.T) {
	p := cachepolicy.Policy{TTL: time.Minute, StaleWhileRevalidate: 10 * time.Minute, StaleIfError: time.Hour, NegativeTTL: time.Minute}
	f := newFixture(t, p)
	const key = "example.com/a/@v/list"
	req := mustParse(t, key)
	get := func() *proxy.Result {
		t.Helper()
		res, err := f.svc.Get(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	if res := get(); res.Outcome != proxy.Miss || string(read(t, res)) != "v1.0.0\nv1.1.0\n" {
		t.Fatal("first get not a miss with the list")
	}
	f.clock.Add(30 * time.Second)
	if res := get(); res.Outcome != proxy.Hit {
		t.Fatalf("fresh: outcome %s", res.Outcome)
	} else {
		res.Close()
	}
	if n := f.up.Requests(key); n != 1 {
		t.Fatalf("fresh entry went upstream: %d", n)
	}
	// A new version appears upstream; past the TTL the stale list is served
	// and refreshed in the background.
	f.up.Add(upstreamtest.Module{Path: "example.com/a", Version: "v1.2.0", Files: map[string][]byte{"a.go": []byte("package a\n")}})
	f.clock.Add(time.Minute)
	res := get()
	if res.Outcome != proxy.Stale || !res.Stale || res.Warning == "" || res.Age < time.Minute {
		t.Fatalf("revalidate: %+v", res)
	}
	res.Close()
	waitFor(t, func() bool { return f.up.Requests(key) == 2 })
	waitFor(t, func() bool {
		return string(read(t, get())) == "v1.0.0\nv1.1.0\nv1.2.0\n"
	})
	// Upstream down, entry past TTL+SWR but within stale-if-error: served stale.
	f.up.Stop()
	f.clock.Add(20 * time.Minute)
	res = get()
	if res.Outcome == proxy.Coalesced {
		// It joined a revalidation that the polling above started before
		// Stop and that still got its answer; the next fill cannot.
		if got := string(read(t, res)); got != "v1.0.0\nv1.1.0\nv1.2.0\n" {
			t.Fatalf("coalesced content %q", got)
		}
		res = get()
	}
	if res.Outcome != proxy.Stale || res.Warning == "" {
		t.Fatalf("stale-if-error: %+v", res)
	}
	if got := string(read(t, res)); got != "v1.0.0\nv1.1.0\nv1.2.0\n" {
		t.Fatalf("stale content %q", got)
	}
	// Beyond stale-if-error: the error surfaces.
	f.clock.Add(2 * time.Hour)
	if res, err := f.svc.Get(context.Background(), req); err == nil {
		res.Close()
		t.Fatal("served content older than stale_if_error")
	}
	// Immutable entries never expire and never go upstream again.
	f.up.Start()
	zreq := mustParse(t, "example.com/a/@v/v1.1.0.mod")
	if res, err := f.svc.Get(context.Background(), zreq); err != nil {
		t.Fatal(err)
	} else {
		res.Close()
	}
	f.up.Stop()
	f.clock.Add(365 * 24 * time.Hour)
	res, err := f.svc.Get(context.Background(), zreq)
	if err != nil || res.Outcome != proxy.Hit {
		t.Fatalf("immutable after a year with upstream down: %v", err)
	}
	res.Close()
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestNoFillAfterClose: once Close has begun, a miss fails cleanly
// instead of starting a fill that Close would not wait for.
func TestNoFillAfterClose(t *testing.T) {
	f := newFixture(t, cachepolicy.Default())
	if res, err := f.svc.Get(context.Background(), mustParse(t, "example.com/a/@v/v1.0.0.mod")); err != nil {
		t.Fatal(err)
	} else {
		res.Close()
	}
	f.svc.Close()
	if _, err := f.svc.Get(context.Background(), mustParse(t, "example.com/a/@v/v1.1.0.mod")); err == nil {
		t.Fatal("a fill started after Close")
	}
	if n := f.up.Requests("example.com/a/@v/v1.1.0.mod"); n != 0 {
		t.Errorf("upstream saw %d requests after Close", n)
	}
	// Hits still work.
	res, err := f.svc.Get(context.Background(), mustParse(t, "example.com/a/@v/v1.0.0.mod"))
	if err != nil {
		t.Fatalf("hit after Close: %v", err)
	}
	res.Close()
}
