// Package clients counts protocol traffic per identity: requests, bytes
// sent, when each identity was last seen and the module it last asked
// for. The set of identities is bounded: the first Max distinct names get
// their own entry, every later one is counted under Other, so that a
// stream of names (a misconfigured client, many short-lived tokens) can
// neither grow memory nor explode a metrics label. Requests without an
// identity (authentication off) are counted under Anonymous.
//
// A Tracker is safe for concurrent use. Observe takes no lock shared
// between identities: it reads an immutable map (replaced, copied, when an
// identity is first seen) and locks only the entry it updates.
package clients

import (
	"cmp"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Names of the aggregate entries. Token and certificate mapping names
// cannot be these (package access reserves them).
const (
	Anonymous = "anonymous"
	Other     = "other"
)

// DefaultMax is the number of identities a Tracker tracks by name when
// New is given no bound.
const DefaultMax = 100

// Client is one identity's traffic since the server started.
type Client struct {
	Identity   string
	Requests   int64
	Bytes      int64
	LastSeen   time.Time
	LastModule string // "" when its requests named no module (checksum database paths)
}

// Tracker counts traffic per identity.
type Tracker struct {
	max     int
	entries atomic.Pointer[map[string]*entry]
	mu      sync.Mutex // serialises additions to entries
}

type entry struct {
	mu sync.Mutex
	c  Client
}

// New returns a Tracker that tracks at most max identities by name
// (DefaultMax when max <= 0), Anonymous and Other not included.
func New(max int) *Tracker {
	if max <= 0 {
		max = DefaultMax
	}
	t := &Tracker{max: max}
	m := map[string]*entry{}
	t.entries.Store(&m)
	return t
}

// Observe counts one request of identity ("" is Anonymous) that sent
// bytes and, when module is not "", asked for module, at time at. A nil
// Tracker does nothing.
func (t *Tracker) Observe(identity, module string, bytes int64, at time.Time) {
	if t == nil {
		return
	}
	if identity == "" {
		identity = Anonymous
	}
	e := (*t.entries.Load())[identity]
	if e == nil {
		e = t.add(identity)
	}
	e.mu.Lock()
	e.c.Requests++
	e.c.Bytes += bytes
	if at.After(e.c.LastSeen) {
		e.c.LastSeen = at
	}
	if module != "" {
		e.c.LastModule = module
	}
	e.mu.Unlock()
}

// add returns the entry of identity, creating it (or Other's, when the
// bound is reached).
func (t *Tracker) add(identity string) *entry {
	t.mu.Lock()
	defer t.mu.Unlock()
	old := *t.entries.Load()
	if e := old[identity]; e != nil {
		return e
	}
	named := len(old)
	for _, n := range []string{Anonymous, Other} {
		if old[n] != nil {
			named--
		}
	}
	if identity != Anonymous && identity != Other && named >= t.max {
		identity = Other
		if e := old[identity]; e != nil {
			return e
		}
	}
	m := make(map[string]*entry, len(old)+1)
	for k, v := range old {
		m[k] = v
	}
	e := &entry{c: Client{Identity: identity}}
	m[identity] = e
	t.entries.Store(&m)
	return e
}

// Clients returns every entry, most requests first (then by name).
func (t *Tracker) Clients() []Client {
	if t == nil {
		return nil
	}
	m := *t.entries.Load()
	out := make([]Client, 0, len(m))
	for _, e := range m {
		e.mu.Lock()
		out = append(out, e.c)
		e.mu.Unlock()
	}
	slices.SortFunc(out, func(a, b Client) int {
		if c := cmp.Compare(b.Requests, a.Requests); c != 0 {
			return c
		}
		return cmp.Compare(a.Identity, b.Identity)
	})
	return out
}
