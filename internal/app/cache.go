package app

import (
	"path/filepath"
	"slices"
	"time"

	"github.com/modproxy/modproxy/internal/cacheadmin"
	"github.com/modproxy/modproxy/internal/config"
	"github.com/modproxy/modproxy/internal/coord"
	"github.com/modproxy/modproxy/internal/gc"
	"github.com/modproxy/modproxy/internal/index"
	"github.com/modproxy/modproxy/internal/routing"
	"github.com/modproxy/modproxy/internal/trash"
)

// newCache wires the cache administration: [gc] configuration -> its
// Options; blocks it adds are applied to every proxy service.
func (s *Server) newCache(st openedStore, idx *index.Index, tr *trash.Trash, co coord.Coordinator, gate gc.Gate) (*cacheadmin.Service, error) {
	g := s.cfg.GC
	return cacheadmin.New(cacheadmin.Options{
		Store: st.store, Shared: st.shared, StateDir: filepath.Join(s.cfg.CacheDir, "state"),
		Index: idx, Trash: tr, Gate: gate, Audit: s.audit, Metrics: s.metrics, Coordinator: co, Logger: s.log,
		Policy: gc.Policy{MaxBytes: int64(g.MaxSize), MaxIdle: time.Duration(g.MaxIdle), KeepNewest: g.KeepNewest,
			Pins: g.Pins, PinSets: g.PinSets},
		Interval:   time.Duration(g.Interval),
		IndexReady: s.idxRebuild.ready,
		OnBlocks: func(blocks []cacheadmin.Block) {
			rules, err := s.rules(blocks)
			if err != nil {
				s.log.Error("blocks not applied", "err", err)
				return
			}
			s.setBlocked(rules, blocks)
		},
	})
}

// gateFunc is a gc.Gate.
type gateFunc func(mod, version string) (unlock func(), ok bool)

func (f gateFunc) TryLockVersion(mod, version string) (func(), bool) { return f(mod, version) }

// rules are the configured routes, deny and allow rules plus the blocks
// added by purges.
func (s *Server) rules(blocks []cacheadmin.Block) (*routing.Rules, error) {
	deny, err := denyRules(s.cfg.Deny, blocks)
	if err != nil {
		return nil, err
	}
	return routing.New(s.routes, deny, s.cfg.Allow, 0), nil
}

// denyRules are the configured deny rules followed by the blocks.
func denyRules(configured []config.DenyRule, blocks []cacheadmin.Block) ([]routing.Deny, error) {
	rules := slices.Clone(configured)
	for _, b := range blocks {
		rules = append(rules, config.DenyRule{Match: b.Match, Versions: b.Versions, Reason: b.Reason})
	}
	return translateDeny(rules)
}
