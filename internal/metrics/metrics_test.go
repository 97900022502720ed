package metrics

import (
	"bufio"
	"maps"
	"net/http/httptest"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// scrape returns every modproxy_ sample the handler exposes, as
// "name{labels}" -> value.
func scrape(t *testing.T, m *Metrics) map[string]float64 {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 200 {
		t.Fatalf("scrape: status %d", rec.Code)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(rec.Body)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "modproxy_") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("scrape: %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// diff returns the samples of after that are new or changed since before.
func diff(before, after map[string]float64) map[string]float64 {
	d := map[string]float64{}
	for k, v := range after {
		if old, ok := before[k]; !ok || old != v {
			d[k] = v
		}
	}
	return d
}

// TestEveryRecorder calls each recording method and checks that exactly
// the samples it should change changed, to the right values (a recorder
// that writes another metric, the wrong labels, or nothing, fails). Every
// exported method of Metrics must be in the table.
func TestEveryRecorder(t *testing.T) {
	m := New()
	steps := []struct {
		method string
		call   func()
		want   map[string]float64
	}{
		{"Request", func() { m.Request("zip", 200) }, map[string]float64{`modproxy_requests_total{code="200",kind="zip"}`: 1}},
		{"Request", func() { m.Request("zip", 200) }, map[string]float64{`modproxy_requests_total{code="200",kind="zip"}`: 2}},
		{"Outcome", func() { m.Outcome("mod", "hit") }, map[string]float64{`modproxy_cache_outcomes_total{kind="mod",outcome="hit"}`: 1}},
		{"FillStarted", m.FillStarted, map[string]float64{`modproxy_fills_in_flight`: 1}},
		{"FillDone", m.FillDone, map[string]float64{`modproxy_fills_in_flight`: 0}},
		{"UpstreamError", func() { m.UpstreamError("timeout") }, map[string]float64{`modproxy_upstream_errors_total{class="timeout"}`: 1}},
		{"StoreFull", func() { m.StoreFull("zip") }, map[string]float64{`modproxy_store_full_total{kind="zip"}`: 1}},
		{"Verification", func() { m.Verification("mismatch") }, map[string]float64{`modproxy_checksum_verifications_total{result="mismatch"}`: 1}},
		{"SecurityError", m.SecurityError, map[string]float64{`modproxy_checksum_security_errors_total`: 1}},
		{"Quarantined", m.Quarantined, map[string]float64{`modproxy_quarantined_total`: 1}},
		{"BreakerState", func() { m.BreakerState("u", "open", true) }, map[string]float64{
			`modproxy_upstream_breaker_state{upstream="u"}`:                          2,
			`modproxy_upstream_breaker_transitions_total{state="open",upstream="u"}`: 1,
		}},
		{"BreakerState", func() { m.BreakerState("u", "half-open", false) }, map[string]float64{`modproxy_upstream_breaker_state{upstream="u"}`: 1}},
		{"BreakerState", func() { m.BreakerState("u", "closed", true) }, map[string]float64{
			`modproxy_upstream_breaker_state{upstream="u"}`:                            0,
			`modproxy_upstream_breaker_transitions_total{state="closed",upstream="u"}`: 1,
		}},
		{"UpstreamFetch", func() { m.UpstreamFetch("u", "ok", 1500*time.Millisecond) }, map[string]float64{
			`modproxy_upstream_fetch_seconds_count{result="ok",upstream="u"}`: 1,
			`modproxy_upstream_fetch_seconds_sum{result="ok",upstream="u"}`:   1.5,
			// buckets at and above 1.5 s count it
			`modproxy_upstream_fetch_seconds_bucket{result="ok",upstream="u",le="2.5"}`:  1,
			`modproxy_upstream_fetch_seconds_bucket{result="ok",upstream="u",le="5"}`:    1,
			`modproxy_upstream_fetch_seconds_bucket{result="ok",upstream="u",le="10"}`:   1,
			`modproxy_upstream_fetch_seconds_bucket{result="ok",upstream="u",le="30"}`:   1,
			`modproxy_upstream_fetch_seconds_bucket{result="ok",upstream="u",le="60"}`:   1,
			`modproxy_upstream_fetch_seconds_bucket{result="ok",upstream="u",le="+Inf"}`: 1,
			// and those below are new series at 0
			`modproxy_upstream_fetch_seconds_bucket{result="ok",upstream="u",le="0.005"}`: 0,
			`modproxy_upstream_fetch_seconds_bucket{result="ok",upstream="u",le="0.01"}`:  0,
			`modproxy_upstream_fetch_seconds_bucket{result="ok",upstream="u",le="0.025"}`: 0,
			`modproxy_upstream_fetch_seconds_bucket{result="ok",upstream="u",le="0.05"}`:  0,
			`modproxy_upstream_fetch_seconds_bucket{result="ok",upstream="u",le="0.1"}`:   0,
			`modproxy_upstream_fetch_seconds_bucket{result="ok",upstream="u",le="0.25"}`:  0,
			`modproxy_upstream_fetch_seconds_bucket{result="ok",upstream="u",le="0.5"}`:   0,
			`modproxy_upstream_fetch_seconds_bucket{result="ok",upstream="u",le="1"}`:     0,
		}},
		{"UpstreamRetry", func() { m.UpstreamRetry("u") }, map[string]float64{`modproxy_upstream_retries_total{upstream="u"}`: 1}},
		{"Probe", func() { m.Probe("u", true) }, map[string]float64{`modproxy_upstream_probes_total{result="ok",upstream="u"}`: 1}},
		{"Probe", func() { m.Probe("u", false) }, map[string]float64{`modproxy_upstream_probes_total{result="fail",upstream="u"}`: 1}},
		{"Store", func() { m.Store(10, 2, 100) }, map[string]float64{
			`modproxy_store_bytes`: 10, `modproxy_store_objects`: 2, `modproxy_store_cap_bytes`: 100,
		}},
		{"GCRun", func() { m.GCRun(true, false) }, map[string]float64{`modproxy_gc_runs_total{mode="run",result="ok"}`: 1}},
		{"GCRun", func() { m.GCRun(false, true) }, map[string]float64{`modproxy_gc_runs_total{mode="dry-run",result="error"}`: 1}},
		{"GCEvicted", func() { m.GCEvicted("size-cap", 5) }, map[string]float64{`modproxy_gc_evicted_bytes_total{policy="size-cap"}`: 5}},
		{"GCEvicted", func() { m.GCEvicted("size-cap", 7) }, map[string]float64{`modproxy_gc_evicted_bytes_total{policy="size-cap"}`: 12}},
		{"Trash", func() { m.Trash(7) }, map[string]float64{`modproxy_trash_bytes`: 7}},
		{"FreeSpace", func() { m.FreeSpace(5<<30, 1<<30) }, map[string]float64{
			`modproxy_cache_free_bytes`: 5 << 30, `modproxy_cache_min_free_bytes`: 1 << 30,
		}},
		{"BuildInfo", func() { m.BuildInfo("v9.9.9", "abc123") }, map[string]float64{
			`modproxy_build_info{goversion="` + goVersion + `",revision="abc123",version="v9.9.9"}`: 1,
		}},
		{"RequestTimer", func() { m.RequestTimer("zip", "hit").Observe(3 * time.Millisecond) },
			histogram(`modproxy_request_duration_seconds`, `kind="zip",outcome="hit"`, requestBuckets, 0.003)},
		{"PresetProtocol", func() { m.PresetProtocol([]string{"zip"}, []string{"hit", "miss"}, []int{200, 502}) }, map[string]float64{
			`modproxy_cache_outcomes_total{kind="zip",outcome="hit"}`:  0,
			`modproxy_cache_outcomes_total{kind="zip",outcome="miss"}`: 0,
			`modproxy_requests_total{code="502",kind="zip"}`:           0, // code 200 of zip exists already
		}},
		{"PresetUpstream", func() { m.PresetUpstream("v") }, presetUpstream("v")},
		{"StoreFuncs", func() { m.StoreFuncs(func() (int64, int64) { return 42, 3 }, func() int64 { return 9 }) }, map[string]float64{
			`modproxy_store_bytes`: 42, `modproxy_store_objects`: 3, `modproxy_trash_bytes`: 9,
		}},
		{"CoordFallback", m.CoordFallback, map[string]float64{`modproxy_coordination_fallbacks_total`: 1}},
		{"ToolchainFetch", func() { m.ToolchainFetch("archive", "mismatch") }, map[string]float64{`modproxy_toolchain_fetches_total{result="mismatch",what="archive"}`: 1}},
		{"ToolchainBytes", func() { m.ToolchainBytes(70 << 20) }, map[string]float64{`modproxy_toolchain_fetched_bytes_total`: 70 << 20}},
		{"ToolchainMismatch", m.ToolchainMismatch, map[string]float64{`modproxy_toolchain_verification_failures_total`: 1}},
		{"PolicyDecision", func() { m.PolicyDecision("prod", "cooldown", "block") }, map[string]float64{
			`modproxy_policy_decisions_total{action="block",namespace="prod",reason="cooldown"}`: 1,
		}},
		{"PresetPolicy", func() { m.PresetPolicy("dev") }, presetPolicy("dev")},
		{"PresetWebhook", func() { m.PresetWebhook("w") }, map[string]float64{
			`modproxy_webhook_deliveries_total{result="ok",webhook="w"}`: 0, `modproxy_webhook_deliveries_total{result="failed",webhook="w"}`: 0,
			`modproxy_webhook_dropped_total{webhook="w"}`: 0, `modproxy_webhook_retries_total{webhook="w"}`: 0,
		}},
		{"WebhookDelivery", func() { m.WebhookDelivery("w", true) }, map[string]float64{`modproxy_webhook_deliveries_total{result="ok",webhook="w"}`: 1}},
		{"WebhookDelivery", func() { m.WebhookDelivery("w", false) }, map[string]float64{`modproxy_webhook_deliveries_total{result="failed",webhook="w"}`: 1}},
		{"WebhookDropped", func() { m.WebhookDropped("w") }, map[string]float64{`modproxy_webhook_dropped_total{webhook="w"}`: 1}},
		{"WebhookRetry", func() { m.WebhookRetry("w") }, map[string]float64{`modproxy_webhook_retries_total{webhook="w"}`: 1}},
		{"ClientFunc", func() {
			m.ClientFunc(func() []ClientSample { return []ClientSample{{Identity: "ci", Requests: 2, Bytes: 9}} })
		}, map[string]float64{
			`modproxy_client_requests_total{identity="ci"}`: 2, `modproxy_client_bytes_total{identity="ci"}`: 9,
		}},
		{"VulnFuncs", func() { m.VulnFuncs(func() float64 { return 90 }, func() float64 { return 2 }) }, map[string]float64{
			`modproxy_vuln_data_age_seconds`: 90, `modproxy_vuln_refresh_failures_total`: 2,
		}},
	}
	covered := map[string]bool{"Handler": true, "Registry": true} // not recorders
	before := scrape(t, m)
	for _, st := range steps {
		covered[st.method] = true
		st.call()
		after := scrape(t, m)
		if got := diff(before, after); !maps.Equal(got, st.want) {
			t.Errorf("%s changed %v, want %v", st.method, got, st.want)
		}
		before = after
	}
	typ := reflect.TypeFor[*Metrics]()
	for i := range typ.NumMethod() {
		if name := typ.Method(i).Name; !covered[name] {
			t.Errorf("method %s is not covered by this test", name)
		}
	}
	if m.Registry() != m.reg {
		t.Error("Registry() is not the metrics' registry")
	}
}

// TestNilRecords: a nil *Metrics is valid and records nothing.
func TestNilRecords(t *testing.T) {
	var m *Metrics
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
	m.FreeSpace(1, 2)
	m.PresetWebhook("w")
	m.WebhookDelivery("w", true)
	m.WebhookDropped("w")
	m.WebhookRetry("w")
	m.BuildInfo("v", "r")
	m.RequestTimer("zip", "hit").Observe(time.Second)
	m.PresetProtocol([]string{"zip"}, []string{"hit"}, []int{200})
	m.PresetUpstream("u")
	m.StoreFuncs(func() (int64, int64) { return 1, 1 }, func() int64 { return 1 })
	m.CoordFallback()
}

// TestRuntimeCollectors: the registry also has the Go runtime collector.
func TestRuntimeCollectors(t *testing.T) {
	rec := httptest.NewRecorder()
	New().Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body := rec.Body.String()
	for _, name := range []string{"go_goroutines"} {
		if !slices.ContainsFunc(strings.Split(body, "\n"), func(l string) bool { return strings.HasPrefix(l, name+" ") }) {
			t.Errorf("no %s sample", name)
		}
	}
}

// goVersion is the Go version modproxy_build_info shows for this binary.
var goVersion = func() string { _, _, v := readBuildInfo(); return v }()

// histogram is every series of a histogram child with one observation
// of v (or none when v < 0): buckets, sum and count.
func histogram(name, labels string, buckets []float64, v float64) map[string]float64 {
	out := map[string]float64{}
	n := 0.0
	if v >= 0 {
		n = 1
		out[name+"_sum{"+labels+"}"] = v
	} else {
		out[name+"_sum{"+labels+"}"] = 0
	}
	for _, b := range buckets {
		c := 0.0
		if v >= 0 && v <= b {
			c = 1
		}
		out[name+"_bucket{"+labels+`,le="`+strconv.FormatFloat(b, 'g', -1, 64)+`"}`] = c
	}
	out[name+"_bucket{"+labels+`,le="+Inf"}`] = n
	out[name+"_count{"+labels+"}"] = n
	return out
}

// presetUpstream is what PresetUpstream creates for upstream u, at zero.
func presetUpstream(u string) map[string]float64 {
	out := map[string]float64{
		`modproxy_upstream_breaker_state{upstream="` + u + `"}`:              0,
		`modproxy_upstream_retries_total{upstream="` + u + `"}`:              0,
		`modproxy_upstream_probes_total{result="ok",upstream="` + u + `"}`:   0,
		`modproxy_upstream_probes_total{result="fail",upstream="` + u + `"}`: 0,
	}
	for _, st := range []string{"closed", "half-open", "open"} {
		out[`modproxy_upstream_breaker_transitions_total{state="`+st+`",upstream="`+u+`"}`] = 0
	}
	for _, r := range []string{"ok", "not_found", "timeout", "error", "breaker_open"} {
		maps.Copy(out, histogram("modproxy_upstream_fetch_seconds", `result="`+r+`",upstream="`+u+`"`,
			[]float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}, -1))
	}
	return out
}

// TestStoreFuncs: the store gauges read their functions at every scrape,
// so they are right from the start and follow the index without a GC
// run or a timer; Store keeps setting the cap.
func TestStoreFuncs(t *testing.T) {
	m := New()
	var bytes, objects, trash atomic.Int64
	bytes.Store(100)
	objects.Store(2)
	m.StoreFuncs(func() (int64, int64) { return bytes.Load(), objects.Load() }, trash.Load)
	m.Store(1, 1, 500) // the values are the functions', the cap is Store's
	want := func(b, n, tr float64) {
		t.Helper()
		got := scrape(t, m)
		for name, v := range map[string]float64{"modproxy_store_bytes": b, "modproxy_store_objects": n, "modproxy_trash_bytes": tr, "modproxy_store_cap_bytes": 500} {
			if got[name] != v {
				t.Errorf("%s = %v, want %v", name, got[name], v)
			}
		}
	}
	want(100, 2, 0)
	bytes.Store(250)
	objects.Store(5)
	trash.Store(40)
	want(250, 5, 40)
	m.StoreFuncs(func() (int64, int64) { return 7, 1 }, func() int64 { return 3 }) // replaced
	want(7, 1, 3)
}

func presetPolicy(ns string) map[string]float64 {
	out := map[string]float64{}
	for _, r := range policyReasons {
		for _, a := range policyActions {
			out[`modproxy_policy_decisions_total{action="`+a+`",namespace="`+ns+`",reason="`+r+`"}`] = 0
		}
	}
	return out
}

func TestClientFunc(t *testing.T) {
	m := New()
	m.ClientFunc(func() []ClientSample {
		return []ClientSample{{Identity: "team-a", Requests: 3, Bytes: 1200}, {Identity: "anonymous", Requests: 1}}
	})
	m.ClientFunc(func() []ClientSample { return nil }) // ignored
	got := scrape(t, m)
	for name, want := range map[string]float64{
		`modproxy_client_requests_total{identity="team-a"}`:    3,
		`modproxy_client_bytes_total{identity="team-a"}`:       1200,
		`modproxy_client_requests_total{identity="anonymous"}`: 1,
		`modproxy_client_bytes_total{identity="anonymous"}`:    0,
	} {
		if v, ok := got[name]; !ok || v != want {
			t.Errorf("%s = %v (present %v), want %v", name, v, ok, want)
		}
	}
	var nilM *Metrics
	nilM.ClientFunc(nil)
}
