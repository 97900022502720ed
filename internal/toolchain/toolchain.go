// Package toolchain mirrors the Go toolchain distribution site (the site
// CI images and setup-go download Go from): its JSON listing
// ("?mode=json" and "?mode=json&include=all", passed through as the site
// answers them) and the archives it names
// ("go1.X.Y.OS-ARCH.tar.gz|.zip|.msi|.pkg", "go1.X.Y.src.tar.gz").
//
// Contracts:
//   - The listing is a mutable answer: fresh for TTL, then fetched again
//     before it is served; when the site cannot answer, a stored listing
//     younger than StaleIfError is served (Listing.Stale, with a Warning).
//   - An archive is fetched on its first request, streamed to a spool file
//     in TempDir while it is hashed (never held in memory), and stored only
//     when its SHA-256 equals the one the listing gives for that file name.
//     A file the listing does not name is not fetched (after one refresh of
//     a listing older than RefreshAfter); a mismatch is refused (a
//     *MismatchError, audited, counted, reported to Events) and nothing is
//     stored. Stored archives are served without asking the site again.
//   - Writes are the store's crash-safe writes: the recorded hash first
//     (dl/FILE.sha256), then the verified spool moved in (storage.FileMover)
//     or Put; a reader never sees a partial archive.
//   - Concurrent requests for one archive or one listing cause one fetch
//     (singleflight). The fetch runs detached from the callers (own
//     timeout, Options.FillTimeout), owned by the Service: Close cancels
//     fetches in progress and waits for them.
//   - In cache-only mode (Offline, SetOffline, or a request's cacheOnly)
//     nothing is fetched: stored archives and listings are served whatever
//     their age, anything else is a *NotFoundError saying so.
//   - Errors report their class (errclass.Of): NotExist for a file the
//     listing does not name, a name that is not a distribution file, or a
//     miss in cache-only mode; Mismatch for a *MismatchError; Integrity for
//     a listing that is not the site's JSON or a truncated body; Denied for
//     a file over MaxSize; the *upstream.Error's class when the site fails
//     (Unavailable, Timeout, NotExist for its 404); Internal for the store.
//
// Store keys all begin with "dl/": the listings are dl/listing.json and
// dl/listing-all.json, an archive is dl/FILE and its SHA-256 (hex, as the
// listing has it) dl/FILE.sha256.
//
// A Service is safe for concurrent use.
package toolchain

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/modproxy/modproxy/internal/audit"
	"github.com/modproxy/modproxy/internal/background"
	"github.com/modproxy/modproxy/internal/event"
	"github.com/modproxy/modproxy/internal/index"
	"github.com/modproxy/modproxy/internal/metrics"
	"github.com/modproxy/modproxy/internal/storage"
	"github.com/modproxy/modproxy/internal/upstream"
)

// Store is the part of storage.Store the mirror uses. A store that also
// implements storage.FileMover takes verified archives in by rename.
type Store interface {
	Open(ctx context.Context, key string) (storage.Object, error)
	Put(ctx context.Context, key string, r io.Reader) (storage.Info, error)
	Delete(ctx context.Context, key string) error
}

// Index records stores and accesses (the metadata index); it must not block.
type Index interface {
	Touch(key string, t time.Time)
	Stored(key string, size int64, t time.Time)
}

// Records is the metadata index as the bound on stored archives reads it
// (*index.Index): every stored object with its size and last access.
// Flush makes the records include every Touch and Stored made before it.
type Records interface {
	All(fn func(key string, r index.Record) error) error
	Deleted(key string)
	Flush()
}

// Options configures a Service.
type Options struct {
	// Site fetches from the distribution site: a file name, or "" with a
	// query ("?mode=json&include=all"), below the site's base URL (see
	// proxyclient.NewSite). Required.
	Site  upstream.Fetcher
	Store Store
	// TempDir holds archives while they are fetched and hashed; it should
	// be on the store's file system (storage.FileMover.TempDir).
	TempDir string
	// TTL is how long a listing is fresh; default 1m.
	TTL time.Duration
	// StaleIfError is the age up to which a stored listing is served when
	// the site cannot answer; 0 serves none.
	StaleIfError time.Duration
	// RefreshAfter is the age from which a listing that does not name a
	// requested file is fetched again before the file is refused; default
	// 30s (a flood of unknown names cannot make every request a fetch).
	RefreshAfter time.Duration
	// MaxSize bounds an archive; default 1 GiB.
	MaxSize int64
	// MaxListingSize bounds a listing; default 64 MiB.
	MaxListingSize int64
	// FillTimeout bounds one fetch (listing or archive, stored included);
	// default 10m.
	FillTimeout time.Duration
	// Offline starts in cache-only mode (see SetOffline).
	Offline bool
	// MaxFetches bounds the archives fetched at a time (see the package
	// documentation); default 2.
	MaxFetches int
	// MaxTotal bounds the bytes of the stored archives, with Records (see
	// the package documentation); 0: unbounded.
	MaxTotal int64
	// Records lists the stored archives for MaxTotal; nil: no bound.
	Records Records
	// TrimInterval, with MaxTotal, runs Trim every interval until Close;
	// 0: only after an archive is stored.
	TrimInterval time.Duration
	Metrics      *metrics.Metrics
	Index        Index      // may be nil
	Audit        *audit.Log // may be nil
	Events       event.Sink // nil discards
	Logger       *slog.Logger
	Now          func() time.Time // default time.Now
}

// Service is the toolchain mirror.
type Service struct {
	opts    Options
	log     *slog.Logger
	offline atomic.Bool
	fills   singleflight.Group
	bg      *background.Group // detached fetches
	parsed  sync.Map          // listing key -> *parsedListing, the latest parse
	slots   chan struct{}     // archive fetches in progress (capacity MaxFetches)
	trimMu  sync.Mutex        // serializes Trim
}

// New returns a Service.
func New(opts Options) *Service {
	if opts.TTL <= 0 {
		opts.TTL = time.Minute
	}
	if opts.RefreshAfter <= 0 {
		opts.RefreshAfter = 30 * time.Second
	}
	if opts.MaxSize <= 0 {
		opts.MaxSize = 1 << 30
	}
	if opts.MaxListingSize <= 0 {
		opts.MaxListingSize = 64 << 20
	}
	if opts.FillTimeout <= 0 {
		opts.FillTimeout = 10 * time.Minute
	}
	if opts.TempDir == "" {
		opts.TempDir = os.TempDir()
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Events == nil {
		opts.Events = event.Discard{}
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.MaxFetches <= 0 {
		opts.MaxFetches = 2
	}
	s := &Service{opts: opts, log: opts.Logger, bg: background.New(opts.Logger), slots: make(chan struct{}, opts.MaxFetches)}
	s.offline.Store(opts.Offline)
	if opts.TrimInterval > 0 && s.bounded() {
		s.bg.Every(context.Background(), "toolchain archives bound", opts.TrimInterval, func(ctx context.Context) {
			if _, err := s.Trim(ctx); err != nil {
				s.log.Error("toolchain archives over dl.max_total not evicted", "err", err)
			}
		})
	}
	return s
}

// SetOffline switches cache-only mode at run time.
func (s *Service) SetOffline(on bool) { s.offline.Store(on) }

// Close cancels fetches in progress and waits for them; later fetches
// fail. It is idempotent.
func (s *Service) Close() { s.bg.Close() }

func (s *Service) cacheOnly(cacheOnly bool) bool { return cacheOnly || s.offline.Load() }

// Outcome says how a request was answered, as the access log names it.
type Outcome string

// The outcomes.
const (
	Hit       Outcome = "hit"       // from the store
	Miss      Outcome = "miss"      // fetched by this request
	Coalesced Outcome = "coalesced" // fetched by a concurrent request
	Stale     Outcome = "stale"     // a listing past its TTL
)

// fill runs fn for key once at a time, detached from ctx (its own
// timeout, cancelled by Close), and waits for it or for ctx. leader
// reports whether this call ran fn. With slot, fn first waits for one of
// the MaxFetches slots, as long as the first caller's ctx lets it; when
// that caller gives up, the others still waiting start over (one of them
// waits in its place).
func (s *Service) fill(ctx context.Context, key string, slot bool, fn func(ctx context.Context) error) (leader bool, err error) {
	for {
		leader, err = s.fillOnce(ctx, key, slot, fn)
		if !errors.Is(err, errSlotWaitEnded) {
			return leader, err
		}
		if cerr := ctx.Err(); cerr != nil {
			return false, cerr
		}
	}
}

func (s *Service) fillOnce(ctx context.Context, key string, slot bool, fn func(ctx context.Context) error) (leader bool, err error) {
	ch := s.fills.DoChan(key, func() (any, error) {
		leader = true
		release := func() {}
		if slot {
			select {
			case s.slots <- struct{}{}:
				release = func() { <-s.slots }
			case <-ctx.Done():
				return nil, errSlotWaitEnded
			}
		}
		done := make(chan error, 1)
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.opts.FillTimeout)
		if !s.bg.Go(fctx, "toolchain fetch "+key, func(ctx context.Context) {
			err := errPanicked // what waiters get if fn panics (the group logs it)
			defer func() {
				cancel()
				release()
				done <- err
			}()
			err = fn(ctx)
		}) {
			cancel()
			release()
			return nil, errShuttingDown
		}
		return nil, <-done
	})
	select {
	case r := <-ch:
		return leader, r.Err
	case <-ctx.Done():
		return false, ctx.Err()
	}
}
