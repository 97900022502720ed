package stats

import (
	"testing"
	"time"
)

func TestTraffic(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 30, 0, time.UTC)
	tr := New(func() time.Time { return now })
	if tr.HitRatio(time.Hour) != -1 {
		t.Fatal("ratio without traffic")
	}
	tr.Record(true, false, false, 100)
	tr.Record(false, true, false, 50)
	now = now.Add(2 * time.Minute)
	tr.Record(true, false, false, 10)
	tr.Record(false, false, true, 0) // an error
	s := tr.Series(5 * time.Minute)
	if len(s) != 5 || s[2].Requests != 2 || s[4].Requests != 2 || s[4].Bytes != 10 || s[3].Requests != 0 {
		t.Fatalf("series %+v", s)
	}
	if r := tr.HitRatio(5 * time.Minute); r < 0.66 || r > 0.67 {
		t.Fatalf("ratio %v", r)
	}
	if r := tr.HitRatio(time.Minute); r != 1 {
		t.Fatalf("last-minute ratio %v", r)
	}
	now = now.Add(25 * time.Hour) // everything ages out of the ring
	if tr.HitRatio(24*time.Hour) != -1 {
		t.Fatal("old buckets still counted")
	}
}

// TestErrorsAndUpstream: failed answers and upstream fetches (count,
// failures, total and longest time) are kept per minute.
func TestErrorsAndUpstream(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 30, 0, time.UTC)
	tr := New(func() time.Time { return now })
	tr.Record(false, true, false, 10)
	tr.Record(false, false, true, 0)
	tr.Upstream(300*time.Millisecond, false)
	tr.Upstream(2*time.Second, true)
	now = now.Add(time.Minute)
	tr.Upstream(time.Second, false)
	s := tr.Series(2 * time.Minute)
	if len(s) != 2 {
		t.Fatalf("%d buckets", len(s))
	}
	if b := s[0]; b.Errors != 1 || b.UpstreamFetches != 2 || b.UpstreamErrors != 1 || b.UpstreamTime != 2300*time.Millisecond || b.UpstreamMax != 2*time.Second {
		t.Errorf("first minute %+v", b)
	}
	if b := s[1]; b.Errors != 0 || b.UpstreamFetches != 1 || b.UpstreamErrors != 0 || b.UpstreamMax != time.Second {
		t.Errorf("second minute %+v", b)
	}
}

// TestSince: a series since the start begins at the start's minute and
// is bounded by the window.
func TestSince(t *testing.T) {
	start := time.Date(2026, 1, 1, 12, 0, 40, 0, time.UTC)
	now := start
	tr := New(func() time.Time { return now })
	if s := tr.Since(start, 6*time.Hour); len(s) != 1 || !s[0].Start.Equal(start.Truncate(time.Minute)) {
		t.Fatalf("at start: %+v", s)
	}
	now = start.Add(90 * time.Minute)
	s := tr.Since(start, 6*time.Hour)
	if len(s) != 91 || !s[0].Start.Equal(start.Truncate(time.Minute)) || !s[90].Start.Equal(now.Truncate(time.Minute)) {
		t.Fatalf("after 90 minutes: %d buckets from %v to %v", len(s), s[0].Start, s[len(s)-1].Start)
	}
	now = start.Add(30 * time.Hour)
	if s := tr.Since(start, 6*time.Hour); len(s) != 360 || !s[359].Start.Equal(now.Truncate(time.Minute)) {
		t.Fatalf("after 30 hours: %d buckets", len(s))
	}
}
