// Package stats keeps in-memory traffic statistics for the dashboard: one
// bucket per minute for the last 24 hours (requests, hits, misses, bytes,
// failed answers, upstream fetches with their failures and latency), from
// which hit ratios over time windows are computed. Safe for concurrent
// use; the hot path is one mutex-protected increment.
package stats

import (
	"sync"
	"time"
)

// Bucket is one minute.
type Bucket struct {
	Start                         time.Time
	Requests, Hits, Misses, Bytes int64
	// Errors are requests answered with a server error (5xx).
	Errors int64
	// Upstream fetches of the minute: how many, how many failed (not
	// found is an answer, not a failure), their total and longest time.
	UpstreamFetches, UpstreamErrors int64
	UpstreamTime, UpstreamMax       time.Duration
}

const buckets = 24 * 60

// Traffic is a ring of per-minute buckets.
type Traffic struct {
	mu   sync.Mutex
	ring [buckets]Bucket
	now  func() time.Time
}

// New returns an empty Traffic; now is the clock (nil: time.Now).
func New(now func() time.Time) *Traffic {
	if now == nil {
		now = time.Now
	}
	return &Traffic{now: now}
}

func (t *Traffic) slot(at time.Time) *Bucket {
	m := at.Truncate(time.Minute)
	b := &t.ring[(m.Unix()/60)%buckets]
	if !b.Start.Equal(m) {
		*b = Bucket{Start: m}
	}
	return b
}

// Record counts one request: hit or miss (neither for errors and
// uncacheable answers), failed (answered with a server error) and the
// bytes sent.
func (t *Traffic) Record(hit, miss, failed bool, bytes int64) {
	t.mu.Lock()
	b := t.slot(t.now())
	b.Requests++
	if hit {
		b.Hits++
	}
	if miss {
		b.Misses++
	}
	if failed {
		b.Errors++
	}
	b.Bytes += bytes
	t.mu.Unlock()
}

// Upstream counts one upstream fetch that took d, failed or not.
func (t *Traffic) Upstream(d time.Duration, failed bool) {
	t.mu.Lock()
	b := t.slot(t.now())
	b.UpstreamFetches++
	if failed {
		b.UpstreamErrors++
	}
	b.UpstreamTime += d
	b.UpstreamMax = max(b.UpstreamMax, d)
	t.mu.Unlock()
}

// Series returns the buckets of the last d, oldest first, with empty
// minutes filled in.
func (t *Traffic) Series(d time.Duration) []Bucket {
	return t.series(int(d / time.Minute))
}

// Since returns the buckets from the minute of start to now, at most the
// last d, oldest first, with empty minutes filled in: a chart of them
// starts when the server did, not hours before it.
func (t *Traffic) Since(start time.Time, d time.Duration) []Bucket {
	n := int(t.now().Truncate(time.Minute).Sub(start.Truncate(time.Minute))/time.Minute) + 1
	return t.series(min(max(n, 1), int(d/time.Minute)))
}

func (t *Traffic) series(n int) []Bucket {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now().Truncate(time.Minute)
	if n > buckets {
		n = buckets
	}
	out := make([]Bucket, 0, n)
	for i := n - 1; i >= 0; i-- {
		m := now.Add(-time.Duration(i) * time.Minute)
		b := t.ring[(m.Unix()/60)%buckets]
		if !b.Start.Equal(m) {
			b = Bucket{Start: m}
		}
		out = append(out, b)
	}
	return out
}

// HitRatio is hits/(hits+misses) over the last d, or -1 without traffic.
func (t *Traffic) HitRatio(d time.Duration) float64 {
	var h, m int64
	for _, b := range t.Series(d) {
		h += b.Hits
		m += b.Misses
	}
	if h+m == 0 {
		return -1
	}
	return float64(h) / float64(h+m)
}
