package cacheadmin

import (
	"fmt"
	"sync"
	"time"
)

// Defaults of Options.RefreshEvery and RefreshBurst: a push of many
// modules at once passes, a caller in a loop is slowed to one a second.
const (
	defaultRefreshEvery = time.Second
	defaultRefreshBurst = 60
)

// maxLimited bounds the identities whose refresh budget is remembered;
// beyond it the full budgets (equivalent to none) are forgotten, and if
// that is not enough, all of them.
const maxLimited = 10_000

// RateLimitError is a refresh refused because its identity asked for too
// many in too short a time (see RefreshRequest.Identity). RetryAfter is
// when the next one is allowed.
type RateLimitError struct {
	Identity string
	Wait     time.Duration
}

func (e *RateLimitError) Error() string {
	return fmt.Sprintf("too many refreshes by %s: retry in %s", e.Identity, e.Wait.Round(time.Millisecond))
}

// RetryAfter returns how long the caller should wait before asking again.
func (e *RateLimitError) RetryAfter() time.Duration { return e.Wait }

// rateLimiter is a token bucket per identity: burst tokens, one more
// every every. The zero value is ready; safe for concurrent use.
type rateLimiter struct {
	mu sync.Mutex
	m  map[string]*bucket
}

type bucket struct {
	tokens float64 // at last
	last   time.Time
}

// take spends a token of id at now, or returns how long until one is
// there.
func (l *rateLimiter) take(id string, now time.Time, every time.Duration, burst int) (wait time.Duration, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.m[id]
	if b == nil {
		if l.m == nil {
			l.m = map[string]*bucket{}
		}
		if len(l.m) >= maxLimited {
			for k, o := range l.m {
				if o.refilled(now, every, burst) >= float64(burst) {
					delete(l.m, k)
				}
			}
			if len(l.m) >= maxLimited {
				clear(l.m)
			}
		}
		b = &bucket{tokens: float64(burst), last: now}
		l.m[id] = b
	}
	b.tokens, b.last = b.refilled(now, every, burst), now
	if b.tokens >= 1 {
		b.tokens--
		return 0, true
	}
	return time.Duration((1 - b.tokens) * float64(every)), false
}

// refilled returns b's tokens at now.
func (b *bucket) refilled(now time.Time, every time.Duration, burst int) float64 {
	t := b.tokens
	if d := now.Sub(b.last); d > 0 {
		t += float64(d) / float64(every)
	}
	return min(t, float64(burst))
}

// refreshAllowed spends a refresh of id ("" is not limited), or returns
// a *RateLimitError.
func (s *Service) refreshAllowed(id string) error {
	if id == "" {
		return nil
	}
	every, burst := s.opts.RefreshEvery, s.opts.RefreshBurst
	if every <= 0 {
		every = defaultRefreshEvery
	}
	if burst <= 0 {
		burst = defaultRefreshBurst
	}
	if wait, ok := s.refreshLimit.take(id, time.Now(), every, burst); !ok {
		return &RateLimitError{Identity: id, Wait: wait}
	}
	return nil
}
