package proxy

import (
	"context"
	"errors"
	iofs "io/fs"
	"strings"
	"sync"
	"time"

	"github.com/modproxy/modproxy/internal/artifact"
)

// Bounds of warming.
const (
	warmMax     = 8               // module versions warmed at once; more are skipped
	warmTimeout = 5 * time.Minute // one module version
)

// warmups tracks the warmings of a Service (Options.Warm): which module
// versions are being warmed, so that a version is warmed once at a time.
// Nothing is remembered after a warming ends: a later miss (there is none
// once the files are stored) starts another.
type warmups struct {
	mu       sync.Mutex
	inflight map[string]bool
	wg       sync.WaitGroup  // warmings started (tests wait for them)
	ctx      context.Context // done at Close
	cancel   context.CancelFunc
}

func newWarmups() *warmups {
	ctx, cancel := context.WithCancel(context.Background())
	return &warmups{inflight: map[string]bool{}, ctx: ctx, cancel: cancel}
}

// warm fills, in the background, the files of req's module version that
// the go command asks for after req, when req (a canonical .mod or .info)
// is about to be filled and Options.Warm is set: after a .mod, the .info
// and the .zip; after an .info, the .zip. `go mod download` and builds read
// every go.mod of the module graph first and then, for the modules they
// need, the .info and the .zip, each a round trip of their own: warmed,
// those are hits. The cost is upstream traffic for the zips of modules
// whose go.mod alone is needed (versions in the graph that the build does
// not select): about 2 % more upstream bytes for a `go mod download`.
// Rejected warm fills are quarantined and audited like any other, though
// no client asked for the file.
//
// A warm fill is an ordinary fill (coalesced with requests for the same
// file, verified before it is stored); it skips files already stored,
// denied by the rules, refused by the supply-chain policy or remembered as
// not found, and files once cache-only mode is on; nothing is started
// for a version being warmed, when warmMax versions are, or once Close has
// begun. Close cancels warmings and waits for them. Failures are logged at
// debug level and not remembered.
func (s *Service) warm(req artifact.Request) {
	if !s.opts.Warm || !artifact.IsCanonical(req.Version) {
		return
	}
	var exts []string
	switch req.Kind {
	case artifact.Mod:
		exts = []string{".info", ".zip"}
	case artifact.Info:
		exts = []string{".zip"}
	default:
		return
	}
	base, ok := strings.CutSuffix(req.Key, "."+req.Kind.String())
	if !ok {
		return
	}
	mv := req.Module + "@" + req.Version
	w := s.warmups
	w.mu.Lock()
	if w.inflight[mv] || len(w.inflight) >= warmMax {
		w.mu.Unlock()
		return
	}
	w.inflight[mv] = true
	w.mu.Unlock()
	w.wg.Add(1)
	started := s.goBackground(func() {
		defer w.wg.Done()
		defer func() {
			w.mu.Lock()
			delete(w.inflight, mv)
			w.mu.Unlock()
		}()
		ctx, cancel := context.WithTimeout(w.ctx, warmTimeout)
		defer cancel()
		for _, ext := range exts {
			if err := s.warmFile(ctx, base+ext); err != nil && w.ctx.Err() == nil {
				s.log.Debug("warming failed (a request for the file fetches it again)", "key", base+ext, "err", err)
			}
		}
	})
	if !started {
		w.wg.Done()
		w.mu.Lock()
		delete(w.inflight, mv)
		w.mu.Unlock()
	}
}

// warmFile fills key unless it is stored, refused by the rules or the
// supply-chain policy, remembered as not found, or cache-only mode is on.
func (s *Service) warmFile(ctx context.Context, key string) error {
	req, err := artifact.Parse(key)
	if err != nil {
		return err
	}
	if s.cacheOnly(ctx) {
		return nil // switched on since the warming began: nothing more is fetched
	}
	if err := s.checkRules(req); err != nil {
		return nil
	}
	if _, err := s.opts.Store.Stat(ctx, req.Key); err == nil || !errors.Is(err, iofs.ErrNotExist) {
		return err
	}
	if s.neg.get(req.Key, s.opts.Now()) != nil {
		return nil
	}
	if s.supply != nil && s.supply.refuses(ctx, req) {
		return nil
	}
	res, err := s.fillAndOpen(ctx, req)
	if err != nil {
		return err
	}
	return res.Close()
}
