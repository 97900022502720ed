package audit

import (
	"context"
	"path/filepath"
	"slices"
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

type idKey struct{}

func TestRecordContextIdentity(t *testing.T) {
	p := filepath.Join(t.TempDir(), "audit.log")
	l, err := Open(p, Options{Identity: func(ctx context.Context) string {
		s, _ := ctx.Value(idKey{}).(string)
		return s
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx := context.WithValue(context.Background(), idKey{}, "team-a")
	for _, e := range []struct {
		ctx context.Context
		ev  Event
	}{
		{ctx, Event{Actor: "admin", Action: "purge", Target: "a"}},
		{context.Background(), Event{Actor: "admin", Action: "purge", Target: "b"}},
		{ctx, Event{Actor: "admin", Action: "purge", Target: "c", Identity: "explicit"}},
	} {
		if err := l.RecordContext(e.ctx, e.ev); err != nil {
			t.Fatal(err)
		}
	}
	evs, err := Read(p)
	if err != nil {
		t.Fatal(err)
	}
	got := []string{evs[0].Identity, evs[1].Identity, evs[2].Identity}
	if want := []string{"team-a", "", "explicit"}; !slices.Equal(got, want) {
		t.Errorf("identities %q, want %q", got, want)
	}
	q, err := l.Query(Filter{Identity: "team-a"})
	if err != nil {
		t.Fatal(err)
	}
	if len(q) != 1 || q[0].Target != "a" {
		t.Errorf("Query(identity team-a) = %+v, want the event of a", q)
	}
	var nilLog *Log
	if err := nilLog.RecordContext(ctx, Event{}); err != nil {
		t.Errorf("nil Log: %v", err)
	}
}
