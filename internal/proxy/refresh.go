package proxy

import (
	"context"
	"strings"
	"sync"
	"time"

	"golang.org/x/mod/module"

	"github.com/modproxy/modproxy/internal/artifact"
	"github.com/modproxy/modproxy/internal/storage"
)

// refreshes remembers, per module path, when its mutable answers were
// last declared out of date (Service.Refresh). An entry is dropped once
// it no longer matters: anything fetched before it is past TTL and
// stale-while-revalidate by then, so the freshness policy refetches it
// anyway.
type refreshes struct {
	mu sync.Mutex
	m  map[string]*refreshMark // by module path
}

// refreshMark is one module's latest refresh.
type refreshMark struct {
	at time.Time
	// refetched holds the keys fetched again since (by this service: file
	// modification times come from a coarser clock, or another machine's,
	// and cannot be compared with at to the millisecond).
	refetched map[string]bool
}

// modTimeSlack: an object whose modification time is this much after a
// refresh was certainly fetched after it (by another replica, say).
const modTimeSlack = time.Second

// Refresh drops the freshness of module's cached list, @latest and
// version queries: the next request for one of them fetches it upstream
// before answering (and if the upstream fails, a stale copy is served as
// stale_if_error allows), as if its TTL had run out. Remembered not-found
// answers for the module's paths are forgotten too, so a module or
// version that has just been created is fetched. An invalid module path
// is an error (module.CheckPath's). Safe for concurrent use; it does not
// block on anything but a mutex.
func (s *Service) Refresh(mod string) error {
	if err := module.CheckPath(mod); err != nil {
		return err
	}
	esc, err := module.EscapePath(mod)
	if err != nil {
		return err
	}
	now := s.opts.Now()
	horizon := s.opts.Policy.TTL + s.opts.Policy.StaleWhileRevalidate
	r := &s.refreshed
	r.mu.Lock()
	if r.m == nil {
		r.m = map[string]*refreshMark{}
	}
	for k, m := range r.m {
		if now.Sub(m.at) > horizon {
			delete(r.m, k)
		}
	}
	r.m[mod] = &refreshMark{at: now, refetched: map[string]bool{}}
	r.mu.Unlock()
	s.neg.delPrefix(esc+"/@", s.opts.MutablePrefix+esc+"/@")
	return nil
}

// refreshedSince reports whether req is a mutable answer whose module was
// refreshed after obj was fetched (see Refresh): obj is not clearly newer
// than the refresh, and this service has not fetched req again since. It
// returns ctx for the refetch (a fill coordinated with other replicas
// does not take an object stored before the refresh for one just
// filled) and a function to call once req has been fetched again (the
// fetch started at start), or nil.
func (s *Service) refreshedSince(ctx context.Context, req artifact.Request, obj storage.Object) (context.Context, func(start time.Time)) {
	if req.Kind != artifact.List && req.Kind != artifact.Latest && req.Kind != artifact.Query {
		return ctx, nil
	}
	r := &s.refreshed
	r.mu.Lock()
	defer r.mu.Unlock()
	m, ok := r.m[req.Module]
	if !ok || m.refetched[req.Key] || obj.Info().ModTime.After(m.at.Add(modTimeSlack)) {
		return ctx, nil
	}
	return context.WithValue(ctx, refreshedAtKey{}, m.at), func(start time.Time) {
		r.mu.Lock()
		defer r.mu.Unlock()
		if !start.Before(m.at) && r.m[req.Module] == m {
			m.refetched[req.Key] = true
		}
	}
}

// refreshedAtKey is the context key of the refresh time a refetch
// follows (see filledSince).
type refreshedAtKey struct{}

// notBefore is the earliest modification time of an object that a fill
// started at start takes as filled by another replica.
func notBefore(ctx context.Context, start time.Time) time.Time {
	t := start.Add(-time.Second) // clocks of replicas and the store differ a little
	if at, ok := ctx.Value(refreshedAtKey{}).(time.Time); ok && at.After(t) {
		t = at
	}
	return t
}

// delPrefix forgets every remembered answer whose key starts with one of
// prefixes.
func (c *negCache) delPrefix(prefixes ...string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k := range c.m {
		for _, p := range prefixes {
			if strings.HasPrefix(k, p) {
				delete(c.m, k)
				break
			}
		}
	}
}
