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
