package clients

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

func TestBoundedIdentities(t *testing.T) {
	tr := New(2)
	t0 := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	tr.Observe("team-a", "corp.example.com/a", 100, t0)
	tr.Observe("team-a", "", 10, t0.Add(time.Second)) // a checksum database path keeps the last module
	tr.Observe("", "example.com/pub", 5, t0)
	tr.Observe("team-b", "corp.example.com/b", 1, t0)
	tr.Observe("team-c", "corp.example.com/c", 2, t0.Add(2*time.Second)) // beyond the bound
	tr.Observe("team-d", "corp.example.com/d", 3, t0.Add(time.Second))
	tr.Observe("team-b", "corp.example.com/b2", 1, t0.Add(-time.Hour)) // an older time does not move LastSeen back

	got := map[string]Client{}
	for _, c := range tr.Clients() {
		got[c.Identity] = c
	}
	want := map[string]Client{
		"team-a":  {Identity: "team-a", Requests: 2, Bytes: 110, LastSeen: t0.Add(time.Second), LastModule: "corp.example.com/a"},
		Anonymous: {Identity: Anonymous, Requests: 1, Bytes: 5, LastSeen: t0, LastModule: "example.com/pub"},
		"team-b":  {Identity: "team-b", Requests: 2, Bytes: 2, LastSeen: t0, LastModule: "corp.example.com/b2"},
		Other:     {Identity: Other, Requests: 2, Bytes: 5, LastSeen: t0.Add(2 * time.Second), LastModule: "corp.example.com/d"},
	}
	if len(got) != len(want) {
		t.Errorf("entries %v, want %v", got, want)
	}
	for name, w := range want {
		if got[name] != w {
			t.Errorf("%s = %+v, want %+v", name, got[name], w)
		}
	}
	order := tr.Clients()
	if order[0].Identity != Other || order[len(order)-1].Identity != Anonymous {
		t.Errorf("order %v: want most requests first, ties by name", order)
	}
}

func TestConcurrentObserve(t *testing.T) {
	tr := New(10)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 1000 {
				tr.Observe(fmt.Sprintf("id-%d", (g+i)%20), "m", 1, time.Unix(int64(i), 0))
			}
		})
	}
	wg.Wait()
	var requests int64
	cs := tr.Clients()
	for _, c := range cs {
		requests += c.Requests
	}
	if requests != 8000 || len(cs) != 11 {
		t.Errorf("%d requests in %d entries, want 8000 in 11 (10 named and other)", requests, len(cs))
	}
}

func TestNil(t *testing.T) {
	var tr *Tracker
	tr.Observe("x", "m", 1, time.Now())
	if tr.Clients() != nil {
		t.Error("nil Tracker has clients")
	}
}

func BenchmarkObserve(b *testing.B) {
	tr := New(0)
	now := time.Now()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			tr.Observe("ci", "example.com/m", 100, now)
		}
	})
}
