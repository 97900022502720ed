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
//   - Errors: errors.Is(err, fs.ErrNotExist) for not-found (upstream 404/410,
//     or remembered by the negative cache, or a miss in cache-only mode);
//     *InvalidResponseError for answers that failed validation; otherwise
//     an *upstream.Error or a store error.
//   - Service is safe for concurrent use; Close waits for background fills.
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
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/mod/module"
	"golang.org/x/mod/sumdb"
	"golang.org/x/sync/singleflight"

	"github.com/modproxy/modproxy/internal/artifact"
	"github.com/modproxy/modproxy/internal/audit"
	"github.com/modproxy/modproxy/internal/cachepolicy"
	"github.com/modproxy/modproxy/internal/checksum"
	"github.com/modproxy/modproxy/internal/coord"
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
	Logger  *slog.Logger
	Now     func() time.Time // default time.Now
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
	opts     Options
	mem      memCache
	rules    atomic.Pointer[routing.Rules]
	offline  atomic.Bool
	gate     *VersionGate
	hashes   hashCache
	log      *slog.Logger
	fills    singleflight.Group
	neg      negCache
	bg       sync.WaitGroup
	bgMu     sync.Mutex // orders goBackground against Close
	closing  chan struct{}
	closeOne sync.Once
}

// New returns a Service.
func New(opts Options) *Service {
	if opts.FillTimeout <= 0 {
		opts.FillTimeout = 10 * time.Minute
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.TempDir == "" {
		opts.TempDir = os.TempDir()
	}
	s := &Service{opts: opts, log: opts.Logger, neg: negCache{m: map[string]negEntry{}}, hashes: hashCache{m: map[string]*hashEntry{}}, mem: memCache{m: map[string]*memEntry{}}, closing: make(chan struct{}), gate: opts.Gate}
	if s.gate == nil {
		s.gate = NewVersionGate()
	}
	s.offline.Store(opts.Offline)
	s.rules.Store(opts.Rules)
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

// Close waits for background revalidations and detached fills to finish;
// fills asked for afterwards fail.
func (s *Service) Close() {
	s.bgMu.Lock()
	s.closeOne.Do(func() { close(s.closing) })
	s.bgMu.Unlock()
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

// Get answers req from the cache, filling it from upstream as needed.
func (s *Service) Get(ctx context.Context, req artifact.Request) (*Result, error) {
	if s.opts.MutablePrefix != "" && (req.Kind == artifact.List || req.Kind == artifact.Latest || req.Kind == artifact.Query) {
		req.Key = s.opts.MutablePrefix + req.Key
	}
	if err := s.checkRules(req); err != nil {
		return nil, err
	}
	// A small immutable hit from memory needs neither the version gate nor
	// the store.
	if req.Immutable() {
		if res := s.memHit(ctx, req); res != nil {
			if s.opts.Index != nil {
				s.opts.Index.Touch(req.Key, s.opts.Now())
			}
			s.opts.Metrics.Outcome(req.Kind.String(), string(Hit))
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
		var nfe *NotFoundError
		if errors.As(err, &nfe) && nfe.Cached {
			s.opts.Metrics.Outcome(req.Kind.String(), string(Negative))
		}
		return nil, err
	}
	s.opts.Metrics.Outcome(req.Kind.String(), string(res.Outcome))
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
		switch s.opts.Policy.Classify(age) {
		case cachepolicy.Fresh:
			return &Result{Object: obj, Outcome: Hit, Age: age}, nil
		case cachepolicy.Revalidate:
			s.revalidate(req)
			return &Result{Object: obj, Outcome: Stale, Age: age, Stale: true, Warning: `110 - "Response is Stale"`}, nil
		}
		// Refetch: fetch now, fall back to what we have.
		res, ferr := s.fillAndOpen(ctx, req)
		if ferr == nil {
			obj.Close()
			return res, nil
		}
		if !errors.Is(ferr, iofs.ErrNotExist) && ctx.Err() == nil && s.opts.Policy.ServeStaleOnError(age) {
			s.log.Warn("serving stale content: upstream failed", "key", req.Key, "age", age.Round(time.Second), "err", ferr)
			return &Result{Object: obj, Outcome: Stale, Age: age, Stale: true, Warning: `111 - "Revalidation Failed"`}, nil
		}
		obj.Close()
		return nil, ferr
	}
	if s.cacheOnly(ctx) {
		return nil, &NotFoundError{Key: req.Key, Msg: req.Key + " is not in the cache (cache-only mode: nothing is fetched upstream)"}
	}
	if msg, ok := s.neg.get(req.Key, s.opts.Now()); ok {
		return nil, &NotFoundError{Key: req.Key, Msg: msg, Cached: true}
	}
	return s.fillAndOpen(ctx, req)
}

// NotFoundError is a not-found answer remembered by the negative cache.
type NotFoundError struct {
	Key    string
	Msg    string
	Cached bool
}

func (e *NotFoundError) Error() string { return e.Msg }
func (e *NotFoundError) Unwrap() error { return iofs.ErrNotExist }

func (s *Service) age(obj storage.Object) time.Duration {
	a := s.opts.Now().Sub(obj.Info().ModTime)
	if a < 0 {
		return 0
	}
	return a
}

// revalidate refreshes req in the background, once at a time per key.
func (s *Service) revalidate(req artifact.Request) {
	s.goBackground(func() {
		_, err, _ := s.fills.Do(req.Key, func() (any, error) {
			return nil, s.fill(context.Background(), req)
		})
		if err != nil {
			s.log.Warn("background revalidation failed", "key", req.Key, "err", err)
		}
	})
}

// fillAndOpen fetches req (coalesced with concurrent fetches of the same
// key) and opens the stored result.
func (s *Service) fillAndOpen(ctx context.Context, req artifact.Request) (*Result, error) {
	leader := false
	ch := s.fills.DoChan(req.Key, func() (any, error) {
		leader = true
		done := make(chan error, 1)
		// The fill is detached from the caller; it is tracked for Close.
		if !s.goBackground(func() { done <- s.fillShared(ctx, req) }) {
			return nil, errors.New("shutting down: no new fills")
		}
		return nil, <-done
	})
	var r singleflight.Result
	select {
	case r = <-ch:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if r.Err != nil {
		return nil, r.Err
	}
	obj, err := s.opts.Store.Open(ctx, req.Key)
	if err != nil {
		return nil, fmt.Errorf("cache read after fill %s: %w", req.Key, err)
	}
	out := Coalesced
	if leader {
		out = Miss
	}
	return &Result{Object: obj, Outcome: out}, nil
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
		if msg, ok := s.neg.get(req.Key, s.opts.Now()); ok {
			return nil, &NotFoundError{Key: req.Key, Msg: msg, Cached: true}
		}
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

// fillShared fills req once across replicas: with a Coordinator, the
// replica that takes the fill lock fills; the others wait for the object
// to appear in the shared store (or the lock to be given up without it,
// then they try in turn). Without a Coordinator, or when it is
// unreachable, it fills locally (per-process coalescing only), which is
// safe because fills are idempotent.
func (s *Service) fillShared(ctx context.Context, req artifact.Request) error {
	c := s.opts.Coordinator
	if c == nil {
		return s.fill(ctx, req)
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.opts.FillTimeout)
	defer cancel()
	start := s.opts.Now()
	wait := 20 * time.Millisecond
	for {
		lock, ok, err := c.TryLock(ctx, "fill:"+req.Key, 30*time.Second)
		if err != nil {
			s.log.Warn("coordination unavailable: filling without it", "key", req.Key, "err", err)
			s.opts.Metrics.CoordFallback()
			return s.fill(ctx, req)
		}
		if ok {
			defer lock.Release(context.WithoutCancel(ctx))
			if s.filledSince(ctx, req, start) {
				return nil // another replica filled it while we waited
			}
			err := s.fill(ctx, req)
			if err == nil {
				_ = c.Publish(ctx, "filled "+req.Key)
			}
			return err
		}
		// Another replica is filling: wait for its result.
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for another replica to fill %s: %w", req.Key, ctx.Err())
		case <-time.After(wait):
		}
		wait = min(wait*2, 500*time.Millisecond)
		if s.filledSince(ctx, req, start) {
			s.opts.Metrics.Outcome(req.Kind.String(), "coalesced_cluster")
			return nil
		}
	}
}

// filledSince reports whether the store holds req, written after start for
// mutable entries.
func (s *Service) filledSince(ctx context.Context, req artifact.Request, start time.Time) bool {
	obj, err := s.opts.Store.Open(ctx, req.Key)
	if err != nil {
		return false
	}
	defer obj.Close()
	return req.Immutable() || !obj.Info().ModTime.Before(start.Add(-time.Second))
}

// fill fetches req from upstream, validates it and stores it. It runs
// detached from ctx's cancellation, bounded by FillTimeout.
func (s *Service) fill(ctx context.Context, req artifact.Request) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.opts.FillTimeout)
	defer cancel()
	up := s.opts.Upstream
	if s.opts.Route != nil && req.Kind != artifact.SumDB {
		if r := s.opts.Route(req.Module); r != nil {
			up = r
		}
	}
	if req.Kind == artifact.SumDB {
		f, ok := s.opts.SumDB[req.SumDBName]
		if !ok {
			return &NotFoundError{Key: req.Key, Msg: fmt.Sprintf("checksum database %s is not proxied", req.SumDBName)}
		}
		up = f
	}
	start := s.opts.Now()
	s.opts.Metrics.FillStarted()
	defer s.opts.Metrics.FillDone()
	resp, err := up.Fetch(ctx, strings.TrimPrefix(req.Key, s.opts.MutablePrefix))
	if err != nil {
		var ue *upstream.Error
		switch {
		case errors.As(err, &ue) && ue.NotFound():
			s.opts.Metrics.UpstreamError("not_found")
			s.neg.put(req.Key, ue.Error(), s.opts.Now().Add(s.opts.Policy.NegativeTTL))
		case errors.As(err, &ue) && ue.Timeout:
			s.opts.Metrics.UpstreamError("timeout")
		default:
			s.opts.Metrics.UpstreamError("unavailable")
		}
		return err
	}
	defer resp.Body.Close()
	var info storage.Info
	if req.Kind == artifact.Zip {
		info, err = s.fillZip(ctx, req, resp)
	} else {
		info, err = s.fillSmall(ctx, req, resp)
	}
	if err != nil {
		var ire *InvalidResponseError
		if errors.As(err, &ire) {
			s.opts.Metrics.UpstreamError("invalid")
		}
		return err
	}
	s.neg.del(req.Key)
	s.log.Debug("filled", "key", req.Key, "from", resp.Source, "bytes", info.Size, "took", s.opts.Now().Sub(start))
	return nil
}

func (s *Service) fillSmall(ctx context.Context, req artifact.Request, resp *upstream.Response) (storage.Info, error) {
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return storage.Info{}, err
	}
	if err := validateSmall(req, data); err != nil {
		ire := &InvalidResponseError{Key: req.Key, Source: resp.Source, Reason: err.Error()}
		if req.Kind == artifact.Mod {
			s.reject(req, resp.Source, int64(len(data)), "", ire, func() io.Reader { return bytes.NewReader(data) })
		}
		return storage.Info{}, ire
	}
	if req.Kind == artifact.Mod {
		h1, err := checksum.HashGoMod(data)
		if err != nil {
			return storage.Info{}, err
		}
		if err := s.admit(ctx, req, resp.Source, true, h1, int64(len(data)), func() io.Reader { return bytes.NewReader(data) }); err != nil {
			return storage.Info{}, err
		}
	}
	return s.put(ctx, req.Key, bytes.NewReader(data))
}

// put stores an object and tells the index.
func (s *Service) put(ctx context.Context, key string, r io.Reader) (storage.Info, error) {
	info, err := s.opts.Store.Put(ctx, key, r)
	if err == nil && s.opts.Index != nil {
		s.opts.Index.Stored(key, info.Size, s.opts.Now())
	}
	return info, err
}

// admit verifies the hash of a canonical .mod or .zip and records it in a
// sidecar object (KEY.h1) before the object itself is stored, so that an
// object in the store always has its hash. Content that fails
// verification is quarantined and audited, never stored.
func (s *Service) admit(ctx context.Context, req artifact.Request, source string, goMod bool, h1 string, size int64, content func() io.Reader) error {
	if s.opts.Verifier != nil {
		err := s.opts.Verifier.Verify(ctx, req.Module, req.Version, goMod, h1)
		var (
			me *checksum.MismatchError
			le *checksum.LookupError
		)
		switch {
		case err == nil, errors.Is(err, checksum.ErrPrivate):
		case errors.As(err, &me), errors.As(err, &le) && (le.NotFound || errors.Is(err, sumdb.ErrSecurity)):
			s.reject(req, source, size, h1, err, content)
			return err
		default:
			return err
		}
	}
	if _, err := s.put(ctx, req.Key+".h1", bytes.NewReader([]byte(h1))); err != nil {
		return err
	}
	s.hashes.put(req.Key, h1)
	return nil
}

// reject quarantines and audits canonical module content that failed
// validation or verification.
func (s *Service) reject(req artifact.Request, source string, size int64, h1 string, verr error, content func() io.Reader) {
	s.log.Error("rejected module content that failed checksum verification", "key", req.Key, "upstream", source, "err", verr)
	hashes := map[string]string{}
	if h1 != "" {
		hashes["got"] = h1
	}
	var me *checksum.MismatchError
	if errors.As(verr, &me) {
		hashes["want"] = me.Want
	}
	ev := audit.Event{Actor: "verifier", Action: "reject", Target: req.Module + "@" + req.Version, Reason: verr.Error() + " (from " + source + ")", Bytes: size, Hashes: hashes}
	if s.opts.Quarantine != nil {
		if p, err := s.opts.Quarantine.Keep(req.Key, content()); err != nil {
			s.log.Error("quarantine failed", "key", req.Key, "err", err)
		} else {
			s.opts.Metrics.Quarantined()
			ev.Action = "quarantine"
			ev.Reason += "; kept in " + p
		}
	}
	if err := s.opts.Audit.Record(ev); err != nil {
		s.log.Error("audit failed", "err", err)
	}
}

func (s *Service) fillZip(ctx context.Context, req artifact.Request, resp *upstream.Response) (storage.Info, error) {
	f, n := resp.File, resp.Size
	if f == nil {
		var err error
		f, err = os.CreateTemp(s.opts.TempDir, "fill-*.zip")
		if err != nil {
			return storage.Info{}, fmt.Errorf("spool %s: %w", req.Key, err)
		}
		defer func() {
			f.Close()
			os.Remove(f.Name())
		}()
		n, err = io.Copy(f, resp.Body)
		if err != nil {
			return storage.Info{}, err
		}
		if resp.Size >= 0 && n != resp.Size {
			return storage.Info{}, &InvalidResponseError{Key: req.Key, Source: resp.Source, Reason: fmt.Sprintf("body has %d bytes, Content-Length said %d", n, resp.Size)}
		}
	}
	content := func() io.Reader { return io.NewSectionReader(f, 0, n) }
	h1, err := validateZip(req, f)
	if err != nil {
		ire := &InvalidResponseError{Key: req.Key, Source: resp.Source, Reason: err.Error()}
		s.reject(req, resp.Source, n, "", ire, content)
		return storage.Info{}, ire
	}
	if err := s.admit(ctx, req, resp.Source, false, h1, n, content); err != nil {
		return storage.Info{}, err
	}
	// On a local store the verified spool file is renamed into place
	// instead of being copied (storage.FileMover syncs it first). When it
	// cannot be (another file system: storage.ErrNotSupported, or any
	// other failure, which leaves the spool in place), it is copied.
	if mv, ok := s.opts.Store.(storage.FileMover); ok {
		if info, err := mv.MoveIn(ctx, f.Name(), req.Key); err == nil {
			if s.opts.Index != nil {
				s.opts.Index.Stored(req.Key, info.Size, s.opts.Now())
			}
			return info, nil
		}
	}
	return s.put(ctx, req.Key, content())
}

// hash returns the recorded h1: of a stored .zip or .mod with its
// preformatted headers, or nil when none is recorded (remembered too).
func (s *Service) hash(ctx context.Context, key string) *hashEntry {
	if e, ok := s.hashes.get(key); ok {
		return e
	}
	b, err := storage.ReadSmall(ctx, s.opts.Store, key+".h1", 256)
	switch {
	case errors.Is(err, iofs.ErrNotExist):
		// content cached before hashes were recorded: remember there is none
	case err != nil:
		return nil
	}
	s.hashes.put(key, string(b))
	e, _ := s.hashes.get(key)
	return e
}

// withHash sets the recorded hash of a .zip or .mod result.
func (s *Service) withHash(ctx context.Context, req artifact.Request, res *Result) {
	if e := s.hash(ctx, req.Key); e != nil {
		res.H1, res.HashHeaders = e.h1, e.hdr
	}
}

// hashCache keeps recorded hashes in memory, bounded.
type hashCache struct {
	mu sync.Mutex
	m  map[string]*hashEntry
}

type hashEntry struct {
	h1  string
	hdr *HashHeaders
}

// HashHeaders are the response header values of a recorded hash,
// preformatted once: ETag "h1:..." and X-Go-Checksum h1:... .
type HashHeaders struct {
	ETag, Checksum []string
}

const hashCacheMax = 200_000

func (c *hashCache) get(key string) (*hashEntry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[key]
	return e, ok
}

func (c *hashCache) put(key, h string) {
	e := &hashEntry{h1: h}
	if h != "" {
		e.hdr = &HashHeaders{ETag: []string{`"` + h + `"`}, Checksum: []string{h}}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= hashCacheMax {
		clear(c.m)
	}
	c.m[key] = e
}

// negCache remembers not-found answers for a short time.
type negCache struct {
	mu sync.Mutex
	m  map[string]negEntry
}

type negEntry struct {
	until time.Time
	msg   string
}

const negCacheMax = 100_000

func (c *negCache) get(key string, now time.Time) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[key]
	if !ok {
		return "", false
	}
	if !now.Before(e.until) {
		delete(c.m, key)
		return "", false
	}
	return e.msg, true
}

func (c *negCache) put(key, msg string, until time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= negCacheMax {
		now := time.Now()
		for k, e := range c.m {
			if !now.Before(e.until) {
				delete(c.m, k)
			}
		}
		if len(c.m) >= negCacheMax {
			clear(c.m)
		}
	}
	c.m[key] = negEntry{until: until, msg: msg}
}

func (c *negCache) del(key string) {
	c.mu.Lock()
	delete(c.m, key)
	c.mu.Unlock()
}

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

// enter waits while the version is being evicted, then holds it shared.
// NewVersionGate returns an empty gate.
func NewVersionGate() *VersionGate { return &VersionGate{m: map[string]*gateEntry{}} }

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

// memCache keeps small immutable objects (.info, .mod, checksum database
// lookups and tiles) in memory, so a hit costs a stat instead of an open,
// read and close. An entry is used only while the store still holds the
// same object (size and modification time), so an object deleted,
// evicted or replaced — by this process or another — is never served from
// memory. Bounded in bytes; when full it is emptied.
type memCache struct {
	mu    sync.Mutex
	m     map[string]*memEntry
	bytes int64
}

// ETag is the entity tag of an object without a recorded hash.
func ETag(size int64, mod time.Time) string {
	return `"` + strconv.FormatInt(size, 36) + "-" + strconv.FormatInt(mod.UnixNano(), 36) + `"`
}

// MemBody is content served from memory.
type MemBody struct {
	Data         []byte
	LastModified string // http.TimeFormat
	ETag         string // quoted; from size and modification time
}

type memEntry struct {
	data    []byte
	body    *MemBody
	info    storage.Info
	checked atomic.Int64 // unix nanoseconds of the last check against the store
}

// memRecheck is how long a memory entry is trusted before the store is
// asked again whether it still holds the object. Content is immutable and
// verified; the check only catches deletion (eviction, purge, repair), so
// a deleted object may be served from memory this long.
const memRecheck = 2 * time.Second

const (
	memMaxObject = 64 << 10
	memMaxBytes  = 64 << 20
)

func (c *memCache) get(key string) *memEntry {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[key]
}

func (c *memCache) put(key string, e *memEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.bytes+int64(len(e.data)) > memMaxBytes {
		clear(c.m)
		c.bytes = 0
	}
	if old := c.m[key]; old != nil {
		c.bytes -= int64(len(old.data))
	}
	c.m[key] = e
	c.bytes += int64(len(e.data))
}

func (c *memCache) del(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if old := c.m[key]; old != nil {
		c.bytes -= int64(len(old.data))
		delete(c.m, key)
	}
}

func memCacheable(req artifact.Request) bool {
	return req.Kind == artifact.Info || req.Kind == artifact.Mod || req.Kind == artifact.SumDB
}

// memHit answers an immutable request from memory when the store still
// holds the same object.
func (s *Service) memHit(ctx context.Context, req artifact.Request) *Result {
	if !memCacheable(req) {
		return nil
	}
	e := s.mem.get(req.Key)
	if e == nil {
		return nil
	}
	now := time.Now()
	if now.UnixNano()-e.checked.Load() > int64(memRecheck) {
		info, err := s.opts.Store.Stat(ctx, req.Key)
		if err != nil || info.Size != e.info.Size || !info.ModTime.Equal(e.info.ModTime) {
			s.mem.del(req.Key)
			return nil
		}
		e.checked.Store(now.UnixNano())
	}
	obj := &memObject{Reader: bytes.NewReader(e.data), info: e.info}
	return &Result{Object: obj, Outcome: Hit, Age: s.age(obj), Mem: e.body}
}

// memKeep reads a small immutable object into memory and returns an object
// serving those bytes; others are returned as they are. An object that
// cannot be read whole is an error, never a short answer.
func (s *Service) memKeep(req artifact.Request, obj storage.Object) (storage.Object, error) {
	info := obj.Info()
	if !memCacheable(req) || info.Size > memMaxObject {
		return obj, nil
	}
	data, err := io.ReadAll(io.LimitReader(obj, memMaxObject+1))
	obj.Close()
	if err != nil {
		return nil, fmt.Errorf("cache read %s: %w", req.Key, err)
	}
	if int64(len(data)) != info.Size {
		return nil, fmt.Errorf("cache read %s: %d bytes, want %d (changed while read)", req.Key, len(data), info.Size)
	}
	e := &memEntry{data: data, info: info, body: &MemBody{Data: data, LastModified: info.ModTime.UTC().Format(http.TimeFormat), ETag: ETag(info.Size, info.ModTime)}}
	e.checked.Store(time.Now().UnixNano())
	s.mem.put(req.Key, e)
	return &memObject{Reader: bytes.NewReader(data), info: info}, nil
}
