package metrics

import "github.com/prometheus/client_golang/prometheus"

// toolchain are the toolchain mirror's metrics (package toolchain), in a
// struct of their own like ops.
type toolchain struct {
	fetches    *prometheus.CounterVec
	bytes      prometheus.Counter
	mismatches prometheus.Counter
}

func newToolchain(f factory) *toolchain {
	t := &toolchain{
		fetches: f.counterVec("modproxy_toolchain_fetches_total",
			"Fetches from the toolchain distribution site by what (listing, archive) and result (ok, not_found, invalid, mismatch, error).", "what", "result"),
		bytes: f.counter("modproxy_toolchain_fetched_bytes_total", "Bytes of toolchain archives fetched from the distribution site."),
		mismatches: f.counter("modproxy_toolchain_verification_failures_total",
			"Toolchain archives refused because their SHA-256 differs from the listing's."),
	}
	for _, what := range []string{"listing", "archive"} {
		for _, r := range []string{"ok", "not_found", "invalid", "mismatch", "error"} {
			t.fetches.WithLabelValues(what, r)
		}
	}
	return t
}

// ToolchainFetch counts a fetch from the distribution site.
func (m *Metrics) ToolchainFetch(what, result string) {
	if m != nil {
		m.toolchain.fetches.WithLabelValues(what, result).Inc()
	}
}

// ToolchainBytes counts archive bytes fetched from the distribution site.
func (m *Metrics) ToolchainBytes(n int64) {
	if m != nil {
		m.toolchain.bytes.Add(float64(n))
	}
}

// ToolchainMismatch counts an archive refused for its hash.
func (m *Metrics) ToolchainMismatch() {
	if m != nil {
		m.toolchain.mismatches.Inc()
	}
}
