package audit

import (
	"path/filepath"
	"sync"
	"testing"
	"time"
)

func TestConcurrentRecords(t *testing.T) {
	p := filepath.Join(t.TempDir(), "audit.log")
	l, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Go(func() {
			if err := l.Record(Event{Actor: "test", Action: "reject", Target: "example.com/a@v1.0.0", Bytes: int64(i), Hashes: map[string]string{"got": "h1:x"}}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	events, err := Read(p)
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 50 {
		t.Fatalf("%d events, want 50", len(events))
	}
	seen := map[int64]bool{}
	for _, e := range events {
		if e.Time.IsZero() || e.Actor != "test" || e.Hashes["got"] != "h1:x" {
			t.Errorf("bad event %+v", e)
		}
		seen[e.Bytes] = true
	}
	if len(seen) != 50 {
		t.Errorf("events lost or duplicated: %d distinct", len(seen))
	}
	var nilLog *Log
	if err := nilLog.Record(Event{}); err != nil {
		t.Error(err)
	}
}

func TestRotationAndQuery(t *testing.T) {
	p := filepath.Join(t.TempDir(), "audit.log")
	l, err := Open(p, Options{MaxBytes: 2000, MaxFiles: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for i := range 40 {
		action := "evict"
		if i%4 == 0 {
			action = "purge"
		}
		if err := l.Record(Event{Actor: "gc", Action: action, Target: "example.com/m@v1.0." + string(rune('a'+i%26)), Bytes: int64(i)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := Read(p + ".1"); err != nil {
		t.Fatalf("no rotated file: %v", err)
	}
	if _, err := Read(p + ".3"); err == nil {
		t.Fatal("more rotated files than MaxFiles")
	}
	got, err := l.Query(Filter{Action: "purge", Limit: 3})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0].Bytes != 36 || got[1].Bytes != 32 || got[2].Bytes != 28 {
		t.Fatalf("Query = %+v, want the three newest purges", got)
	}
}

func TestRotationByAge(t *testing.T) {
	p := filepath.Join(t.TempDir(), "audit.log")
	l, err := Open(p, Options{MaxAge: time.Hour, MaxFiles: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i, d := range []time.Duration{0, 30 * time.Minute, 61 * time.Minute, 62 * time.Minute} {
		if err := l.Record(Event{Time: t0.Add(d), Actor: "t", Action: "a", Target: string(rune('a' + i))}); err != nil {
			t.Fatal(err)
		}
	}
	old, _ := Read(p + ".1")
	cur, _ := Read(p)
	if len(old) != 2 || len(cur) != 2 {
		t.Fatalf("rotated file has %d events, current %d; want 2 and 2", len(old), len(cur))
	}
}
