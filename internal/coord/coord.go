// Package coord defines how modproxy replicas coordinate: named locks with
// a lease (one replica fills a cold artifact, one replica runs GC) and a
// broadcast channel (invalidations). The Redis implementation lives in
// coord/rediscoord; coord/coordtest starts a real redis-server for tests.
//
// Locks carry no fencing token that the store checks: what they protect
// is made idempotent instead. A fill writes content that is immutable and
// verified against the checksum database, so two replicas that both fill
// (after a lease expired under a stalled holder) write identical bytes; a
// GC run that overlaps another can only try to evict what is already gone.
// The lock only removes duplicate work.
package coord

import (
	"context"
	"errors"
	"time"
)

// ErrUnavailable wraps errors of an unreachable coordinator; callers fall
// back to working alone (per-process coalescing), never fail a request.
var ErrUnavailable = errors.New("coordinator unavailable")

// Lock is a held lease. It is renewed in the background until Release
// (or until the coordinator is closed).
type Lock interface {
	// Release gives the lock up (if still held). When it returns, the
	// renewal has stopped.
	Release(ctx context.Context) error
	// Lost is closed if the lease could not be renewed and may now be held
	// by another replica.
	Lost() <-chan struct{}
}

// Coordinator is the contract.
type Coordinator interface {
	// TryLock takes the named lock for ttl (renewed while held) or reports
	// false when another replica holds it.
	TryLock(ctx context.Context, name string, ttl time.Duration) (Lock, bool, error)
	// Publish broadcasts msg to every replica's Subscribe (including this one).
	Publish(ctx context.Context, msg string) error
	// Subscribe calls fn for every message, one at a time, until ctx is
	// done, reconnecting by itself; then it returns, and fn is not called
	// any more. The caller owns the goroutine that runs it.
	Subscribe(ctx context.Context, fn func(msg string))
	// Ping reports whether the coordinator is reachable.
	Ping(ctx context.Context) error
	// PushAccess merges this replica's access statistics (latest access
	// wins, hits add up) into the cluster's.
	PushAccess(ctx context.Context, stats map[string]Access) error
	// PullAccess returns the cluster's access statistics.
	PullAccess(ctx context.Context) (map[string]Access, error)
}

// Access is an object's access statistics.
type Access struct {
	Last time.Time
	Hits int64
}
