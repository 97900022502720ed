package proxy_test

import (
	"context"
	"errors"
	iofs "io/fs"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modproxy/modproxy/internal/cachepolicy"
	"github.com/modproxy/modproxy/internal/errclass"
	"github.com/modproxy/modproxy/internal/proxy"
	storagefs "github.com/modproxy/modproxy/internal/storage/fs"
	"github.com/modproxy/modproxy/internal/upstream"
	"github.com/modproxy/modproxy/internal/upstream/proxyclient"
	"github.com/modproxy/modproxy/internal/upstream/upstreamtest"
)

// outage is a service whose upstream can fail in the ways an outage
// does: its primary, a fake upstream, answers 500, resets, hangs or is
// stopped; or it is skipped as a link whose circuit breaker is open, and
// the chain moves on to a fallback that knows no module (as "direct"
// does on a host that cannot reach the module's origin).
type outage struct {
	up    *upstreamtest.Server
	svc   *proxy.Service
	clock *clock
	open  atomic.Bool // the primary's breaker is open: it is skipped
}

var outagePolicy = cachepolicy.Policy{TTL: time.Minute, StaleWhileRevalidate: 10 * time.Minute, StaleIfError: time.Hour, NegativeTTL: time.Minute}

func newOutage(t *testing.T) *outage {
	t.Helper()
	o := &outage{up: upstreamtest.New(t, mods()), clock: &clock{t: time.Now()}}
	fallback := upstreamtest.New(t, nil, upstreamtest.WithoutSumDB())
	// A short header timeout: a hanging upstream fails in bounded time.
	copts := proxyclient.Options{Timeout: 5 * time.Second, HeaderTimeout: 200 * time.Millisecond}
	primary, err := proxyclient.New(o.up.URL(), copts)
	if err != nil {
		t.Fatal(err)
	}
	second, err := proxyclient.New(fallback.URL(), copts)
	if err != nil {
		t.Fatal(err)
	}
	store, err := storagefs.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	chain := &upstream.Chain{Links: []upstream.Link{{Fetcher: breaker{primary, &o.open}}, {Fetcher: second}}}
	o.svc = proxy.New(proxy.Options{Store: store, Upstream: chain, TempDir: store.TempDir(), Policy: outagePolicy, Now: o.clock.Now})
	t.Cleanup(o.svc.Close)
	return o
}

// breaker skips its fetcher while open is set, as upstream/resilient does
// when the breaker is open.
type breaker struct {
	f    upstream.Fetcher
	open *atomic.Bool
}

func (b breaker) Fetch(ctx context.Context, path string) (*upstream.Response, error) {
	if b.open.Load() {
		return nil, &upstream.Error{Upstream: "primary", Path: path, Msg: "circuit breaker open after repeated failures; skipped", BreakerOpen: true}
	}
	return b.f.Fetch(ctx, path)
}

// TestStaleIfErrorWhileUpstreamDown: a remembered @latest and @v/list past
// their TTL and stale-while-revalidate window, but within stale_if_error,
// are served stale (Warning 111, their age) whatever way the upstream
// fails; past stale_if_error the failure is the answer, as unavailable.
func TestStaleIfErrorWhileUpstreamDown(t *testing.T) {
	keys := []string{"example.com/a/@latest", "example.com/a/@v/list"}
	for _, tc := range []struct {
		name string
		down func(o *outage)
	}{
		{"500", func(o *outage) { o.up.SetFault("ALL", upstreamtest.Fault{Kind: upstreamtest.ServerError}) }},
		{"reset", func(o *outage) { o.up.SetFault("ALL", upstreamtest.Fault{Kind: upstreamtest.Reset}) }},
		{"hang", func(o *outage) { o.up.SetFault("ALL", upstreamtest.Fault{Kind: upstreamtest.Hang}) }},
		{"stopped", func(o *outage) { o.up.Stop() }},
		// Before: the fallback's "not found" was the answer; the stale
		// copies were dropped and remembered as missing.
		{"breaker open, fallback knows nothing", func(o *outage) { o.open.Store(true) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := newOutage(t)
			want := map[string]string{}
			for _, k := range keys {
				res, err := o.svc.Get(context.Background(), mustParse(t, k))
				if err != nil {
					t.Fatalf("%s while the upstream is up: %v", k, err)
				}
				want[k] = string(read(t, res))
			}
			tc.down(o)
			o.clock.Add(outagePolicy.TTL + outagePolicy.StaleWhileRevalidate + time.Minute)
			for _, k := range keys {
				res, err := o.svc.Get(context.Background(), mustParse(t, k))
				if err != nil {
					t.Fatalf("%s with the upstream down: %v (class %v); want the stale copy", k, err, errclass.Of(err))
				}
				if res.Outcome != proxy.Stale || !res.Stale || !strings.HasPrefix(res.Warning, "111 ") || res.Age < outagePolicy.TTL+outagePolicy.StaleWhileRevalidate {
					t.Errorf("%s: outcome %s, stale %v, warning %q, age %v; want stale, 111, the entry's age", k, res.Outcome, res.Stale, res.Warning, res.Age)
				}
				if got := string(read(t, res)); got != want[k] {
					t.Errorf("%s: served %q, want the remembered %q", k, got, want[k])
				}
			}
			// Past stale_if_error: the failure, never "not found".
			o.clock.Add(outagePolicy.StaleIfError)
			for _, k := range keys {
				res, err := o.svc.Get(context.Background(), mustParse(t, k))
				if err == nil {
					res.Close()
					t.Fatalf("%s: served a copy older than stale_if_error", k)
				}
				if c := errclass.Of(err); !c.Retry() || errors.Is(err, iofs.ErrNotExist) {
					t.Errorf("%s past stale_if_error: class %v (%v); want unavailable", k, c, err)
				}
			}
		})
	}
}

// TestRememberedNotFoundWhileUpstreamDown: a not-found is answered from
// the negative cache for negative_ttl without asking the upstream, up or
// down; after it, an upstream that cannot answer makes the answer
// "unavailable" (retry later), never "not found".
func TestRememberedNotFoundWhileUpstreamDown(t *testing.T) {
	const key = "example.com/missing/@v/list"
	for _, tc := range []struct {
		name string
		down func(o *outage)
	}{
		{"500", func(o *outage) { o.up.SetFault("ALL", upstreamtest.Fault{Kind: upstreamtest.ServerError}) }},
		// Before: the fallback's "not found" was remembered again.
		{"breaker open, fallback knows nothing", func(o *outage) { o.open.Store(true) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := newOutage(t)
			if _, err := o.svc.Get(context.Background(), mustParse(t, key)); errclass.Of(err) != errclass.NotExist {
				t.Fatalf("missing module: %v, want not found", err)
			}
			tc.down(o)
			before := o.up.Requests(key)
			o.clock.Add(outagePolicy.NegativeTTL / 2)
			_, err := o.svc.Get(context.Background(), mustParse(t, key))
			if errclass.Of(err) != errclass.NotExist || proxy.ErrorOutcome(err) != proxy.Negative {
				t.Errorf("within negative_ttl: %v (class %v, outcome %q); want the remembered not-found", err, errclass.Of(err), proxy.ErrorOutcome(err))
			}
			if n := o.up.Requests(key); n != before {
				t.Errorf("within negative_ttl the upstream was asked again (%d requests)", n-before)
			}
			o.clock.Add(outagePolicy.NegativeTTL)
			_, err = o.svc.Get(context.Background(), mustParse(t, key))
			if c := errclass.Of(err); !c.Retry() || errors.Is(err, iofs.ErrNotExist) || proxy.ErrorOutcome(err) != "" {
				t.Errorf("after negative_ttl, upstream down: %v (class %v); want unavailable", err, c)
			}
		})
	}
}
