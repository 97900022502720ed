// Package eventtest gives tests of packages that emit events a Sink that
// records them.
package eventtest

import (
	"sync"

	"github.com/modproxy/modproxy/internal/event"
)

// Recorder is an event.Sink that keeps every event. Safe for concurrent
// use; the zero value is ready.
type Recorder struct {
	mu  sync.Mutex
	got []event.Event
}

// Emit records e.
func (r *Recorder) Emit(e event.Event) {
	r.mu.Lock()
	r.got = append(r.got, e)
	r.mu.Unlock()
}

// Events returns a copy of what was emitted so far, in order.
func (r *Recorder) Events() []event.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]event.Event(nil), r.got...)
}
