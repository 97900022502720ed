package proxy

import (
	"container/list"
	"context"
	"sync"
	"time"

	"golang.org/x/mod/module"

	"github.com/modproxy/modproxy/internal/artifact"
	"github.com/modproxy/modproxy/internal/storage"
)

// refreshes remembers, per module path, when its mutable answers were
// last declared out of date (Service.Refresh). An entry is dropped once
// it no longer matters (anything fetched before it is past TTL and
// stale-while-revalidate by then, so the freshness policy refetches it
// anyway), and the oldest entries are dropped beyond maxRefreshMarks.
type refreshes struct {
	mu sync.Mutex
	// seq counts the refreshes so far: a fill notes it when it starts, so
	// that a fill that began before a refresh is never taken for a fetch
	// that follows it (whatever the clocks say).
	seq   uint64
	m     map[string]*list.Element // by module path; values *refreshMark
	order list.List                // of *refreshMark, least recently refreshed first
}

// maxRefreshMarks bounds the remembered refreshes: beyond it the oldest
// is forgotten (that module's answers are then refetched when their TTL
// runs out, as without a refresh).
const maxRefreshMarks = 10_000

// refreshMark is one module's latest refresh.
type refreshMark struct {
	mod string
	at  time.Time
	seq uint64 // refreshes.seq once this refresh was counted
	// fetched holds the keys this service has fetched since the refresh
	// marked, by whether their fetch began after it (true) or before it
	// and ended after it (false: refetch; its modification time says
	// nothing). File modification times come from a coarser clock, or
	// another machine's, and cannot be compared with at to the
	// millisecond.
	fetched map[string]bool
}

// modTimeSlack: an object whose modification time is this much after a
// refresh was certainly fetched after it (by another replica, say).
const modTimeSlack = time.Second

// Refresh drops the freshness of module's cached list, @latest and
// version queries: the next request for one of them fetches it upstream
// before answering (and if the upstream fails, a stale copy is served as
// stale_if_error allows), as if its TTL had run out; a fetch of one of
// them already under way does not count, it began before the refresh.
// Remembered not-found answers for the module's paths are forgotten too,
// so a module or version that has just been created is fetched. An
// invalid module path is an error (module.CheckPath's). Safe for
// concurrent use; it does not block on anything but a mutex, and its cost
// does not grow with the number of remembered refreshes or not-founds.
func (s *Service) Refresh(mod string) error {
	if err := module.CheckPath(mod); err != nil {
		return err
	}
	now := s.opts.Now()
	s.refreshed.add(mod, now, s.opts.Policy.TTL+s.opts.Policy.StaleWhileRevalidate)
	s.neg.delModule(mod)
	return nil
}

// add marks mod refreshed at now, and forgets the marks older than
// horizon and those beyond maxRefreshMarks (the least recent first).
func (r *refreshes) add(mod string, now time.Time, horizon time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.m == nil {
		r.m = map[string]*list.Element{}
	}
	r.seq++
	if e, ok := r.m[mod]; ok {
		r.order.Remove(e)
	}
	r.m[mod] = r.order.PushBack(&refreshMark{mod: mod, at: now, seq: r.seq, fetched: map[string]bool{}})
	for e := r.order.Front(); e != nil; e = r.order.Front() {
		m := e.Value.(*refreshMark)
		if len(r.m) <= maxRefreshMarks && now.Sub(m.at) <= horizon {
			break
		}
		r.order.Remove(e)
		delete(r.m, m.mod)
	}
}

// started returns the count of refreshes so far, for a fill that starts.
func (r *refreshes) started() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.seq
}

// filled records that req was fetched and stored by a fill that began
// when started returned seq.
func (r *refreshes) filled(req artifact.Request, seq uint64) {
	if !refreshable(req) {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if e, ok := r.m[req.Module]; ok {
		m := e.Value.(*refreshMark)
		m.fetched[req.Key] = seq >= m.seq
	}
}

// len returns the number of remembered refreshes (for tests).
func (r *refreshes) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.m)
}

func refreshable(req artifact.Request) bool {
	return req.Kind == artifact.List || req.Kind == artifact.Latest || req.Kind == artifact.Query
}

// refreshedSince reports whether req is a mutable answer whose module was
// refreshed after obj was fetched (see Refresh): this service has not
// fetched req since with a fetch that began after the refresh, and
// either fetched it with one that began before, or obj is not clearly
// newer than the refresh. It returns ctx for the refetch (a fill
// coordinated with other replicas does not take an object stored before
// the refresh for one just filled), the refresh's count: a fill that
// began before it (see refreshes.started) does not satisfy the refetch,
// and ok.
func (s *Service) refreshedSince(ctx context.Context, req artifact.Request, obj storage.Object) (_ context.Context, seq uint64, ok bool) {
	if !refreshable(req) {
		return ctx, 0, false
	}
	r := &s.refreshed
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.m[req.Module]
	if !ok {
		return ctx, 0, false
	}
	m := e.Value.(*refreshMark)
	if after, seen := m.fetched[req.Key]; after || !seen && obj.Info().ModTime.After(m.at.Add(modTimeSlack)) {
		return ctx, 0, false
	}
	return context.WithValue(ctx, refreshedAtKey{}, m.at), m.seq, true
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
