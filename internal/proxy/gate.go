package proxy

import (
	"context"
	"sync"
	"time"

	"golang.org/x/mod/module"
)

// VersionGate keeps eviction and serving of a module version apart: every
// Get of a version's file holds it shared until its Result is closed; GC
// takes it exclusively with TryLockVersion and skips a version in use.
// Services sharing a store (namespaces) share one gate.
type VersionGate struct {
	mu sync.Mutex
	m  map[string]*gateEntry
}

type gateEntry struct {
	users    int
	evicting bool
}

// NewVersionGate returns an empty gate.
func NewVersionGate() *VersionGate { return &VersionGate{m: map[string]*gateEntry{}} }

// enter waits while the version is being evicted, then holds it shared.
func (g *VersionGate) enter(ctx context.Context, id string) (func(), error) {
	for {
		g.mu.Lock()
		e := g.m[id]
		if e == nil {
			e = &gateEntry{}
			g.m[id] = e
		}
		if !e.evicting {
			e.users++
			g.mu.Unlock()
			return func() { g.leave(id) }, nil
		}
		g.mu.Unlock()
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Millisecond):
		}
	}
}

func (g *VersionGate) leave(id string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if e := g.m[id]; e != nil {
		e.users--
		if e.users == 0 && !e.evicting {
			delete(g.m, id)
		}
	}
}

// TryLockVersion locks module@version for eviction, or reports false when
// it is being served or filled.
func (s *Service) TryLockVersion(mod, version string) (func(), bool) {
	g := s.gate
	id := mod + "@" + version
	g.mu.Lock()
	defer g.mu.Unlock()
	e := g.m[id]
	if e != nil && (e.users > 0 || e.evicting) {
		return nil, false
	}
	g.m[id] = &gateEntry{evicting: true}
	if esc, err := module.EscapePath(mod); err == nil {
		if ev, err := module.EscapeVersion(version); err == nil {
			for _, ext := range []string{".info", ".mod"} {
				s.mem.del(esc + "/@v/" + ev + ext)
			}
		}
	}
	return func() {
		g.mu.Lock()
		delete(g.m, id)
		g.mu.Unlock()
	}, true
}
