// Package cachepolicy decides how fresh a cached mutable answer (@v/list,
// @latest, version queries, checksum database heads) is, and what to do
// about it. It is pure: no clocks, no I/O.
//
// The life of a mutable entry of age A:
//
//	A < TTL                          Fresh: serve it.
//	TTL <= A < TTL+StaleWhileRevalidate
//	                                 Revalidate: serve it now (stale) and
//	                                 refresh it in the background.
//	otherwise                        Refetch: fetch before answering; if the
//	                                 upstream fails (not a not-found answer)
//	                                 and A < StaleIfError, serve it stale.
//
// Immutable entries (canonical .info/.mod/.zip) are always Fresh.
package cachepolicy

import (
	"fmt"
	"time"
)

// Policy holds the freshness settings of one class of mutable entries.
type Policy struct {
	TTL                  time.Duration // how long an answer is fresh
	StaleWhileRevalidate time.Duration // after TTL: serve stale while refreshing in the background
	StaleIfError         time.Duration // max age of an answer served when the upstream fails
	NegativeTTL          time.Duration // how long a 404/410 from upstream is remembered
}

// Default returns the default policy: fresh for a minute, served stale
// while revalidating for ten more, and up to a day old while upstreams
// fail; not-found answers are remembered for a minute.
func Default() Policy {
	return Policy{
		TTL:                  time.Minute,
		StaleWhileRevalidate: 10 * time.Minute,
		StaleIfError:         24 * time.Hour,
		NegativeTTL:          time.Minute,
	}
}

// State is what to do with a cached mutable entry.
type State int

// The states of a cached mutable entry.
const (
	Fresh State = iota
	Revalidate
	Refetch
)

func (s State) String() string {
	switch s {
	case Fresh:
		return "fresh"
	case Revalidate:
		return "revalidate"
	default:
		return "refetch"
	}
}

// Classify returns the state of a mutable entry of the given age.
func (p Policy) Classify(age time.Duration) State {
	switch {
	case age < p.TTL:
		return Fresh
	case age < p.TTL+p.StaleWhileRevalidate:
		return Revalidate
	default:
		return Refetch
	}
}

// ServeStaleOnError reports whether an entry of the given age may be
// served when refreshing it failed.
func (p Policy) ServeStaleOnError(age time.Duration) bool {
	return age < p.StaleIfError
}

// Validate reports settings that make no sense.
func (p Policy) Validate() error {
	switch {
	case p.TTL < 0:
		return fmt.Errorf("ttl must not be negative")
	case p.StaleWhileRevalidate < 0:
		return fmt.Errorf("stale_while_revalidate must not be negative")
	case p.StaleIfError < 0:
		return fmt.Errorf("stale_if_error must not be negative")
	case p.NegativeTTL < 0:
		return fmt.Errorf("negative_ttl must not be negative")
	}
	return nil
}
