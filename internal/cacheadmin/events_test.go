package cacheadmin_test

import (
	"context"
	"testing"

	"github.com/modproxy/modproxy/internal/cacheadmin"
	"github.com/modproxy/modproxy/internal/event"
	"github.com/modproxy/modproxy/internal/event/eventtest"
)

// TestPurgeEmits: a purge that completed emits one event.Purged with the
// module, the versions, the reason and the actor; a refused one emits
// nothing.
func TestPurgeEmits(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.put(t, "example.com/a", "v1.0.0")
	var sink eventtest.Recorder
	s := f.service(t, func(o *cacheadmin.Options) { o.Events = &sink })
	if _, err := s.Purge(ctx, "admin 127.0.0.1", cacheadmin.PurgeRequest{Module: "example.com/a"}); err == nil {
		t.Fatal("purge without a reason succeeded")
	}
	if _, err := s.Purge(ctx, "admin 127.0.0.1", cacheadmin.PurgeRequest{Module: "example.com/a", Versions: "v1.0.0", Reason: "leak"}); err != nil {
		t.Fatal(err)
	}
	got := sink.Events()
	if len(got) != 1 {
		t.Fatalf("events %+v, want one", got)
	}
	e := got[0]
	e.Time = e.Time.UTC()
	if e.Type != event.Purged || e.Module != "example.com/a" || e.Version != "v1.0.0" || e.Reason != "leak" || e.Identity != "admin 127.0.0.1" || e.Time.IsZero() {
		t.Errorf("event %+v", e)
	}
}
