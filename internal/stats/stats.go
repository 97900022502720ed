// Package stats keeps in-memory traffic statistics for the dashboard: one
// bucket per minute for the last 24 hours (requests, hits, misses, bytes),
// from which hit ratios over time windows are computed. Safe for
// concurrent use; the hot path is one mutex-protected increment.
package stats

import (
	"sync"
	"time"
)

// Bucket is one minute.
type Bucket struct {
	Start                         time.Time
	Requests, Hits, Misses, Bytes int64
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
// uncacheable answers) and the bytes sent.
func (t *Traffic) Record(hit, miss bool, bytes int64) {
	t.mu.Lock()
	b := t.slot(t.now())
	b.Requests++
	if hit {
		b.Hits++
	}
	if miss {
		b.Misses++
	}
	b.Bytes += bytes
	t.mu.Unlock()
}

// Series returns the buckets of the last d, oldest first, with empty
// minutes filled in.
func (t *Traffic) Series(d time.Duration) []Bucket {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now().Truncate(time.Minute)
	n := int(d / time.Minute)
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
