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
	tr.Record(true, false, 100)
	tr.Record(false, true, 50)
	now = now.Add(2 * time.Minute)
	tr.Record(true, false, 10)
	tr.Record(false, false, 0) // an error
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
