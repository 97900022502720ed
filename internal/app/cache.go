package app

import (
	"path/filepath"
	"slices"
	"time"

	"github.com/modproxy/modproxy/internal/cacheadmin"
	"github.com/modproxy/modproxy/internal/config"
	"github.com/modproxy/modproxy/internal/coord"
	"github.com/modproxy/modproxy/internal/diskspace"
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
		Index: idx, Trash: tr, Gate: gate, Audit: s.audit, Metrics: s.metrics, Coordinator: co, Logger: s.log, Events: s.events,
		Policy: gc.Policy{MaxBytes: int64(g.MaxSize), MaxIdle: time.Duration(g.MaxIdle), KeepNewest: g.KeepNewest,
			Pins: s.hosted.pins(g.Pins, s.cfg), PinSets: g.PinSets, TrashMaxBytes: g.TrashLimit()},
		Interval:      time.Duration(g.Interval),
		FreeSpace:     s.freeSpace(),
		MinFree:       int64(g.MinFree),
		EvictForSpace: st.local,
		IndexReady:    s.idxRebuild.ready,
		OnRefresh:     s.refreshModule,
		Hosted:        s.hosted.purges(),
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

// freeSpace returns the free-space function of cache_dir's file system
// for gc.min_free, or nil (logged) when it is off or cannot be read here.
func (s *Server) freeSpace() func() (int64, error) {
	minFree := int64(s.cfg.GC.MinFree)
	if minFree <= 0 {
		return nil
	}
	dir := s.cfg.CacheDir
	sp, err := diskspace.Of(dir)
	if err != nil {
		s.log.Warn("gc.min_free is not enforced: the free space of cache_dir cannot be read", "cache_dir", dir, "err", err)
		return nil
	}
	if sp.Size < 4*minFree {
		s.log.Warn("gc.min_free is more than a quarter of the file system holding cache_dir: GC keeps that much free, evicting what it must; lower gc.min_free on a small disk",
			"min_free", minFree, "fs_size", sp.Size, "free", sp.Free)
	}
	return func() (int64, error) {
		sp, err := diskspace.Of(dir)
		return sp.Free, err
	}
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
