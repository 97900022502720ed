// Package proxy is the caching service behind the GOPROXY handler: lookup
// in the store, freshness policy, coalesced fill from upstream, validation,
// atomic store, and the open object to serve.
//
// Contracts:
//   - Get never returns content that failed validation, and never a
//     partial object: fills are written to the store atomically and only
//     then opened.
//   - Concurrent Gets for the same missing key cause one upstream fetch
//     (singleflight); the fill runs detached from the callers' contexts
//     (with its own timeout), so a client that disconnects does not cancel
//     it for the others, and what was fetched is kept.
//   - Errors report their class (errclass.Of): NotExist for not-found
//     (upstream 404/410, remembered by the negative cache, a miss in
//     cache-only mode; errors.Is(err, fs.ErrNotExist) too); Denied or Gone
//     for a *routing.DeniedError; Invalid or Denied for an upstream's 400
//     or 403 (remembered: *RefusedError); Integrity for an
//     *InvalidResponseError (an answer that failed validation) and for
//     checksum failures; StoreFull when local storage is full (logged and
//     counted); otherwise the class of the *upstream.Error, or Internal
//     for another store error.
//   - Service is safe for concurrent use; Close waits for background fills.
//
// Files: service.go (Service, Options, New, Close, Get), fill.go (fetch,
// spool, coalescing, store), admit.go (validation, checksum verification,
// quarantine), cache.go (memory, hash and negative caches), gate.go (the
// version gate between serving and eviction).
package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"log/slog"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/modproxy/modproxy/internal/artifact"
	"github.com/modproxy/modproxy/internal/audit"
	"github.com/modproxy/modproxy/internal/cachepolicy"
	"github.com/modproxy/modproxy/internal/coord"
	"github.com/modproxy/modproxy/internal/errclass"
	"github.com/modproxy/modproxy/internal/event"
	"github.com/modproxy/modproxy/internal/metrics"
	"github.com/modproxy/modproxy/internal/routing"
	"github.com/modproxy/modproxy/internal/storage"
	"github.com/modproxy/modproxy/internal/upstream"
)

// Store is the part of storage.Store the service uses.
type Store interface {
	Open(ctx context.Context, key string) (storage.Object, error)
	Stat(ctx context.Context, key string) (storage.Info, error)
	Put(ctx context.Context, key string, r io.Reader) (storage.Info, error)
}

// Options configures a Service.
type Options struct {
	Store Store
	// Upstream fetches module files, unless Route picks another chain.
	Upstream upstream.Fetcher
	// Route, when set, returns the upstream chain for a module path (nil
	// for the default Upstream).
	Route func(path string) upstream.Fetcher
	// Rules, when set, refuse denied modules and versions (also when
	// cached) and drop denied versions from lists.
	Rules *routing.Rules
	// Offline starts the service in cache-only mode (see SetOffline).
	Offline bool
	// SumDB maps a checksum database name to the fetcher for its files
	// (paths "sumdb/NAME/..."). Names not in the map are not proxied.
	SumDB map[string]upstream.Fetcher
	// TempDir holds zips while they are validated; it should be on a local
	// file system.
	TempDir string
	// Policy is the freshness policy for mutable entries.
	Policy cachepolicy.Policy
	// FillTimeout bounds one fill (fetch, validate, store); default 10m.
	FillTimeout time.Duration
	// ZipChecks bounds the zips checked and hashed at once (CPU-heavy
	// work), so that fills leave a CPU for hits; default
	// max(1, GOMAXPROCS-1).
	ZipChecks int
	// Verifier, when set, checks every canonical .mod and .zip against a
	// checksum database before it is stored. Nil turns verification off.
	Verifier Verifier
	// Private reports module paths that must never be looked up in a
	// public checksum database, not even through /sumdb/ proxying.
	Private func(path string) bool
	// Quarantine keeps content that failed verification; may be nil.
	Quarantine Quarantine
	Audit      *audit.Log
	Metrics    *metrics.Metrics
	// Events receives an event.Mismatch for every module file whose hash
	// differs from the checksum database's (when the audit event for it
	// is written); nil discards.
	Events event.Sink
	// Index, when set, is told of every object stored and served (it must
	// not block: the metadata index only enqueues).
	Index Index
	// Coordinator, when set, makes replicas sharing a store fill each
	// artifact once across the cluster (see fillShared).
	Coordinator coord.Coordinator
	// Gate is shared by services on one store; nil: a gate of its own.
	Gate *VersionGate
	// MutablePrefix is prepended to the store keys of mutable answers
	// (lists, latest, queries), so that namespaces with their own upstreams
	// keep their own; immutable content is shared.
	MutablePrefix string
	// Presign, when set, answers zips with a redirect to a short-lived URL
	// of the object in the store (clients download from the bucket).
	Presign func(ctx context.Context, key string) (string, error)
	// Supply, when set and on, is the supply-chain policy (supply.go).
	Supply *Supply
	Logger *slog.Logger
	Now    func() time.Time // default time.Now
	// Warm, when set, fills a module version's .info and .zip in the
	// background after a miss of its .mod (and the .zip after a miss of its
	// .info); see Service.warm.
	Warm bool
}

// Verifier checks a hash against a checksum database; see package checksum
// for the errors.
type Verifier interface {
	Verify(ctx context.Context, path, version string, goMod bool, h1 string) error
}

// Index records stores and accesses for eviction.
type Index interface {
	Touch(key string, t time.Time)
	Stored(key string, size int64, t time.Time)
}

// Quarantine keeps rejected content for inspection.
type Quarantine interface {
	Keep(name string, r io.Reader) (string, error)
}

// Outcome says how a request was answered.
type Outcome string

// Outcomes, as they appear in the access log and metrics.
const (
	Hit       Outcome = "hit"       // served from the cache
	Miss      Outcome = "miss"      // fetched from upstream by this request
	Coalesced Outcome = "coalesced" // fetched from upstream by a concurrent request
	Stale     Outcome = "stale"     // served from the cache past its TTL
	Negative  Outcome = "negative"  // not-found remembered from an earlier upstream answer
)

// Result is an answer to serve. The caller must Close it.
type Result struct {
	Object  storage.Object
	Outcome Outcome
	// Age is the time since the content was fetched from upstream.
	Age time.Duration
	// Stale is set when the content is past its TTL; Warning says why
	// ("110 - \"Response is Stale\"" or with revalidation failure detail).
	Stale   bool
	Warning string
	// H1 is the h1: hash of a .zip or .mod, when recorded, and HashHeaders
	// its preformatted header values.
	H1          string
	HashHeaders *HashHeaders
	// Redirect, when set, is where the client should download the content
	// (a pre-signed store URL); Object is then empty.
	Redirect string
	// Mem, when set, is the whole content in memory with its preformatted
	// Last-Modified value (small immutable hits); Object reads the same bytes.
	Mem *MemBody
	// Policy, when set, are the policy's warnings about the version.
	Policy *PolicyNote

	release func() // releases the version gate
}

// Close closes the object (and lets eviction at the version again).
func (r *Result) Close() error {
	err := r.Object.Close()
	if r.release != nil {
		r.release()
		r.release = nil
	}
	return err
}

// Service is the caching proxy service.
type Service struct {
	opts      Options
	realClock bool                                      // Options.Now was nil: time.Now
	kinds     [artifact.SumDB + 1]*metrics.KindCounters // by artifact.Kind
	mem       memCache
	rules     atomic.Pointer[routing.Rules]
	offline   atomic.Bool
	gate      *VersionGate
	hashes    hashCache
	log       *slog.Logger
	fills     singleflight.Group
	neg       negCache
	bg        sync.WaitGroup
	bgMu      sync.Mutex // orders goBackground against Close
	closing   chan struct{}
	closeOne  sync.Once
	sumPre    *sumPrefetches
	refreshed refreshes // refresh.go
	warmups   *warmups
	zipSlots  chan struct{}                          // see zipSlot
	zipHooks  struct{ wait, check func(key string) } // tests only
	supply    *supply                                // nil: no supply-chain policy
}

// New returns a Service.
func New(opts Options) *Service {
	if opts.FillTimeout <= 0 {
		opts.FillTimeout = 10 * time.Minute
	}
	realClock := opts.Now == nil
	if realClock {
		opts.Now = time.Now
	}
	if opts.ZipChecks <= 0 {
		opts.ZipChecks = max(1, runtime.GOMAXPROCS(0)-1)
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.TempDir == "" {
		opts.TempDir = os.TempDir()
	}
	if opts.Events == nil {
		opts.Events = event.Discard{}
	}
	s := &Service{opts: opts, log: opts.Logger, neg: negCache{m: map[string]negEntry{}}, hashes: hashCache{m: map[string]*hashEntry{}}, mem: memCache{m: map[string]*memEntry{}}, closing: make(chan struct{}), gate: opts.Gate, realClock: realClock, sumPre: newSumPrefetches(), warmups: newWarmups(), zipSlots: make(chan struct{}, opts.ZipChecks)}
	for k := artifact.List; k < artifact.Kind(len(s.kinds)); k++ {
		s.kinds[k] = metrics.NewKindCounters(opts.Metrics, k.String())
	}
	if s.gate == nil {
		s.gate = NewVersionGate()
	}
	s.offline.Store(opts.Offline)
	s.rules.Store(opts.Rules)
	s.supply = newSupply(s, opts.Supply)
	return s
}

// SetRules replaces the routing rules (deny and allow) at run time.
func (s *Service) SetRules(r *routing.Rules) { s.rules.Store(r) }

// SetOffline switches cache-only mode for every request: nothing goes
// upstream, a miss is a not-found error saying so, and mutable entries are
// served whatever their age.
func (s *Service) SetOffline(on bool) {
	if s.offline.Swap(on) != on {
		s.log.Warn("cache-only mode changed", "offline", on)
	}
}

// Offline reports whether cache-only mode is on.
func (s *Service) Offline() bool { return s.offline.Load() }

type cacheOnlyKey struct{}

// CacheOnly returns a context under which Get answers from the cache alone
// (a per-request cache-only mode).
func CacheOnly(ctx context.Context) context.Context {
	return context.WithValue(ctx, cacheOnlyKey{}, true)
}

func (s *Service) cacheOnly(ctx context.Context) bool {
	return s.offline.Load() || ctx.Value(cacheOnlyKey{}) != nil
}

// Close waits for background revalidations and detached fills to finish
// and cancels checksum database prefetches and warmings (and waits for
// them); fills asked for afterwards fail.
func (s *Service) Close() {
	s.bgMu.Lock()
	s.closeOne.Do(func() { close(s.closing) })
	s.bgMu.Unlock()
	s.sumPre.cancel()
	s.warmups.cancel()
	s.bg.Wait()
}

// goBackground runs fn tracked for Close, or reports false once Close
// has begun.
func (s *Service) goBackground(fn func()) bool {
	s.bgMu.Lock()
	defer s.bgMu.Unlock()
	select {
	case <-s.closing:
		return false
	default:
	}
	s.bg.Go(fn)
	return true
}

// SumDBSupported reports whether the checksum database name is proxied.
func (s *Service) SumDBSupported(name string) bool {
	_, ok := s.opts.SumDB[name]
	return ok
}

// Get answers req from the cache, filling it from upstream as needed,
// under the supply-chain policy when there is one: a refused version is a
// *policy.BlockedError (class Denied), vulnerability data that cannot be
// read an *AdvisoryError (Unavailable) when the policy blocks on it.
func (s *Service) Get(ctx context.Context, req artifact.Request) (*Result, error) {
	if s.supply != nil && req.Kind != artifact.SumDB {
		return s.supply.get(ctx, req)
	}
	return s.serve(ctx, req)
}

// serve is Get without the supply-chain policy.
func (s *Service) serve(ctx context.Context, req artifact.Request) (*Result, error) {
	if s.opts.MutablePrefix != "" && (req.Kind == artifact.List || req.Kind == artifact.Latest || req.Kind == artifact.Query) {
		req.Key = s.opts.MutablePrefix + req.Key
	}
	if err := s.checkRules(req); err != nil {
		return nil, err
	}
	// A small immutable hit from memory needs neither the version gate nor
	// the store.
	if req.Immutable() && memCacheable(req) {
		now := s.opts.Now()
		if res := s.memHit(ctx, req, now); res != nil {
			if s.opts.Index != nil {
				s.opts.Index.Touch(req.Key, now)
			}
			s.kinds[req.Kind].Outcome(string(Hit))
			if req.Kind == artifact.Mod {
				s.withHash(ctx, req, res)
			}
			return res, nil
		}
	}
	var release func()
	if req.Kind == artifact.Info || req.Kind == artifact.Mod || req.Kind == artifact.Zip {
		var err error
		if release, err = s.gate.enter(ctx, req.Module+"@"+req.Version); err != nil {
			return nil, err
		}
	}
	res, err := s.get(ctx, req)
	if err != nil && release != nil {
		release()
	}
	if err == nil {
		res.release = release
		if s.opts.Index != nil {
			s.opts.Index.Touch(req.Key, s.opts.Now())
		}
	}
	if rules := s.rules.Load(); err == nil && rules != nil {
		res, err = s.applyRules(rules, req, res)
	}
	if err != nil {
		if o := ErrorOutcome(err); o != "" {
			s.kinds[req.Kind].Outcome(string(o))
		}
		return nil, err
	}
	s.kinds[req.Kind].Outcome(string(res.Outcome))
	if req.Kind == artifact.Zip || req.Kind == artifact.Mod {
		s.withHash(ctx, req, res)
	}
	return res, nil
}

func (s *Service) checkRules(req artifact.Request) error {
	rules := s.rules.Load()
	if rules == nil || req.Kind == artifact.SumDB {
		return nil
	}
	switch req.Kind {
	case artifact.Info, artifact.Mod, artifact.Zip:
		return rules.CheckVersion(req.Module, req.Version)
	default:
		return rules.CheckModule(req.Module)
	}
}

// applyRules filters denied versions out of lists and refuses a latest or
// query answer that resolves to a denied version.
func (s *Service) applyRules(rules *routing.Rules, req artifact.Request, res *Result) (*Result, error) {
	if req.Kind != artifact.List && req.Kind != artifact.Latest && req.Kind != artifact.Query {
		return res, nil
	}
	data, err := io.ReadAll(res.Object)
	info := res.Object.Info()
	res.Object.Close()
	if err != nil {
		return nil, err
	}
	if req.Kind == artifact.List {
		data = rules.FilterList(req.Module, data)
	} else {
		var v struct{ Version string }
		if json.Unmarshal(data, &v) == nil {
			if err := rules.CheckVersion(req.Module, v.Version); err != nil {
				return nil, err
			}
		}
	}
	info.Size = int64(len(data))
	res.Object = &memObject{Reader: bytes.NewReader(data), info: info}
	return res, nil
}

// memObject is a storage.Object in memory.
type memObject struct {
	*bytes.Reader
	info storage.Info
}

func (m *memObject) Info() storage.Info { return m.info }
func (m *memObject) Close() error       { return nil }

// ReadSumDB reads a file of the checksum database name through the cache:
// path is "/lookup/M@V", "/tile/..." or "/latest".
func (s *Service) ReadSumDB(ctx context.Context, name, path string) ([]byte, error) {
	req, err := artifact.ParseSumDB(name + path)
	if err != nil {
		return nil, err
	}
	res, err := s.Get(ctx, req)
	if err != nil {
		return nil, err
	}
	defer res.Close()
	return io.ReadAll(res.Object)
}

func (s *Service) get(ctx context.Context, req artifact.Request) (*Result, error) {
	if req.Kind == artifact.SumDB && req.Module != "" && s.opts.Private != nil && s.opts.Private(req.Module) {
		return nil, &NotFoundError{Key: req.Key, Msg: fmt.Sprintf("%s is private: it is not looked up in a public checksum database", req.Module)}
	}
	if req.Kind == artifact.Zip && s.opts.Presign != nil {
		return s.redirect(ctx, req)
	}
	obj, err := s.opts.Store.Open(ctx, req.Key)
	if err != nil && !errors.Is(err, iofs.ErrNotExist) {
		return nil, fmt.Errorf("cache read %s: %w", req.Key, err)
	}
	if err == nil {
		if req.Immutable() {
			if obj, err = s.memKeep(req, obj); err != nil {
				return nil, err
			}
			return &Result{Object: obj, Outcome: Hit, Age: s.age(obj)}, nil
		}
		age := s.age(obj)
		if s.cacheOnly(ctx) {
			res := &Result{Object: obj, Outcome: Hit, Age: age}
			if s.opts.Policy.Classify(age) != cachepolicy.Fresh {
				res.Outcome, res.Stale, res.Warning = Stale, true, `110 - "Response is Stale"`
			}
			return res, nil
		}
		state := s.opts.Policy.Classify(age)
		fctx, refreshSeq, refreshed := s.refreshedSince(ctx, req, obj)
		if refreshed {
			state = cachepolicy.Refetch // see Refresh
		}
		if state == cachepolicy.Fresh {
			return &Result{Object: obj, Outcome: Hit, Age: age}, nil
		}
		// Past its TTL, an entry the upstream has since answered with a
		// definitive not-found or refusal (remembered for negative_ttl) is
		// not served.
		if nerr := s.neg.get(req.Key, s.opts.Now()); nerr != nil {
			obj.Close()
			return nil, nerr
		}
		if state == cachepolicy.Revalidate {
			s.revalidate(req)
			return &Result{Object: obj, Outcome: Stale, Age: age, Stale: true, Warning: `110 - "Response is Stale"`}, nil
		}
		// Refetch: fetch now; if the upstream cannot answer (anything but
		// its definitive word), fall back to what we have (stale-if-error).
		res, seq, ferr := s.fillAndOpenSeq(fctx, req)
		if ferr == nil && refreshed && seq < refreshSeq {
			// It joined a fetch that began before the refresh: fetch
			// again (a fetch under way now began after this one ended).
			res.Close()
			res, ferr = s.fillAndOpen(fctx, req)
		}
		if ferr == nil {
			obj.Close()
			return res, nil
		}
		if !definitive(ferr) && ctx.Err() == nil && s.opts.Policy.ServeStaleOnError(age) {
			s.log.Warn("serving stale content: upstream failed", "key", req.Key, "age", age.Round(time.Second), "err", ferr)
			return &Result{Object: obj, Outcome: Stale, Age: age, Stale: true, Warning: `111 - "Revalidation Failed"`}, nil
		}
		obj.Close()
		return nil, ferr
	}
	if s.cacheOnly(ctx) {
		return nil, &NotFoundError{Key: req.Key, Msg: req.Key + " is not in the cache (cache-only mode: nothing is fetched upstream)"}
	}
	// A remembered not-found or refusal is answered while it lasts
	// (negative_ttl), whether or not the upstream is up; after that the
	// upstream is asked again, and if it cannot answer, its failure is the
	// answer (unavailable, never "not found").
	if nerr := s.neg.get(req.Key, s.opts.Now()); nerr != nil {
		return nil, nerr
	}
	s.sumPrefetchFor(ctx, req)
	s.warmFor(ctx, req)
	return s.fillAndOpen(ctx, req)
}

// NotFoundError is a not-found answer of the service itself: remembered by
// the negative cache (Cached), a miss in cache-only mode, a private module
// or checksum database that is not proxied. Its class is errclass.NotExist.
type NotFoundError struct {
	Key    string
	Msg    string
	Cached bool
}

func (e *NotFoundError) Error() string { return e.Msg }
func (e *NotFoundError) Unwrap() error { return iofs.ErrNotExist }

// Class implements errclass.Classer.
func (e *NotFoundError) Class() errclass.Class { return errclass.NotExist }

// RefusedError is an upstream's refusal of a path (its 400 or 403, class
// Invalid or Denied) remembered by the negative cache.
type RefusedError struct {
	Key   string
	Msg   string // the upstream's answer
	class errclass.Class
}

func (e *RefusedError) Error() string { return e.Msg }

// Class implements errclass.Classer: the class of the remembered answer.
func (e *RefusedError) Class() errclass.Class { return e.class }

// ErrorOutcome is the outcome of a request that Get answered with err:
// Negative for a not-found or refusal remembered by the negative cache, ""
// otherwise.
func ErrorOutcome(err error) Outcome {
	var nfe *NotFoundError
	var re *RefusedError
	if errors.As(err, &nfe) && nfe.Cached || errors.As(err, &re) {
		return Negative
	}
	return ""
}

func (s *Service) age(obj storage.Object) time.Duration {
	a := s.opts.Now().Sub(obj.Info().ModTime)
	if a < 0 {
		return 0
	}
	return a
}

// redirect answers a zip with a pre-signed URL of the stored object,
// filling it first on a miss.
func (s *Service) redirect(ctx context.Context, req artifact.Request) (*Result, error) {
	out := Hit
	info, err := s.opts.Store.Stat(ctx, req.Key)
	if errors.Is(err, iofs.ErrNotExist) {
		if s.cacheOnly(ctx) {
			return nil, &NotFoundError{Key: req.Key, Msg: req.Key + " is not in the cache (cache-only mode: nothing is fetched upstream)"}
		}
		if nerr := s.neg.get(req.Key, s.opts.Now()); nerr != nil {
			return nil, nerr
		}
		s.sumPrefetchFor(ctx, req)
		res, ferr := s.fillAndOpen(ctx, req)
		if ferr != nil {
			return nil, ferr
		}
		out = res.Outcome
		info = res.Object.Info()
		res.Object.Close()
	} else if err != nil {
		return nil, fmt.Errorf("cache stat %s: %w", req.Key, err)
	}
	u, err := s.opts.Presign(ctx, req.Key)
	if err != nil {
		return nil, fmt.Errorf("presigning %s: %w", req.Key, err)
	}
	return &Result{Object: &memObject{Reader: bytes.NewReader(nil), info: info}, Outcome: out, Redirect: u}, nil
}
