package metrics

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestKindCounters checks that KindCounters count into the same series as
// Request and Outcome, kept and looked-up statuses and outcomes alike,
// that nothing appears before it is counted, and that a kept series
// counts without allocating.
func TestKindCounters(t *testing.T) {
	m := New()
	k := NewKindCounters(m, "mod")
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
	nilK := NewKindCounters(nil, "zip") // nil is valid and records nothing
	nilK.Request(200)
	nilK.Outcome("hit")
}
