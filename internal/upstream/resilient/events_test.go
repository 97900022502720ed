package resilient_test

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/modproxy/modproxy/internal/event"
	"github.com/modproxy/modproxy/internal/event/eventtest"
	"github.com/modproxy/modproxy/internal/upstream/resilient"
)

// TestBreakerOpenEvent: each opening of the breaker emits one
// event.BreakerOpen naming the upstream, requests skipped while it is
// open emit none, and a failed trial that reopens it emits the next one.
func TestBreakerOpenEvent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const bad = "example.com/bad/@v/list"
		var sink eventtest.Recorder
		opts := resilient.Options{MaxAttempts: 1, MinRequests: 2, FailureRate: 1, Window: time.Minute, OpenDelay: time.Minute, Events: &sink}
		f := resilient.New("http://up.test", newByPath(bad), opts)
		for range 2 {
			_ = fetch(t, f, bad)
		}
		if f.State() != "open" || len(sink.Events()) != 1 {
			t.Fatalf("breaker %s with %d events, want open with 1", f.State(), len(sink.Events()))
		}
		if e := sink.Events()[0]; e.Type != event.BreakerOpen || e.Upstream != "http://up.test" || e.Time.IsZero() {
			t.Errorf("event %+v", e)
		}
		for range 3 {
			_ = fetch(t, f, bad) // skipped
		}
		if n := len(sink.Events()); n != 1 {
			t.Errorf("%d events after skipped requests, want still 1", n)
		}
		time.Sleep(opts.OpenDelay + time.Second)
		_ = fetch(t, f, bad) // the trial fails: open again
		if f.State() != "open" || len(sink.Events()) != 2 {
			t.Errorf("after a failed trial: breaker %s with %d events, want open with 2", f.State(), len(sink.Events()))
		}
	})
}
