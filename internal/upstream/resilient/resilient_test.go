package resilient_test

import (
	"context"
	"errors"
	"io"
	iofs "io/fs"
	"testing"
	"time"

	"github.com/modproxy/modproxy/internal/upstream"
	"github.com/modproxy/modproxy/internal/upstream/proxyclient"
	"github.com/modproxy/modproxy/internal/upstream/resilient"
	"github.com/modproxy/modproxy/internal/upstream/upstreamtest"
)

var mods = []upstreamtest.Module{{Path: "example.com/a", Version: "v1.0.0", Files: map[string][]byte{"a.go": []byte("package a\n")}}}

func newFetcher(t *testing.T, up *upstreamtest.Server, opts resilient.Options) *resilient.Fetcher {
	t.Helper()
	c, err := proxyclient.New(up.URL(), proxyclient.Options{Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if opts.BackoffBase == 0 {
		opts.BackoffBase = time.Millisecond
		opts.BackoffMax = 5 * time.Millisecond
	}
	return resilient.New(up.URL(), c, opts)
}

func fetch(t *testing.T, f upstream.Fetcher, path string) error {
	t.Helper()
	resp, err := f.Fetch(context.Background(), path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		t.Fatalf("reading %s: %v", path, err)
	}
	return resp.Body.Close()
}

const list = "example.com/a/@v/list"

func TestRetriesTransientFailures(t *testing.T) {
	up := upstreamtest.New(t, mods, upstreamtest.WithoutSumDB())
	f := newFetcher(t, up, resilient.Options{})
	up.SetFault(list, upstreamtest.Fault{Kind: upstreamtest.ServerError, Times: 2})
	if err := fetch(t, f, list); err != nil {
		t.Fatalf("fetch after 2 transient failures: %v", err)
	}
	if n := up.Requests(list); n != 3 {
		t.Errorf("upstream saw %d requests, want 3", n)
	}
	// A reset in the middle of a body is an attempt's failure: retried.
	for _, p := range []string{"example.com/a/@v/v1.0.0.info", "example.com/a/@v/v1.0.0.zip"} {
		up.ResetCounts()
		up.SetFault(p, upstreamtest.Fault{Kind: upstreamtest.Reset, Times: 1})
		if err := fetch(t, f, p); err != nil {
			t.Errorf("%s after a reset mid-body: %v", p, err)
		}
		if n := up.Requests(p); n != 2 {
			t.Errorf("%s: upstream saw %d requests, want 2", p, n)
		}
	}
}

func TestNeverRetriesNotFoundOrForbidden(t *testing.T) {
	up := upstreamtest.New(t, mods, upstreamtest.WithoutSumDB())
	f := newFetcher(t, up, resilient.Options{})
	if err := fetch(t, f, "example.com/missing/@v/list"); !errors.Is(err, iofs.ErrNotExist) {
		t.Fatalf("err = %v, want not found", err)
	}
	up.SetFault(list, upstreamtest.Fault{Kind: upstreamtest.Status, Code: 403})
	if err := fetch(t, f, list); err == nil {
		t.Fatal("403 succeeded")
	}
	if n := up.Total(); n != 2 {
		t.Errorf("upstream saw %d requests, want 2 (no retries)", n)
	}
	if f.State() != "closed" {
		t.Errorf("breaker %s after non-transient failures, want closed", f.State())
	}
}

func TestBreakerOpensAndProbeCloses(t *testing.T) {
	up := upstreamtest.New(t, mods, upstreamtest.WithoutSumDB())
	f := newFetcher(t, up, resilient.Options{MinRequests: 2, FailureRate: 1, OpenDelay: time.Hour})
	up.SetFault("ALL", upstreamtest.Fault{Kind: upstreamtest.ServerError})
	for range 2 {
		if err := fetch(t, f, list); err == nil {
			t.Fatal("want error")
		}
	}
	if f.State() != "open" {
		t.Fatalf("breaker %s after 2 failed requests, want open", f.State())
	}
	before := up.Total()
	start := time.Now()
	err := fetch(t, f, list)
	var ue *upstream.Error
	if !errors.As(err, &ue) || !ue.BreakerOpen {
		t.Fatalf("err = %v, want breaker-open error", err)
	}
	if up.Total() != before {
		t.Error("an open breaker let a request through")
	}
	if d := time.Since(start); d > 100*time.Millisecond {
		t.Logf("open-breaker fetch took %v", d)
	}
	// A probe against the still-failing upstream keeps it open.
	if err := f.Probe(context.Background(), "sumdb/sum.example/supported"); err == nil || f.State() != "open" {
		t.Fatalf("probe of a failing upstream: %v, state %s", err, f.State())
	}
	up.ClearFaults()
	if err := f.Probe(context.Background(), "sumdb/sum.example/supported"); err != nil {
		t.Fatalf("probe of a healed upstream (404 counts as an answer): %v", err)
	}
	if f.State() != "closed" {
		t.Fatalf("breaker %s after a successful probe, want closed", f.State())
	}
	if err := fetch(t, f, list); err != nil {
		t.Fatal(err)
	}
}

func TestProbeFailuresOpenBreakerBeforeUsersHitIt(t *testing.T) {
	up := upstreamtest.New(t, mods, upstreamtest.WithoutSumDB())
	f := newFetcher(t, up, resilient.Options{ProbeFailures: 3, OpenDelay: time.Hour})
	up.Stop()
	for range 2 {
		_ = f.Probe(context.Background(), "sumdb/sum.example/supported")
	}
	if f.State() != "closed" {
		t.Fatalf("breaker %s after 2 failed probes, want closed", f.State())
	}
	_ = f.Probe(context.Background(), "sumdb/x/supported")
	if f.State() != "open" {
		t.Fatalf("breaker %s after 3 failed probes, want open", f.State())
	}
}

func TestChainSkipsOpenBreaker(t *testing.T) {
	primary := upstreamtest.New(t, mods, upstreamtest.WithoutSumDB())
	secondary := upstreamtest.New(t, mods, upstreamtest.WithoutSumDB())
	p := newFetcher(t, primary, resilient.Options{MinRequests: 1, FailureRate: 1, OpenDelay: time.Hour, MaxAttempts: 1})
	s := newFetcher(t, secondary, resilient.Options{})
	chain := &upstream.Chain{Links: []upstream.Link{{Fetcher: p}, {Fetcher: s}}} // "," semantics
	primary.Stop()
	// With ",", a refused connection stops the chain (as the go command does)...
	if err := fetch(t, chain, list); err == nil {
		t.Fatal("',' chain moved past a connection error")
	}
	// ...but once the breaker is open, the primary is skipped.
	if err := fetch(t, chain, list); err != nil {
		t.Fatalf("chain with an open primary: %v", err)
	}
	if secondary.Requests(list) != 1 {
		t.Errorf("secondary saw %d requests, want 1", secondary.Requests(list))
	}
}
