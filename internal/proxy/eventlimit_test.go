package proxy

import (
	"testing"
	"time"
)

func TestEventLimiter(t *testing.T) {
	t0 := time.Date(2026, 12, 4, 0, 0, 0, 0, time.UTC)
	l := newEventLimiter(10*time.Minute, 2)
	steps := []struct {
		key  string
		at   time.Duration
		want bool
	}{
		{"a", 0, true},
		{"a", time.Minute, false},
		{"b", time.Minute, true},
		{"a", 10 * time.Minute, true}, // the interval has passed
		{"a", 11 * time.Minute, false},
		{"c", 12 * time.Minute, true}, // full: b, the least recently sent, is forgotten
		{"a", 12 * time.Minute, false},
		{"b", 12 * time.Minute, true},
	}
	for _, s := range steps {
		if got := l.allow(s.key, t0.Add(s.at)); got != s.want {
			t.Errorf("allow(%s, +%v) = %v, want %v", s.key, s.at, got, s.want)
		}
	}
	if n := len(l.byKey); n != 2 || l.order.Len() != 2 {
		t.Errorf("remembers %d keys (%d in order), want at most 2", n, l.order.Len())
	}
}
