package cacheadmin

import (
	"context"
	"sync"
	"time"

	"github.com/modproxy/modproxy/internal/coord"
	"github.com/modproxy/modproxy/internal/gc"
	"github.com/modproxy/modproxy/internal/index"
)

// planIndex is the index GC plans from. Alone, it is the local index. On
// a shared store with a coordinator, the local index is first rebuilt
// from the store (other replicas fill it too) and the access statistics
// of every replica are merged in, so that eviction sees the cluster's use.
func (s *Service) planIndex(ctx context.Context) (gc.Index, error) {
	s.pushAccess(ctx)
	idx := s.opts.Index
	idx.Flush()
	c := s.opts.Coordinator
	if c == nil || !s.opts.Shared {
		return idx, nil
	}
	if err := idx.Rebuild(ctx, s.opts.Store); err != nil {
		return nil, err
	}
	remote, err := c.PullAccess(ctx)
	if err != nil {
		s.log.Warn("cluster access statistics unavailable: planning GC from this replica's alone", "err", err)
		return idx, nil
	}
	return mergedIndex{Index: idx, remote: remote}, nil
}

// mergedIndex overlays the cluster's access statistics on the local index.
type mergedIndex struct {
	Index
	remote map[string]coord.Access
}

func (m mergedIndex) All(fn func(key string, r index.Record) error) error {
	return m.Index.All(func(key string, r index.Record) error {
		if a, ok := m.remote[key]; ok {
			if a.Last.After(r.LastAccess) {
				r.LastAccess = a.Last
			}
			if a.Hits > r.Hits {
				r.Hits = a.Hits
			}
		}
		return fn(key, r)
	})
}

// touched collects this replica's accesses for the cluster.
type touched struct {
	mu sync.Mutex
	m  map[string]coord.Access
}

func (t *touched) add(key string, at time.Time) {
	t.mu.Lock()
	a := t.m[key]
	a.Hits++
	if at.After(a.Last) {
		a.Last = at
	}
	t.m[key] = a
	t.mu.Unlock()
}

func (t *touched) take() map[string]coord.Access {
	t.mu.Lock()
	defer t.mu.Unlock()
	m := t.m
	t.m = map[string]coord.Access{}
	return m
}

// pushAccess sends what this replica served since the last push.
func (s *Service) pushAccess(ctx context.Context) {
	if s.access == nil {
		return
	}
	m := s.access.take()
	if len(m) == 0 {
		return
	}
	if err := s.opts.Coordinator.PushAccess(ctx, m); err != nil {
		s.log.Warn("could not share access statistics with the cluster", "err", err)
	}
}
