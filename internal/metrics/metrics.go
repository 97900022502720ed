// Package metrics holds modproxy's Prometheus metrics in their own
// registry (no global state). A nil *Metrics is valid and records nothing,
// so packages can take one optionally.
package metrics

import (
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics is the set of modproxy metrics. Safe for concurrent use.
type Metrics struct {
	reg *prometheus.Registry

	requests       *prometheus.CounterVec
	outcomes       *prometheus.CounterVec
	fillsInFlight  prometheus.Gauge
	upstreamErrors *prometheus.CounterVec
	verifications  *prometheus.CounterVec
	securityErrors prometheus.Counter
	quarantined    prometheus.Counter
	breakerState   *prometheus.GaugeVec
	breakerChanges *prometheus.CounterVec
	upstreamFetch  *prometheus.HistogramVec
	upstreamRetry  *prometheus.CounterVec
	probes         *prometheus.CounterVec
	storeBytes     prometheus.Gauge
	storeObjects   prometheus.Gauge
	storeCapBytes  prometheus.Gauge
	gcRuns         *prometheus.CounterVec
	gcEvicted      *prometheus.CounterVec
	trashBytes     prometheus.Gauge
	coordFallback  prometheus.Counter
	storeFull      *prometheus.CounterVec
	ops            *ops       // ops.go
	toolchain      *toolchain // toolchain.go

	policyDecisions *prometheus.CounterVec // policy.go
	webhooks        *webhooks              // webhook.go
	vulnOnce        sync.Once              // vuln.go
}

// New returns Metrics registered in a new registry, with the Go runtime
// and process collectors.
func New() *Metrics {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	f := factory{reg}
	m := &Metrics{
		reg: reg,
		requests: f.counterVec("modproxy_requests_total",
			"Protocol requests by artifact kind and HTTP status.", "kind", "code"),
		outcomes: f.counterVec("modproxy_cache_outcomes_total",
			"Answers by artifact kind and cache outcome (hit, miss, coalesced, stale, negative).", "kind", "outcome"),
		fillsInFlight: f.gauge("modproxy_fills_in_flight", "Upstream fills in progress."),
		upstreamErrors: f.counterVec("modproxy_upstream_errors_total",
			"Failed upstream fetches by class (not_found: 404, 410 and 400; denied: 403; invalid: content that failed validation; unavailable; timeout).", "class"),
		verifications: f.counterVec("modproxy_checksum_verifications_total",
			"Checksum database verifications at admission by result (ok, mismatch, unknown, error, private, security).", "result"),
		securityErrors: f.counter("modproxy_checksum_security_errors_total",
			"Checksum database misbehaviour detected (forked or rolled-back tree)."),
		quarantined: f.counter("modproxy_quarantined_total", "Objects moved to quarantine."),
		breakerState: f.gaugeVec("modproxy_upstream_breaker_state",
			"Circuit breaker state per upstream: 0 closed, 1 half-open, 2 open.", "upstream"),
		breakerChanges: f.counterVec("modproxy_upstream_breaker_transitions_total",
			"Circuit breaker state changes per upstream, by new state.", "upstream", "state"),
		upstreamFetch: f.histogramVec("modproxy_upstream_fetch_seconds",
			"Upstream fetch latency (until the response headers, retries included) by upstream and result.", "upstream", "result"),
		upstreamRetry: f.counterVec("modproxy_upstream_retries_total", "Retried upstream fetches per upstream.", "upstream"),
		probes:        f.counterVec("modproxy_upstream_probes_total", "Active health probes per upstream and result (ok, fail).", "upstream", "result"),
		storeBytes:    f.gauge("modproxy_store_bytes", "Bytes of module content in the store (as of the metadata index)."),
		storeObjects:  f.gauge("modproxy_store_objects", "Objects in the store (as of the metadata index)."),
		storeCapBytes: f.gauge("modproxy_store_cap_bytes", "Configured size cap of the store; 0 when unbounded."),
		gcRuns:        f.counterVec("modproxy_gc_runs_total", "Garbage collection runs by result (ok, error) and mode (run, dry-run).", "result", "mode"),
		gcEvicted:     f.counterVec("modproxy_gc_evicted_bytes_total", "Bytes moved to trash by garbage collection, by policy.", "policy"),
		trashBytes:    f.gauge("modproxy_trash_bytes", "Bytes held in the trash."),
		coordFallback: f.counter("modproxy_coordination_fallbacks_total", "Fills done without cluster coordination because the coordinator was unreachable."),
		storeFull: f.counterVec("modproxy_store_full_total",
			"Fills that could not store their answer because local storage is full (no space left, quota exceeded), by artifact kind.", "kind"),
		ops:             newOps(f),
		toolchain:       newToolchain(f),
		policyDecisions: newPolicyDecisions(f),
		webhooks:        newWebhooks(f),
	}
	m.ops.preset(m)
	return m
}

type factory struct{ reg *prometheus.Registry }

func (f factory) counterVec(name, help string, labels ...string) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
	f.reg.MustRegister(c)
	return c
}

func (f factory) gaugeVec(name, help string, labels ...string) *prometheus.GaugeVec {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, labels)
	f.reg.MustRegister(g)
	return g
}

func (f factory) histogramVec(name, help string, labels ...string) *prometheus.HistogramVec {
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: help,
		Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}}, labels)
	f.reg.MustRegister(h)
	return h
}

func (f factory) counter(name, help string) prometheus.Counter {
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
	f.reg.MustRegister(c)
	return c
}

func (f factory) gauge(name, help string) prometheus.Gauge {
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help})
	f.reg.MustRegister(g)
	return g
}

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Registry returns the registry, for tests and for adding collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Request counts a protocol request.
func (m *Metrics) Request(kind string, code int) {
	if m != nil {
		m.requests.WithLabelValues(kind, strconv.Itoa(code)).Inc()
	}
}

// Outcome counts a cache outcome.
func (m *Metrics) Outcome(kind, outcome string) {
	if m != nil {
		m.outcomes.WithLabelValues(kind, outcome).Inc()
	}
}

// KindCounters count the requests and cache outcomes of one artifact kind
// (the series of Request and Outcome) without a label lookup per count:
// each series is looked up on its first count and kept, so a series
// appears only once counted, as with Request and Outcome. A nil
// *KindCounters records nothing. Safe for concurrent use.
type KindCounters struct {
	m        *Metrics
	kind     string
	codes    [maxCode - minCode]atomic.Pointer[prometheus.Counter]
	outcomes [len(outcomeNames)]atomic.Pointer[prometheus.Counter]
}

// Statuses kept by KindCounters; others are looked up per count.
const minCode, maxCode = 100, 600

// outcomeNames are the outcomes KindCounters keep; others are looked up
// per count.
var outcomeNames = [...]string{"hit", "miss", "coalesced", "stale", "negative"}

// NewKindCounters returns the counters of m for artifact kind kind, for
// the caller to keep; nil (recording nothing) when m is nil.
func NewKindCounters(m *Metrics, kind string) *KindCounters {
	if m == nil {
		return nil
	}
	return &KindCounters{m: m, kind: kind}
}

// Request counts a request answered with HTTP status code, like
// Metrics.Request.
func (k *KindCounters) Request(code int) {
	if k == nil {
		return
	}
	if code < minCode || code >= maxCode {
		k.m.Request(k.kind, code)
		return
	}
	slot := &k.codes[code-minCode]
	c := slot.Load()
	if c == nil {
		c = keep(slot, k.m.requests, k.kind, strconv.Itoa(code))
	}
	(*c).Inc()
}

// Outcome counts a cache outcome, like Metrics.Outcome.
func (k *KindCounters) Outcome(outcome string) {
	if k == nil {
		return
	}
	for i, name := range outcomeNames {
		if name == outcome {
			slot := &k.outcomes[i]
			c := slot.Load()
			if c == nil {
				c = keep(slot, k.m.outcomes, k.kind, outcome)
			}
			(*c).Inc()
			return
		}
	}
	k.m.Outcome(k.kind, outcome)
}

// keep looks up the series of vec with labels and keeps it in slot
// (looking it up twice at once is harmless: both get the same series).
func keep(slot *atomic.Pointer[prometheus.Counter], vec *prometheus.CounterVec, labels ...string) *prometheus.Counter {
	c := vec.WithLabelValues(labels...)
	slot.Store(&c)
	return &c
}

// FillStarted and FillDone track fills in flight.
func (m *Metrics) FillStarted() {
	if m != nil {
		m.fillsInFlight.Inc()
	}
}

// FillDone marks the end of a fill started with FillStarted.
func (m *Metrics) FillDone() {
	if m != nil {
		m.fillsInFlight.Dec()
	}
}

// UpstreamError counts a failed upstream fetch by class.
func (m *Metrics) UpstreamError(class string) {
	if m != nil {
		m.upstreamErrors.WithLabelValues(class).Inc()
	}
}

// Verification counts a verification result.
func (m *Metrics) Verification(result string) {
	if m != nil {
		m.verifications.WithLabelValues(result).Inc()
	}
}

// SecurityError counts a checksum database security error.
func (m *Metrics) SecurityError() {
	if m != nil {
		m.securityErrors.Inc()
	}
}

// Quarantined counts an object moved to quarantine.
func (m *Metrics) Quarantined() {
	if m != nil {
		m.quarantined.Inc()
	}
}

// BreakerState records an upstream's breaker state ("closed", "half-open",
// "open"); transition also counts it as a state change.
func (m *Metrics) BreakerState(upstream, state string, transition bool) {
	if m == nil {
		return
	}
	m.breakerState.WithLabelValues(upstream).Set(map[string]float64{"closed": 0, "half-open": 1, "open": 2}[state])
	if transition {
		m.breakerChanges.WithLabelValues(upstream, state).Inc()
	}
}

// UpstreamFetch records an upstream fetch's latency and result.
func (m *Metrics) UpstreamFetch(upstream, result string, d time.Duration) {
	if m != nil {
		m.upstreamFetch.WithLabelValues(upstream, result).Observe(d.Seconds())
	}
}

// UpstreamRetry counts a retried fetch.
func (m *Metrics) UpstreamRetry(upstream string) {
	if m != nil {
		m.upstreamRetry.WithLabelValues(upstream).Inc()
	}
}

// Probe counts a health probe.
func (m *Metrics) Probe(upstream string, ok bool) {
	if m != nil {
		r := "fail"
		if ok {
			r = "ok"
		}
		m.probes.WithLabelValues(upstream, r).Inc()
	}
}

// Store records the store's size as the metadata index sees it.
func (m *Metrics) Store(bytes, objects, capBytes int64) {
	if m != nil {
		m.storeBytes.Set(float64(bytes))
		m.storeObjects.Set(float64(objects))
		m.storeCapBytes.Set(float64(capBytes))
	}
}

// GCRun counts a garbage collection run.
func (m *Metrics) GCRun(ok, dryRun bool) {
	if m != nil {
		result, mode := "ok", "run"
		if !ok {
			result = "error"
		}
		if dryRun {
			mode = "dry-run"
		}
		m.gcRuns.WithLabelValues(result, mode).Inc()
	}
}

// GCEvicted counts bytes evicted by a policy.
func (m *Metrics) GCEvicted(policy string, bytes int64) {
	if m != nil {
		m.gcEvicted.WithLabelValues(policy).Add(float64(bytes))
	}
}

// Trash records the trash size.
func (m *Metrics) Trash(bytes int64) {
	if m != nil {
		m.trashBytes.Set(float64(bytes))
	}
}

// StoreFull counts a fill whose answer could not be stored because local
// storage is full.
func (m *Metrics) StoreFull(kind string) {
	if m != nil {
		m.storeFull.WithLabelValues(kind).Inc()
	}
}

// CoordFallback counts a fill done without the unreachable coordinator.
func (m *Metrics) CoordFallback() {
	if m != nil {
		m.coordFallback.Inc()
	}
}
