package proxy

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/modproxy/modproxy/internal/artifact"
	"github.com/modproxy/modproxy/internal/checksum"
)

// SumPrefetcher is an optional capability of a Verifier (checksum.Verifier
// has it): reading what a later Verify of path@version needs into the
// cache, without checking or admitting anything. See sumPrefetch.
type SumPrefetcher interface {
	Prefetch(ctx context.Context, path, version string) error
}

// Bounds of the checksum database prefetch.
const (
	sumPrefetchMax     = 16               // prefetches in flight; more are skipped
	sumPrefetchTimeout = 30 * time.Second // one prefetch
	sumPrefetchRecent  = 4096             // successful prefetches remembered (then forgotten all at once)
)

// sumPrefetches tracks the checksum database prefetches of a Service:
// which module versions are in flight (so a version's .info, .mod and .zip
// misses start one between them) and which succeeded lately. Failures are
// not remembered: the next miss tries again.
type sumPrefetches struct {
	mu       sync.Mutex
	inflight map[string]bool
	recent   map[string]bool
	ctx      context.Context // done at Close
	cancel   context.CancelFunc
}

func newSumPrefetches() *sumPrefetches {
	ctx, cancel := context.WithCancel(context.Background())
	return &sumPrefetches{inflight: map[string]bool{}, recent: map[string]bool{}, ctx: ctx, cancel: cancel}
}

// sumPrefetch starts, in the background, the checksum database lookup that
// the verification of req's module version will need, when req (an .info,
// .mod or .zip) is about to be filled: the lookup then runs concurrently
// with the upstream fetch, and the fill's Verify, whose reads of the same
// files coalesce with the prefetch's (Service.Get's singleflight) or find
// them cached, waits only for whichever finishes last. Verification itself
// is unchanged: nothing is admitted before Verify passes.
//
// Nothing is started when verification is off, for private modules, for a
// version already in flight or prefetched lately, when sumPrefetchMax
// prefetches are in flight (the fill then reads the database itself), or
// once Close has begun; Close cancels prefetches in flight and waits for
// them.
func (s *Service) sumPrefetch(req artifact.Request) {
	p, ok := s.opts.Verifier.(SumPrefetcher)
	if !ok || (req.Kind != artifact.Info && req.Kind != artifact.Mod && req.Kind != artifact.Zip) {
		return
	}
	if s.opts.Private != nil && s.opts.Private(req.Module) {
		return
	}
	mv := req.Module + "@" + req.Version
	sp := s.sumPre
	sp.mu.Lock()
	if sp.inflight[mv] || sp.recent[mv] || len(sp.inflight) >= sumPrefetchMax {
		sp.mu.Unlock()
		return
	}
	sp.inflight[mv] = true
	sp.mu.Unlock()
	started := s.goBackground(func() {
		ctx, cancel := context.WithTimeout(sp.ctx, sumPrefetchTimeout)
		defer cancel()
		err := p.Prefetch(ctx, req.Module, req.Version)
		sp.mu.Lock()
		delete(sp.inflight, mv)
		if err == nil {
			if len(sp.recent) >= sumPrefetchRecent {
				clear(sp.recent)
			}
			sp.recent[mv] = true
		}
		sp.mu.Unlock()
		if err != nil && !errors.Is(err, checksum.ErrPrivate) && sp.ctx.Err() == nil {
			s.log.Debug("checksum database prefetch failed (the fill's verification reads it again)", "module", req.Module, "version", req.Version, "err", err)
		}
	})
	if !started {
		sp.mu.Lock()
		delete(sp.inflight, mv)
		sp.mu.Unlock()
	}
}
