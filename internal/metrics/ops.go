package metrics

import (
	"runtime"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// ops are the metrics operators look for beyond the cache's own counters:
// served-request latency, the build, the space of the cache's file
// system, series present from start (zero-valued) and store gauges read
// at every scrape. They live in a struct of their own (one field of
// Metrics) so that additions stay apart from the metrics above.
type ops struct {
	requestDuration *prometheus.HistogramVec
	buildInfo       *prometheus.GaugeVec
	freeBytes       prometheus.Gauge
	minFreeBytes    prometheus.Gauge

	storeOnce   sync.Once // the store gauges become GaugeFuncs of storeSrc
	clientsOnce sync.Once // registers the per-identity collector (clients.go)
	storeSrc    atomic.Pointer[storeSource]
}

// storeSource is where the store gauges read their values at a scrape.
type storeSource struct {
	store func() (bytes, objects int64)
	trash func() int64
}

// requestBuckets fit both hits (from memory: tens of microseconds; from
// disk: a millisecond or so) and fills (an upstream round trip and a
// download: hundreds of milliseconds to minutes).
var requestBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300}

func newOps(f factory) *ops {
	o := &ops{
		requestDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "modproxy_request_duration_seconds",
			Help:    "Served protocol requests, from arrival until the answer is sent, by artifact kind and outcome (hit: from the cache, with stale and negative answers; fill: fetched upstream by it or a concurrent request; error: every other answer).",
			Buckets: requestBuckets}, []string{"kind", "outcome"}),
		buildInfo: f.gaugeVec("modproxy_build_info",
			"Always 1; the labels say which build runs: module version, VCS revision, Go version.", "version", "revision", "goversion"),
		freeBytes: f.gauge("modproxy_cache_free_bytes",
			"Free bytes of the file system holding the cache directory, as last checked (0 until the first check)."),
		minFreeBytes: f.gauge("modproxy_cache_min_free_bytes",
			"Configured gc.min_free: below this free space GC empties the trash and evicts at once; 0 when off."),
	}
	f.reg.MustRegister(o.requestDuration)
	v, rev, gov := readBuildInfo()
	o.buildInfo.WithLabelValues(v, rev, gov).Set(1)
	return o
}

// readBuildInfo returns the module version, VCS revision (with "-dirty"
// for a modified tree) and Go version the binary was built with, "unknown"
// for what it does not record.
func readBuildInfo() (version, revision, goversion string) {
	version, revision, goversion = "unknown", "unknown", runtime.Version()
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return
	}
	if bi.Main.Version != "" {
		version = bi.Main.Version
	}
	if bi.GoVersion != "" {
		goversion = bi.GoVersion
	}
	dirty := false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			revision = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if dirty && revision != "unknown" {
		revision += "-dirty"
	}
	return
}

// preset creates, at zero, the series of the label values this package
// documents, so that alerts and dashboards see them from start (a rate
// over a series that appears with its first increment misses it).
func (o *ops) preset(m *Metrics) {
	for _, c := range []string{"not_found", "invalid", "unavailable", "timeout"} {
		m.upstreamErrors.WithLabelValues(c)
	}
	for _, r := range []string{"ok", "mismatch", "unknown", "error", "private", "security"} {
		m.verifications.WithLabelValues(r)
	}
	for _, r := range []string{"ok", "error"} {
		for _, mode := range []string{"run", "dry-run"} {
			m.gcRuns.WithLabelValues(r, mode)
		}
	}
	for _, p := range []string{"max-idle", "keep-newest", "size-cap", "min-free", "purge"} {
		m.gcEvicted.WithLabelValues(p)
	}
}

// BuildInfo sets the version and revision modproxy_build_info shows, for
// builds that know them better than the module's build information (a
// version given with -ldflags); an empty value keeps the recorded one.
func (m *Metrics) BuildInfo(version, revision string) {
	if m == nil {
		return
	}
	v, rev, gov := readBuildInfo()
	if version != "" {
		v = version
	}
	if revision != "" {
		rev = revision
	}
	m.ops.buildInfo.Reset()
	m.ops.buildInfo.WithLabelValues(v, rev, gov).Set(1)
}

// Timer records durations in one series of a histogram. The zero Timer
// (from a nil *Metrics) records nothing. Safe for concurrent use.
type Timer struct{ o prometheus.Observer }

// Observe records d.
func (t Timer) Observe(d time.Duration) {
	if t.o != nil {
		t.o.Observe(d.Seconds())
	}
}

// RequestTimer returns the modproxy_request_duration_seconds series of
// kind and outcome ("hit", "fill", "error"), created now at zero. Resolve
// it once and observe on the request path: Observe looks nothing up.
func (m *Metrics) RequestTimer(kind, outcome string) Timer {
	if m == nil {
		return Timer{}
	}
	return Timer{m.ops.requestDuration.WithLabelValues(kind, outcome)}
}

// PresetProtocol creates, at zero, the protocol series of every kind with
// every cache outcome and with every status code, so that ratios and
// rates of the alerts and dashboards have them from start.
func (m *Metrics) PresetProtocol(kinds, outcomes []string, codes []int) {
	if m == nil {
		return
	}
	for _, k := range kinds {
		for _, o := range outcomes {
			m.outcomes.WithLabelValues(k, o)
		}
		for _, c := range codes {
			m.requests.WithLabelValues(k, strconv.Itoa(c))
		}
	}
}

// PresetUpstream creates, at zero, every series of an upstream (breaker
// closed, no fetches, retries, probes or transitions), so that it is
// exported from start.
func (m *Metrics) PresetUpstream(name string) {
	if m == nil {
		return
	}
	m.breakerState.WithLabelValues(name)
	for _, st := range []string{"closed", "half-open", "open"} {
		m.breakerChanges.WithLabelValues(name, st)
	}
	for _, r := range []string{"ok", "not_found", "timeout", "error", "breaker_open"} {
		m.upstreamFetch.WithLabelValues(name, r)
	}
	m.upstreamRetry.WithLabelValues(name)
	for _, r := range []string{"ok", "fail"} {
		m.probes.WithLabelValues(name, r)
	}
}

// StoreFuncs makes modproxy_store_bytes, modproxy_store_objects and
// modproxy_trash_bytes read store and trash at every scrape, so that they
// are right from start and current, never waiting for a GC run or a
// timer; Store and Trash then no longer change them (Store still sets the
// cap). A later call replaces the functions. The functions must be safe
// for concurrent use and quick.
func (m *Metrics) StoreFuncs(store func() (bytes, objects int64), trash func() int64) {
	if m == nil {
		return
	}
	m.ops.storeSrc.Store(&storeSource{store: store, trash: trash})
	m.ops.storeOnce.Do(func() {
		read := func(f func(s *storeSource) int64) func() float64 {
			return func() float64 { return float64(f(m.ops.storeSrc.Load())) }
		}
		// The registry insists on the help text a name was first
		// registered with: take it from the gauges being replaced.
		help := map[string]string{}
		if mfs, err := m.reg.Gather(); err == nil {
			for _, mf := range mfs {
				help[mf.GetName()] = mf.GetHelp()
			}
		}
		for _, g := range []struct {
			old  prometheus.Gauge
			name string
			fn   func() float64
		}{
			{m.storeBytes, "modproxy_store_bytes", read(func(s *storeSource) int64 { b, _ := s.store(); return b })},
			{m.storeObjects, "modproxy_store_objects", read(func(s *storeSource) int64 { _, n := s.store(); return n })},
			{m.trashBytes, "modproxy_trash_bytes", read(func(s *storeSource) int64 { return s.trash() })},
		} {
			m.reg.Unregister(g.old)
			m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: g.name, Help: help[g.name]}, g.fn))
		}
	})
}

// FreeSpace records the free space of the cache's file system and the
// threshold GC keeps it above.
func (m *Metrics) FreeSpace(free, minFree int64) {
	if m != nil {
		m.ops.freeBytes.Set(float64(free))
		m.ops.minFreeBytes.Set(float64(minFree))
	}
}
