package metrics

import "github.com/prometheus/client_golang/prometheus"

// ops are the metrics operators look for beyond the cache's own counters:
// the space of the cache's file system. They live in a struct of their
// own (one field of Metrics) so that additions stay apart from the
// metrics above.
type ops struct {
	freeBytes    prometheus.Gauge
	minFreeBytes prometheus.Gauge
}

func newOps(f factory) *ops {
	return &ops{
		freeBytes: f.gauge("modproxy_cache_free_bytes",
			"Free bytes of the file system holding the cache directory, as last checked (0 until the first check)."),
		minFreeBytes: f.gauge("modproxy_cache_min_free_bytes",
			"Configured gc.min_free: below this free space GC empties the trash and evicts at once; 0 when off."),
	}
}

// FreeSpace records the free space of the cache's file system and the
// threshold GC keeps it above.
func (m *Metrics) FreeSpace(free, minFree int64) {
	if m != nil {
		m.ops.freeBytes.Set(float64(free))
		m.ops.minFreeBytes.Set(float64(minFree))
	}
}
