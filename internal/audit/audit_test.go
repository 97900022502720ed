package audit

import (
	"path/filepath"
	"sync"
	"testing"
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
