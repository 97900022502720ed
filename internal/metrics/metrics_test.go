package metrics

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestEveryRecorderWorks calls every recording method, so a metric that is
// declared but not registered (nil) fails here rather than in production.
func TestEveryRecorderWorks(t *testing.T) {
	m := New()
	m.Request("zip", 200)
	m.Outcome("zip", "hit")
	m.FillStarted()
	m.FillDone()
	m.UpstreamError("timeout")
	m.Verification("ok")
	m.SecurityError()
	m.Quarantined()
	m.BreakerState("u", "open", true)
	m.UpstreamFetch("u", "ok", time.Millisecond)
	m.UpstreamRetry("u")
	m.Probe("u", true)
	m.Store(10, 2, 100)
	m.GCRun(true, false)
	m.GCEvicted("size-cap", 5)
	m.Trash(7)
	m.CoordFallback()
	if got := testutil.ToFloat64(m.storeBytes); got != 10 {
		t.Errorf("store bytes %v", got)
	}
	if got := testutil.ToFloat64(m.breakerState.WithLabelValues("u")); got != 2 {
		t.Errorf("breaker state %v", got)
	}
	n, err := testutil.GatherAndCount(m.reg)
	if err != nil || n < 16 {
		t.Errorf("gathered %d series, %v", n, err)
	}
	var nilM *Metrics
	nilM.Request("zip", 200) // nil is valid and records nothing
	if err := testutil.CollectAndCompare(m.gcRuns, strings.NewReader(`# HELP modproxy_gc_runs_total Garbage collection runs by result (ok, error) and mode (run, dry-run).
# TYPE modproxy_gc_runs_total counter
modproxy_gc_runs_total{mode="run",result="ok"} 1
`)); err != nil {
		t.Error(err)
	}
}

// TestKindCounters checks that KindCounters count into the same series as
// Request and Outcome, kept and looked-up statuses and outcomes alike,
// that nothing appears before it is counted, and that a kept series
// counts without allocating.
func TestKindCounters(t *testing.T) {
	m := New()
	k := m.Kind("mod")
	if n := testutil.CollectAndCount(m.requests) + testutil.CollectAndCount(m.outcomes); n != 0 {
		t.Errorf("%d series before any count, want 0", n)
	}
	k.Request(200)
	k.Request(200)
	m.Request("mod", 200)
	k.Request(404)
	k.Request(99) // outside the kept range: looked up
	k.Outcome("hit")
	m.Outcome("mod", "hit")
	k.Outcome("negative")
	k.Outcome("coalesced_cluster") // not kept: looked up
	if err := testutil.CollectAndCompare(m.requests, strings.NewReader(`# HELP modproxy_requests_total Protocol requests by artifact kind and HTTP status.
# TYPE modproxy_requests_total counter
modproxy_requests_total{code="200",kind="mod"} 3
modproxy_requests_total{code="404",kind="mod"} 1
modproxy_requests_total{code="99",kind="mod"} 1
`)); err != nil {
		t.Error(err)
	}
	if err := testutil.CollectAndCompare(m.outcomes, strings.NewReader(`# HELP modproxy_cache_outcomes_total Answers by artifact kind and cache outcome (hit, miss, coalesced, stale, negative).
# TYPE modproxy_cache_outcomes_total counter
modproxy_cache_outcomes_total{kind="mod",outcome="coalesced_cluster"} 1
modproxy_cache_outcomes_total{kind="mod",outcome="hit"} 2
modproxy_cache_outcomes_total{kind="mod",outcome="negative"} 1
`)); err != nil {
		t.Error(err)
	}
	if a := testing.AllocsPerRun(100, func() { k.Request(200); k.Outcome("hit") }); a != 0 {
		t.Errorf("%v allocations per count, want 0", a)
	}
	var nilK *KindCounters = (*Metrics)(nil).Kind("zip") // nil is valid and records nothing
	nilK.Request(200)
	nilK.Outcome("hit")
}
