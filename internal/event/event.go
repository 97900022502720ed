// Package event is the vocabulary of notable things that happen in the
// proxy (a version published, a purge, a checksum mismatch, a policy
// block, a breaker that opened) and the Sink they are reported to, so that
// the packages where they happen need not know who listens (outbound
// webhooks, for one). It is a leaf.
package event

import "time"

// Type names a kind of event. Its values are stable: they appear in
// configuration (webhook event lists) and on the wire.
type Type string

// The event types.
const (
	Published   Type = "publish"
	Purged      Type = "purge"
	Mismatch    Type = "checksum_mismatch"
	PolicyBlock Type = "policy_block"
	BreakerOpen Type = "breaker_open"
)

// Types lists every event type, in a stable order.
func Types() []Type {
	return []Type{Published, Purged, Mismatch, PolicyBlock, BreakerOpen}
}

// Event is one occurrence. Fields that do not apply are empty.
type Event struct {
	Type      Type      `json:"type"`
	Time      time.Time `json:"time"`
	Namespace string    `json:"namespace,omitempty"`
	Module    string    `json:"module,omitempty"`
	Version   string    `json:"version,omitempty"`
	Identity  string    `json:"identity,omitempty"` // who caused it, when known
	Upstream  string    `json:"upstream,omitempty"` // redacted upstream URL (breaker events)
	Reason    string    `json:"reason,omitempty"`   // human-readable detail
}

// Sink receives events. Emit must not block the caller for long (a
// webhook dispatcher queues and drops when full) and is safe for
// concurrent use.
type Sink interface {
	Emit(Event)
}

// Discard is a Sink that drops every event.
type Discard struct{}

// Emit drops e.
func (Discard) Emit(Event) {}
