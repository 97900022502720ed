package cacheadmin

import (
	"context"
	"fmt"
	"time"

	"github.com/modproxy/modproxy/internal/gc"
	"github.com/modproxy/modproxy/internal/trash"
)

// defaultFreeCheck is how often Start's loop asks for the free space
// when Options.FreeCheckInterval is not set.
const defaultFreeCheck = 10 * time.Second

// FreeResult says what a low-space reaction (EnsureFree) did.
type FreeResult struct {
	MinFree       int64 // the threshold
	Before, After int64 // free bytes before and after
	// TrashRemoved are the trash batches removed, oldest first.
	TrashRemoved []trash.Manifest
	// Evicted is what the GC runs evicted (moved through the trash and
	// removed with it), across rounds.
	Evicted []gc.Item
	Bytes   int64 // evicted
}

// Low reports whether the free space is still below the threshold.
func (r FreeResult) Low() bool { return r.After < r.MinFree }

// watchesSpace reports whether the low-space reaction is configured.
func (s *Service) watchesSpace() bool { return s.opts.FreeSpace != nil && s.opts.MinFree > 0 }

// EnsureFree is GC's reaction to low free space: when Options.FreeSpace
// reports less than Options.MinFree, it removes trash batches oldest
// first and then, when evicting frees space on that file system
// (Options.EvictForSpace), runs GC with the configured policy plus
// "min-free" evictions of the least recently served versions (pins and
// versions in use are kept), their batches removed from the trash too,
// until the free space is back above the threshold or nothing more can
// go. It does nothing when the space is not watched or not low. Errors
// are those of the free-space function, the index, the store and the
// trash; what was done before one is in the result.
func (s *Service) EnsureFree(ctx context.Context) (FreeResult, error) {
	res := FreeResult{MinFree: s.opts.MinFree}
	if !s.watchesSpace() {
		return res, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	free, err := s.opts.FreeSpace()
	if err != nil {
		return res, fmt.Errorf("free space: %w", err)
	}
	res.Before, res.After = free, free
	s.opts.Metrics.FreeSpace(free, s.opts.MinFree)
	if free >= s.opts.MinFree {
		return res, nil
	}
	var ferr error
	low := func(int64) bool {
		if ferr != nil {
			return false
		}
		res.After, ferr = s.opts.FreeSpace()
		return ferr == nil && res.After < s.opts.MinFree
	}
	purge := func() (int, error) {
		removed, _, err := s.opts.Trash.PurgeWhile(low)
		s.auditTrashPurge(ctx, "gc:min-free", removed, "low free space")
		res.TrashRemoved = append(res.TrashRemoved, removed...)
		if err == nil {
			err = ferr
		}
		return len(removed), err
	}
	if _, err := purge(); err != nil || !s.opts.EvictForSpace {
		return s.spaceDone(res, err)
	}
	for low(0) && ctx.Err() == nil {
		pol := s.policy()
		pol.FreeBytes = s.opts.MinFree - res.After
		plan, err := s.plan(ctx, pol)
		if err != nil {
			s.opts.Metrics.GCRun(false, false)
			return s.spaceDone(res, err)
		}
		run, err := s.runner().Run(ctx, plan, "gc:min-free", "low free space")
		s.opts.Metrics.GCRun(err == nil, false)
		s.lastGC = &run
		res.Evicted = append(res.Evicted, run.Evicted...)
		res.Bytes += run.Bytes
		if err != nil {
			return s.spaceDone(res, err)
		}
		n, err := purge()
		if err != nil || (len(run.Evicted) == 0 && n == 0) {
			return s.spaceDone(res, err) // nothing more can go
		}
	}
	return s.spaceDone(res, ferr)
}

// spaceDone logs what EnsureFree did and updates the gauges.
func (s *Service) spaceDone(res FreeResult, err error) (FreeResult, error) {
	s.opts.Metrics.FreeSpace(res.After, res.MinFree)
	attrs := []any{"free", res.Before, "free_after", res.After, "min_free", res.MinFree,
		"trash_batches_removed", len(res.TrashRemoved), "evicted", len(res.Evicted), "evicted_bytes", res.Bytes}
	switch {
	case err != nil:
		s.log.Error("low free space: gc failed", append(attrs, "err", err)...)
	case res.Low():
		s.log.Warn("low free space: still below gc.min_free after emptying the trash and evicting what may go (pinned or in-use versions, or other files on the disk)", attrs...)
	default:
		s.log.Warn("low free space: gc made room", attrs...)
	}
	return res, err
}

// spaceLoop checks the free space every interval and after stores (a
// signal on s.stored), reacting with EnsureFree. While a reaction could
// not get back above the threshold, stores do not trigger another one
// (each would plan from the whole index for nothing): the next round of
// the interval does.
func (s *Service) spaceLoop(ctx context.Context) {
	every := s.opts.FreeCheckInterval
	if every <= 0 {
		every = defaultFreeCheck
	}
	t := time.NewTicker(every)
	defer t.Stop()
	stuck := false
	check := func() {
		s.bg.Safely("free space check", func() {
			res, err := s.EnsureFree(ctx)
			stuck = err != nil || res.Low()
		})
	}
	check()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			check()
		case <-s.stored:
			if !stuck {
				check()
			}
		}
	}
}
