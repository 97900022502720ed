package cachepolicy

import (
	"testing"
	"time"
)

func TestClassify(t *testing.T) {
	p := Policy{TTL: time.Minute, StaleWhileRevalidate: 10 * time.Minute, StaleIfError: time.Hour}
	for _, tc := range []struct {
		age  time.Duration
		want State
	}{
		{0, Fresh},
		{59 * time.Second, Fresh},
		{time.Minute, Revalidate},
		{10*time.Minute + 59*time.Second, Revalidate},
		{11 * time.Minute, Refetch},
		{48 * time.Hour, Refetch},
	} {
		if got := p.Classify(tc.age); got != tc.want {
			t.Errorf("Classify(%v) = %v, want %v", tc.age, got, tc.want)
		}
	}
	if !p.ServeStaleOnError(59*time.Minute) || p.ServeStaleOnError(time.Hour) {
		t.Error("ServeStaleOnError bound wrong")
	}
	zero := Policy{}
	if got := zero.Classify(0); got != Refetch {
		t.Errorf("zero policy Classify(0) = %v, want refetch (no caching)", got)
	}
}

func TestValidate(t *testing.T) {
	if err := Default().Validate(); err != nil {
		t.Fatal(err)
	}
	for _, p := range []Policy{{TTL: -1}, {StaleWhileRevalidate: -1}, {StaleIfError: -1}, {NegativeTTL: -1}} {
		if p.Validate() == nil {
			t.Errorf("Validate(%+v) = nil", p)
		}
	}
}
