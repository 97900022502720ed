package cacheadmin

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"time"

	"golang.org/x/mod/module"

	"github.com/modproxy/modproxy/internal/audit"
	"github.com/modproxy/modproxy/internal/event"
	"github.com/modproxy/modproxy/internal/gc"
	"github.com/modproxy/modproxy/internal/routing"
	"github.com/modproxy/modproxy/internal/trash"
)

// policy is the configured policy with the pins added through the
// service. Called with mu held.
func (s *Service) policy() gc.Policy {
	p := s.opts.Policy
	p.Pins = append(slices.Clone(p.Pins), s.pins.Patterns...)
	p.PinSets = append(slices.Clone(p.PinSets), s.pins.Sets...)
	return p
}

func (s *Service) runner() *gc.Runner {
	o := s.opts
	return &gc.Runner{Store: o.Store, Index: o.Index, Trash: o.Trash, Gate: o.Gate, Audit: o.Audit, Metrics: o.Metrics}
}

// Plan makes a GC plan from the current index (a dry run).
func (s *Service) Plan(ctx context.Context) (gc.Plan, error) {
	if err := s.indexReady(ctx); err != nil {
		return gc.Plan{}, err
	}
	s.mu.Lock()
	pol := s.policy()
	s.mu.Unlock()
	plan, err := s.plan(ctx, pol)
	s.opts.Metrics.GCRun(err == nil, true)
	return plan, err
}

func (s *Service) plan(ctx context.Context, pol gc.Policy) (gc.Plan, error) {
	view, err := s.planIndex(ctx)
	if err != nil {
		return gc.Plan{}, err
	}
	return gc.MakePlan(view, pol, time.Now())
}

// RunGC plans and runs GC, then purges the trash by age and size and,
// with a size cap, oldest first while objects and trash together exceed
// it (pinned or in-use versions kept over the objects' share). actor
// names who asked, in the audit log.
func (s *Service) RunGC(ctx context.Context, actor string) (gc.Result, error) {
	if err := s.indexReady(ctx); err != nil {
		return gc.Result{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	pol := s.policy()
	plan, err := s.plan(ctx, pol)
	if err != nil {
		s.opts.Metrics.GCRun(false, false)
		return gc.Result{}, err
	}
	res, err := s.runner().Run(ctx, plan, actor, "gc")
	s.opts.Metrics.GCRun(err == nil, false)
	s.purgeTrash(ctx, actor, pol, plan.StoreBytes-res.Bytes)
	s.lastGC = &res
	if err == nil {
		s.log.Info("gc done", "actor", actor, "evicted", len(res.Evicted), "bytes", res.Bytes, "skipped_in_use", len(res.Skipped), "trash", res.TrashID)
	}
	return res, err
}

// purgeTrash removes trash batches past their retention or beyond the
// trash's bound and, with a size cap, the oldest while the trash exceeds
// its share of the cap or the objects (the module cache as the plan
// counts it, gc.Counted: objects, the run's evictions deducted) and the
// trash together exceed the cap. Called with mu held, after a run.
func (s *Service) purgeTrash(ctx context.Context, actor string, pol gc.Policy, objects int64) {
	removed, _, err := s.opts.Trash.Purge()
	if err != nil {
		s.log.Error("trash purge failed", "err", err)
	}
	s.auditTrashPurge(ctx, actor, removed, "retention or size bound")
	if pol.MaxBytes <= 0 {
		return
	}
	removed, _, err = s.opts.Trash.PurgeWhile(func(held int64) bool {
		return (pol.TrashMaxBytes > 0 && held > pol.TrashMaxBytes) || objects+held > pol.MaxBytes
	})
	if err != nil {
		s.log.Error("trash purge failed", "err", err)
	}
	s.auditTrashPurge(ctx, actor, removed, "size cap (objects and trash)")
}

func (s *Service) auditTrashPurge(ctx context.Context, actor string, removed []trash.Manifest, reason string) {
	for _, m := range removed {
		_ = s.opts.Audit.RecordContext(ctx, audit.Event{Actor: actor, Action: "trash-purge", Target: m.ID, Reason: reason, Bytes: m.Bytes})
	}
}

// scheduledGC is one round of the GC schedule. With a coordinator, only
// the GC leader runs it: the replica holding the "gc-leader" lock, which
// keeps it (renewed) while it lives; the others try to take over at every
// round. If the coordinator is unreachable, every replica runs GC on its
// own (safe: evicting what is gone is a no-op).
func (s *Service) scheduledGC(ctx context.Context) {
	if c := s.opts.Coordinator; c != nil {
		if s.leader != nil {
			select {
			case <-s.leader.Lost():
				s.log.Warn("lost GC leadership")
				s.leader = nil
			default:
			}
		}
		if s.leader == nil {
			lock, ok, err := c.TryLock(ctx, "gc-leader", max(3*s.opts.Interval, 30*time.Second))
			switch {
			case ctx.Err() != nil:
				return
			case err != nil:
				s.log.Warn("cluster coordination unavailable: running gc without leader election", "err", err)
			case !ok:
				return // another replica leads
			default:
				s.leader = lock
				s.log.Info("this replica is the GC leader")
			}
		}
	}
	switch _, err := s.RunGC(ctx, "gc:schedule"); {
	case errors.Is(err, ErrUnavailable):
		s.log.Info("scheduled gc postponed to its next round", "reason", err)
	case err != nil:
		s.log.Error("scheduled gc failed", "err", err)
	}
}

// PurgeRequest removes a module, one version or a range of versions now.
type PurgeRequest struct {
	Module   string
	Versions string // "" all, "v1.2.3", or a range ">=v1.0.0 <v1.2.0"
	Reason   string // required
	Block    bool   // refuse fetching them again (a Block with status 403)
	Hard     bool   // delete instead of keeping the trash batch
	// AllowRepublish lets purged versions of a hosted module be published
	// again (with any content); without it they stay refused (Hosted).
	AllowRepublish bool
}

// PurgeResult says what a purge did.
type PurgeResult struct {
	Versions []string // evicted
	Bytes    int64
	TrashID  string // "" when nothing was moved or the purge was hard
	Blocked  bool
}

// Purge evicts the versions req names now (whole versions, through the
// trash), blocking them first when asked. A bad request is ErrInvalid.
// Versions being served or filled are skipped: then the others are
// evicted and the error is ErrConflict (purge again).
func (s *Service) Purge(ctx context.Context, actor string, req PurgeRequest) (PurgeResult, error) {
	if strings.TrimSpace(req.Reason) == "" {
		return PurgeResult{}, fmt.Errorf("%w: a reason is required", ErrInvalid)
	}
	if err := module.CheckPath(req.Module); err != nil {
		return PurgeResult{}, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	rg, err := routing.ParseRange(req.Versions)
	if err != nil {
		return PurgeResult{}, fmt.Errorf("%w: versions: %w", ErrInvalid, err)
	}
	if err := s.indexReady(ctx); err != nil {
		return PurgeResult{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.opts.Index.Flush()
	vers, err := gc.Versions(s.opts.Index)
	if err != nil {
		return PurgeResult{}, err
	}
	plan := gc.Plan{Created: time.Now()}
	for _, v := range vers {
		if v.Module == req.Module && (rg.Empty() || rg.Contains(v.Version)) {
			plan.Items = append(plan.Items, gc.Item{Entry: v, Reason: "purge"})
		}
	}
	out := PurgeResult{Versions: []string{}}
	// Hosted versions are marked first: a purge that cannot record them
	// (another replica holds the hosted log, the coordinator is down)
	// evicts nothing, instead of leaving listed versions without files.
	if h := s.opts.Hosted; h != nil && h.IsHosted(req.Module) {
		match := func(v string) bool { return rg.Empty() || rg.Contains(v) }
		if err := h.Purged(ctx, actor, req.Module, match, req.Reason, req.AllowRepublish); err != nil {
			return out, fmt.Errorf("%w: recording the purge of hosted versions (nothing was evicted): %w", ErrUnavailable, err)
		}
	}
	if req.Block {
		blocks := append(slices.Clone(s.blocks), Block{Match: req.Module, Versions: req.Versions, Reason: "purged: " + req.Reason})
		if err := s.saveState(ctx, blockedFile, blocks); err != nil {
			return out, err
		}
		s.blocks = blocks
		s.notifyBlocks()
		out.Blocked = true
	}
	res, err := s.runner().Run(ctx, plan, actor, "purge: "+req.Reason)
	for _, it := range res.Evicted {
		out.Versions = append(out.Versions, it.Version)
	}
	out.Bytes = res.Bytes
	out.TrashID = res.TrashID
	if err != nil {
		return out, err
	}
	if len(res.Skipped) > 0 {
		return out, fmt.Errorf("%w: %d versions are being served or filled; purge again", ErrConflict, len(res.Skipped))
	}
	if req.Hard && res.TrashID != "" {
		if err := s.opts.Trash.Remove(res.TrashID); err != nil {
			return out, err
		}
		out.TrashID = ""
	}
	_ = s.opts.Audit.RecordContext(ctx, audit.Event{Actor: actor, Action: "purge", Target: req.Module + "@" + req.Versions,
		Reason: req.Reason, Bytes: res.Bytes})
	s.opts.Events.Emit(event.Event{Type: event.Purged, Time: time.Now().UTC(), Module: req.Module, Version: req.Versions,
		Identity: actor, Reason: req.Reason})
	return out, nil
}

// Trash lists the trash batches, oldest first.
func (s *Service) Trash(ctx context.Context) ([]trash.Manifest, error) {
	return s.opts.Trash.List()
}

// Restore moves trash batch id back into the store and the index; an
// unknown id is ErrNotFound.
func (s *Service) Restore(ctx context.Context, actor, id string) (trash.Manifest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, err := s.opts.Trash.Restore(ctx, id, s.opts.Store)
	if errors.Is(err, fs.ErrNotExist) {
		return trash.Manifest{}, fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	for _, k := range m.Keys {
		if info, serr := s.opts.Store.Stat(ctx, k); serr == nil {
			s.opts.Index.Stored(k, info.Size, info.ModTime)
		}
	}
	s.opts.Index.Flush()
	_ = s.opts.Audit.RecordContext(ctx, audit.Event{Actor: actor, Action: "restore", Target: id, Reason: strings.Join(m.Versions, " "), Bytes: m.Bytes})
	return m, err
}
