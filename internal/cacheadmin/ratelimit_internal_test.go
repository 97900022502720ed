package cacheadmin

import (
	"fmt"
	"testing"
	"time"
)

// TestRateLimiterBounded: the budgets of at most maxLimited identities
// are remembered; a new one beyond forgets those refilled (equivalent to
// none) and, when none is, all of them.
func TestRateLimiterBounded(t *testing.T) {
	var l rateLimiter
	t0 := time.Unix(1e9, 0)
	for i := range maxLimited {
		if _, ok := l.take(fmt.Sprint(i), t0, time.Second, 2); !ok {
			t.Fatal("first refresh refused")
		}
	}
	if _, ok := l.take("0", t0, time.Second, 2); !ok {
		t.Fatal("second refresh refused")
	}
	if _, ok := l.take("new", t0, time.Second, 2); !ok || len(l.m) != 1 {
		t.Errorf("new identity with none refilled: %v, %d budgets, want all forgotten", ok, len(l.m))
	}
	for i := range maxLimited - 1 {
		l.take(fmt.Sprint(i), t0, time.Second, 2)
	}
	l.take("0", t0, time.Second, 2) // "0" has spent both: not refilled a second later
	if _, ok := l.take("newer", t0.Add(time.Second), time.Second, 2); !ok || len(l.m) != 2 {
		t.Errorf("new identity: %v, %d budgets, want the refilled forgotten (2 left)", ok, len(l.m))
	}
}
