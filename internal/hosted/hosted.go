// Package hosted keeps modules that are published to the proxy rather than
// fetched: it accepts uploads under the configured hosted path patterns,
// makes every published version immutable, and records each version's
// hashes in a private transparency log (see Log).
//
// Contracts:
//   - Publish accepts a version only when its path matches a hosted
//     pattern of the namespace it is published in, its version is
//     canonical (no pseudo-versions), its zip passes
//     golang.org/x/mod/zip.CheckZip, its .mod equals the zip's go.mod
//     (or "module PATH\n" when the zip has none) and no upstream serves
//     that path@version.
//   - Immutability: the log decides. A version the log holds with the same
//     zip and go.mod hashes is accepted again without change (Created is
//     false: the HTTP layer answers 200); with other hashes it is
//     ErrConflict. A version purged (see Purged) is ErrPurged unless the
//     purge allowed re-publishing it.
//   - Zips stream: an upload is spooled to TempDir (bounded by
//     MaxZipSize), checked and hashed from there and moved into the store;
//     it is never held whole in memory.
//   - Order of a new version: the log append first (the commitment), then
//     the objects, each with its recorded hash, the zip and go.mod before
//     the .info, so a reader never sees .info before the zip; once logged,
//     the objects are written even if the caller's ctx ends. A process
//     killed between the two leaves a logged version without objects: the
//     same upload again stores them (idempotent), and modproxy verify
//     reports it meanwhile.
//   - Publishes and purges are serialised within the process (the
//     upstreams are asked before, outside the lock). On a disk store the
//     log and the purge marks are in the node's state directory. On a
//     store shared by replicas (Options.Shared) they are in the store
//     (see OpenSharedLog), every replica signing with the same configured
//     key; a publish or purge then also holds the cluster lock
//     "hosted-log" of Options.Coordinator and reads what the others
//     committed before it decides, and each append is a conditional
//     create, so two replicas never commit different records at one
//     index. A coordinator that cannot be reached refuses them
//     (ErrUnavailable) rather than risk it.
//   - Replicas see each other's changes when told through the
//     coordinator, every 30 s (Run), and before a version list or @latest
//     is answered; each new record is checked against the head signed
//     with it and against the largest head the replica saw (Log.Sync).
//   - Errors wrap ErrNotHosted, ErrInvalid, ErrConflict, ErrPurged or
//     ErrUnavailable (for errors.Is), or are the store's or the log's.
//   - A Service is safe for concurrent use. Its background work is
//     started by Run, on the caller's group.
package hosted

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/mod/modfile"
	"golang.org/x/mod/module"
	modzip "golang.org/x/mod/zip"

	"github.com/modproxy/modproxy/internal/audit"
	"github.com/modproxy/modproxy/internal/background"
	"github.com/modproxy/modproxy/internal/checksum"
	"github.com/modproxy/modproxy/internal/coord"
	"github.com/modproxy/modproxy/internal/event"
	"github.com/modproxy/modproxy/internal/storage"
)

// Error classes of Publish, for errors.Is.
var (
	ErrNotHosted   = errors.New("not a hosted module path")
	ErrInvalid     = errors.New("invalid upload")
	ErrConflict    = errors.New("conflicts with what exists")
	ErrPurged      = errors.New("purged and not to be published again")
	ErrUnavailable = errors.New("cannot be decided now")
)

// The wire format of the publish API, shared by the server (goproxy) and
// the client (package publish): POST APIPrefix + escaped module path +
// "/@v/" + escaped version, with a multipart/form-data body whose parts
// are PartInfo (optional), PartMod and PartZip, in that order.
const (
	APIPrefix = "/api/publish/"
	PartInfo  = "info"
	PartMod   = "mod"
	PartZip   = "zip"
)

// MaxInfo and MaxMod bound the .info and .mod parts (x/mod's own limit
// for a go.mod).
const (
	MaxInfo = 64 << 10
	MaxMod  = modzip.MaxGoMod
)

// Pattern is a hosted path pattern and where it is hosted.
type Pattern struct {
	// Match holds GOPRIVATE-style patterns (comma-separated).
	Match string
	// Namespace is where versions are published and listed: "" the root,
	// a namespace's name, or "*" every namespace and the root.
	Namespace string
}

// Store is what the service needs of the store.
type Store interface {
	Open(ctx context.Context, key string) (storage.Object, error)
	Stat(ctx context.Context, key string) (storage.Info, error)
	Put(ctx context.Context, key string, r io.Reader) (storage.Info, error)
	Delete(ctx context.Context, key string) error
	// Walk lists the purge marks' generations on a shared store.
	Walk(ctx context.Context, prefix string, fn func(storage.Info) error) error
}

// Index is told of every object the service stores (the metadata index:
// GC, listings and purges see hosted versions).
type Index interface {
	Stored(key string, size int64, t time.Time)
}

// Options configures a Service.
type Options struct {
	Store Store
	// TempDir holds uploads while they are checked; on the store's file
	// system for a disk store (the zip is then moved in, not copied).
	TempDir string
	// StateDir holds the log and the purge marks (DIR/state/hosted); on a
	// shared store, only the head of the shared log this node last
	// verified.
	StateDir string
	// Shared keeps the log and the purge marks in Store, shared by
	// replicas; Store must then be a SharedStore, and Key is required.
	Shared bool
	// Key is the log's signer key (ParseKey). Empty on a disk store: a key
	// is generated in StateDir at first start.
	Key string
	// Coordinator, with Shared, serialises publishes and purges between
	// replicas and tells them of each other's; nil: one replica.
	Coordinator coord.Coordinator
	Patterns    []Pattern
	// Upstream reports whether an upstream serves path@version for
	// namespace (the chain the path would be fetched from if it were not
	// hosted): true refuses the publish (ErrConflict); an error refuses it
	// as ErrUnavailable (it cannot be ruled out). nil: no upstream.
	Upstream func(ctx context.Context, namespace, path, version string) (bool, error)
	// MutablePrefixes are the key prefixes under which proxy services
	// cache lists and latest answers ("" for the root, "ns/NAME/"): a
	// publish drops the module's cached ones so that the new version is
	// listed at once.
	MutablePrefixes []string
	// MaxZipSize bounds an upload's zip; default x/mod's MaxZipFile.
	MaxZipSize int64
	Index      Index
	Audit      *audit.Log
	// Events receives event.Published and event.Purged; nil discards.
	Events event.Sink
	Logger *slog.Logger
	Now    func() time.Time
}

// Service publishes and keeps hosted modules. See the package
// documentation.
type Service struct {
	opts   Options
	log    *Log
	purges *purges
	logger *slog.Logger
	mu     sync.Mutex // serialises the decision and the writes of publishes and purges
}

// New opens the service's log (creating it and its key at first start)
// and its purge marks.
func New(opts Options) (*Service, error) {
	if opts.Store == nil {
		return nil, errors.New("hosted: no Store")
	}
	if opts.MaxZipSize <= 0 {
		opts.MaxZipSize = modzip.MaxZipFile
	}
	if opts.Events == nil {
		opts.Events = event.Discard{}
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	var (
		l     *Log
		marks marksFile = dirMarks{filepath.Join(opts.StateDir, purgesFile)}
		err   error
	)
	ctx := context.Background()
	if opts.Shared {
		ss, ok := opts.Store.(SharedStore)
		if !ok {
			return nil, errors.New("hosted: the shared store cannot create objects conditionally")
		}
		if opts.Key == "" {
			return nil, errors.New("hosted: a shared store needs the log's signer key from configuration")
		}
		if l, err = OpenSharedLog(ctx, ss, opts.Key, opts.StateDir, true); err != nil {
			return nil, err
		}
		marks = storeMarks{opts.Store}
	} else if l, err = OpenLog(opts.StateDir, true, opts.Key); err != nil {
		return nil, err
	}
	if err := l.Fault(); err != nil {
		opts.Logger.Error("hosted: the private log does not verify; publishing and purging hosted versions is refused until it does (modproxy verify)", "err", err)
	}
	p, err := openPurges(ctx, marks)
	if err != nil {
		return nil, err
	}
	return &Service{opts: opts, log: l, purges: p, logger: opts.Logger}, nil
}

// syncMessage is broadcast through the coordinator after a publish or a
// purge on a shared store.
const syncMessage = "hosted-log"

// Run starts the background work of a service on a shared store, on g
// until ctx is done: a Sync every 30 s and, with a coordinator, whenever
// another replica says it committed something. On a disk store there is
// none.
func (s *Service) Run(ctx context.Context, g *background.Group) {
	if !s.opts.Shared {
		return
	}
	g.Every(ctx, "hosted log sync", 30*time.Second, func(ctx context.Context) { s.syncLogged(ctx) })
	if c := s.opts.Coordinator; c != nil {
		g.Go(ctx, "hosted log subscription", func(ctx context.Context) {
			c.Subscribe(ctx, func(msg string) {
				if msg == syncMessage {
					s.syncLogged(ctx)
				}
			})
		})
	}
}

// Sync reads what other replicas committed to a shared log and purge
// marks (see Log.Sync); on a disk store it does nothing.
func (s *Service) Sync(ctx context.Context) error {
	if !s.opts.Shared {
		return nil
	}
	before := s.log.Fault()
	err := s.log.Sync(ctx)
	if err != nil && before == nil && errors.Is(err, ErrTampered) {
		s.logger.Error("hosted: the shared log does not verify; publishing and purging hosted versions is refused until it does (modproxy verify)", "err", err)
	}
	if err != nil {
		return err
	}
	return s.purges.reload(ctx)
}

// syncLogged is Sync for background callers: failures are logged.
func (s *Service) syncLogged(ctx context.Context) {
	if err := s.Sync(ctx); err != nil && ctx.Err() == nil && !errors.Is(err, ErrTampered) {
		s.logger.Warn("hosted: reading the shared log", "err", err)
	}
}

// lockWait bounds how long a publish or purge waits for another
// replica's to end; lockTTL is the cluster lock's lease (renewed while
// held).
const (
	lockWait = 30 * time.Second
	lockTTL  = 30 * time.Second
)

// decide takes what serialises decisions about the log and the purge
// marks: the process's mutex and, on a shared store, the cluster lock,
// after which it reads what other replicas committed. The returned func
// releases them and, when changed is set by then, tells the other
// replicas.
func (s *Service) decide(ctx context.Context) (release func(changed bool), err error) {
	s.mu.Lock()
	if !s.opts.Shared {
		return func(bool) { s.mu.Unlock() }, nil
	}
	unlock, err := s.clusterLock(ctx)
	if err == nil {
		if err = s.Sync(ctx); err != nil {
			unlock()
			err = fmt.Errorf("%w: the shared hosted log: %w", ErrUnavailable, err)
		}
	}
	if err != nil {
		s.mu.Unlock()
		return nil, err
	}
	return func(changed bool) {
		unlock()
		s.mu.Unlock()
		if c := s.opts.Coordinator; changed && c != nil {
			if err := c.Publish(context.WithoutCancel(ctx), syncMessage); err != nil {
				s.logger.Warn("hosted: could not tell the other replicas of a change; they see it within 30 s", "err", err)
			}
		}
	}, nil
}

// clusterLock takes the coordinator's "hosted-log" lock, waiting up to
// lockWait for another replica to give it up. Without a coordinator
// there is nothing to take.
func (s *Service) clusterLock(ctx context.Context) (func(), error) {
	c := s.opts.Coordinator
	if c == nil {
		return func() {}, nil
	}
	deadline := time.Now().Add(lockWait)
	for delay := 10 * time.Millisecond; ; delay = min(2*delay, 500*time.Millisecond) {
		lock, ok, err := c.TryLock(ctx, "hosted-log", lockTTL)
		if err != nil {
			return nil, fmt.Errorf("%w: the cluster lock of the hosted log: %w", ErrUnavailable, err)
		}
		if ok {
			return func() {
				rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
				defer cancel()
				_ = lock.Release(rctx) // an unreleased lease expires after lockTTL
			}, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%w: another replica has held the hosted log's lock for %s", ErrUnavailable, lockWait)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%w: %w", ErrUnavailable, ctx.Err())
		case <-time.After(delay):
		}
	}
}

// Log returns the service's log.
func (s *Service) Log() *Log { return s.log }

// IsHosted reports whether path matches a hosted pattern in any namespace.
func (s *Service) IsHosted(path string) bool {
	return MatchAny(s.opts.Patterns, path)
}

// MatchAny reports whether path matches one of the patterns, wherever it
// is hosted.
func MatchAny(patterns []Pattern, path string) bool {
	for _, p := range patterns {
		if module.MatchPrefixPatterns(p.Match, path) {
			return true
		}
	}
	return false
}

// HostedIn reports whether path is hosted in namespace ("" the root).
func (s *Service) HostedIn(namespace, path string) bool {
	for _, p := range s.opts.Patterns {
		if (p.Namespace == namespace || p.Namespace == "*") && module.MatchPrefixPatterns(p.Match, path) {
			return true
		}
	}
	return false
}

// Upload is one version to publish.
type Upload struct {
	Namespace string // where it is published ("" the root)
	Module    string
	Version   string
	Info      []byte    // the .info JSON; nil: Version and the time of publishing
	Mod       []byte    // the go.mod
	Zip       io.Reader // the module zip, streamed
	Identity  string    // who publishes (audit, events)
}

// Result says what Publish did.
type Result struct {
	Created bool   // false: the same version was already published
	Zip     string // h1 of the zip
	Mod     string // h1 of the go.mod
	Index   int64  // the record's index in the log
}

// Publish checks and stores u. See the package documentation for the
// rules and errors.
func (s *Service) Publish(ctx context.Context, u Upload) (Result, error) {
	if err := module.Check(u.Module, u.Version); err != nil {
		return Result{}, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if module.CanonicalVersion(u.Version) != u.Version || module.IsPseudoVersion(u.Version) {
		return Result{}, fmt.Errorf("%w: version %q is not a canonical release or pre-release version", ErrInvalid, u.Version)
	}
	if !s.HostedIn(u.Namespace, u.Module) {
		return Result{}, fmt.Errorf("%w: %s is not under a hosted pattern of this proxy", ErrNotHosted, u.Module)
	}
	mv := module.Version{Path: u.Module, Version: u.Version}
	info, err := s.checkInfo(u)
	if err != nil {
		return Result{}, err
	}
	if err := checkMod(u.Module, u.Mod); err != nil {
		return Result{}, err
	}
	spool, err := s.spool(u.Zip)
	if err != nil {
		return Result{}, err
	}
	defer os.Remove(spool)
	e, err := checkZip(mv, spool, u.Mod)
	if err != nil {
		return Result{}, err
	}
	// The upstreams are asked before the lock (a slow upstream must not
	// hold other publishes up); the decision is taken again under it.
	key := u.Module + "@" + u.Version
	if _, logged := s.log.Lookup(u.Module, u.Version); !logged && s.opts.Upstream != nil {
		served, err := s.opts.Upstream(ctx, u.Namespace, u.Module, u.Version)
		if err != nil {
			return Result{}, fmt.Errorf("%w: asking the upstreams whether they serve %s: %w", ErrUnavailable, key, err)
		}
		if served {
			return Result{}, fmt.Errorf("%w: an upstream serves %s; a hosted version must not shadow one", ErrConflict, key)
		}
	}
	release, err := s.decide(ctx)
	if err != nil {
		return Result{}, err
	}
	changed := false
	defer func() { release(changed) }()
	mark, purged := s.purges.get(key)
	if purged && !mark.AllowRepublish {
		return Result{}, fmt.Errorf("%w: %s was purged on %s (%s)", ErrPurged, key, mark.Time.Format(time.RFC3339), mark.Reason)
	}
	old, logged := s.log.Lookup(u.Module, u.Version)
	switch {
	case logged && old.Zip == e.Zip && old.Mod == e.Mod:
		e.Index = old.Index
	case logged && !purged:
		return Result{}, fmt.Errorf("%w: %s is already published with other content (zip %s, go.mod %s); published versions never change", ErrConflict, key, old.Zip, old.Mod)
	}
	created := !logged || old.Zip != e.Zip || old.Mod != e.Mod
	if created {
		if e.Index, err = s.log.Append(ctx, u.Module, u.Version, e); err != nil {
			if errors.Is(err, ErrRaced) {
				return Result{}, fmt.Errorf("%w: %w; publish again", ErrUnavailable, err)
			}
			return Result{}, err
		}
		changed = true
	}
	// Once logged, the objects are written even if the client leaves.
	if err := s.store(context.WithoutCancel(ctx), mv, e, info, u.Mod, spool, created); err != nil {
		return Result{}, err
	}
	if purged {
		changed = true
		if err := s.purges.remove(ctx, key); err != nil {
			if errors.Is(err, ErrRaced) {
				return Result{}, fmt.Errorf("%w: %w; publish again", ErrUnavailable, err)
			}
			return Result{}, err
		}
	}
	res := Result{Created: created, Zip: e.Zip, Mod: e.Mod, Index: e.Index}
	if created {
		_ = s.opts.Audit.Record(audit.Event{Actor: u.Identity, Action: "publish", Target: key,
			Reason: fmt.Sprintf("published (log index %d)", e.Index), Hashes: map[string]string{"zip": e.Zip, "mod": e.Mod}})
		s.opts.Events.Emit(event.Event{Type: event.Published, Time: s.opts.Now(), Namespace: u.Namespace, Module: u.Module,
			Version: u.Version, Identity: u.Identity})
		s.logger.Info("published", "module", u.Module, "version", u.Version, "h1", e.Zip, "log_index", e.Index, "identity", u.Identity)
	}
	return res, nil
}

// checkInfo validates the .info of u (or makes one) and returns it in the
// form the proxy serves.
func (s *Service) checkInfo(u Upload) ([]byte, error) {
	var info struct {
		Version string
		Time    time.Time
	}
	if len(u.Info) > 0 {
		if err := json.Unmarshal(u.Info, &info); err != nil {
			return nil, fmt.Errorf("%w: .info: %w", ErrInvalid, err)
		}
		if info.Version != u.Version {
			return nil, fmt.Errorf("%w: .info names version %q, not %q", ErrInvalid, info.Version, u.Version)
		}
	}
	if info.Time.IsZero() {
		info.Time = s.opts.Now()
	}
	info.Version = u.Version
	info.Time = info.Time.UTC().Truncate(time.Second)
	return json.Marshal(info)
}

// checkMod checks that a go.mod parses and declares path.
func checkMod(path string, mod []byte) error {
	if len(mod) == 0 {
		return fmt.Errorf("%w: no go.mod", ErrInvalid)
	}
	if modfile.ModulePath(mod) != path {
		return fmt.Errorf("%w: go.mod does not declare module %s", ErrInvalid, path)
	}
	return nil
}

// spool copies the zip into a new temporary file, bounded by MaxZipSize,
// and returns its name.
func (s *Service) spool(r io.Reader) (string, error) {
	if r == nil {
		return "", fmt.Errorf("%w: no zip", ErrInvalid)
	}
	f, err := os.CreateTemp(s.opts.TempDir, "publish-*.zip")
	if err != nil {
		return "", fmt.Errorf("hosted: spooling the zip: %w", err)
	}
	n, err := io.Copy(f, io.LimitReader(r, s.opts.MaxZipSize+1))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && n > s.opts.MaxZipSize {
		err = fmt.Errorf("%w: zip larger than %d bytes", ErrInvalid, s.opts.MaxZipSize)
	}
	if err != nil {
		os.Remove(f.Name())
		if errors.Is(err, ErrInvalid) {
			return "", err
		}
		return "", fmt.Errorf("hosted: spooling the zip: %w", err)
	}
	return f.Name(), nil
}

// checkZip checks the spooled zip with x/mod, compares its go.mod with
// mod and returns both hashes.
func checkZip(mv module.Version, spool string, mod []byte) (Entry, error) {
	if _, err := modzip.CheckZip(mv, spool); err != nil {
		return Entry{}, fmt.Errorf("%w: zip: %w", ErrInvalid, err)
	}
	inZip, err := ZipGoMod(mv, spool)
	if err != nil {
		return Entry{}, fmt.Errorf("%w: zip: %w", ErrInvalid, err)
	}
	if inZip == nil {
		inZip = []byte("module " + modfile.AutoQuote(mv.Path) + "\n")
	}
	if string(inZip) != string(mod) {
		return Entry{}, fmt.Errorf("%w: the .mod differs from the zip's go.mod", ErrInvalid)
	}
	zh, err := checksum.HashZipFile(spool)
	if err != nil {
		return Entry{}, fmt.Errorf("%w: zip: %w", ErrInvalid, err)
	}
	mh, err := checksum.HashGoMod(mod)
	if err != nil {
		return Entry{}, err
	}
	return Entry{Zip: zh, Mod: mh}, nil
}

// ZipGoMod returns the go.mod at the root of the module zip in file
// name, or nil when it has none (then the module's go.mod is
// "module PATH\n").
func ZipGoMod(mv module.Version, name string) ([]byte, error) {
	zr, err := zip.OpenReader(name)
	if err != nil {
		return nil, err
	}
	defer zr.Close()
	want := mv.Path + "@" + mv.Version + "/go.mod"
	for _, f := range zr.File {
		if f.Name == want {
			rc, err := f.Open()
			if err != nil {
				return nil, err
			}
			defer rc.Close()
			return io.ReadAll(io.LimitReader(rc, MaxMod))
		}
	}
	return nil, nil
}

// Keys returns the store keys of a version's files.
func Keys(mv module.Version) (zipKey, modKey, infoKey string, err error) {
	ep, err := module.EscapePath(mv.Path)
	if err != nil {
		return "", "", "", err
	}
	ev, err := module.EscapeVersion(mv.Version)
	if err != nil {
		return "", "", "", err
	}
	base := ep + "/@v/" + ev
	return base + ".zip", base + ".mod", base + ".info", nil
}

// store writes the version's objects: each file's recorded hash before it,
// the zip and go.mod before the .info. The zip and go.mod are always
// written (an idempotent publish restores them when they were lost or
// damaged: their bytes are the logged ones); an existing .info is kept
// unless fresh is set (a new log record), so the first publish's time
// stays.
func (s *Service) store(ctx context.Context, mv module.Version, e Entry, info, mod []byte, spool string, fresh bool) error {
	zipKey, modKey, infoKey, err := Keys(mv)
	if err != nil {
		return err
	}
	now := s.opts.Now()
	put := func(key string, r io.Reader) error { return s.put(ctx, key, r, now) }
	if err := put(modKey+".h1", strings.NewReader(e.Mod)); err != nil {
		return err
	}
	if err := put(modKey, bytes.NewReader(mod)); err != nil {
		return err
	}
	if err := put(zipKey+".h1", strings.NewReader(e.Zip)); err != nil {
		return err
	}
	if err := s.putZip(ctx, zipKey, spool, now); err != nil {
		return err
	}
	if _, err := s.opts.Store.Stat(ctx, infoKey); fresh || errors.Is(err, fs.ErrNotExist) {
		if err := put(infoKey, bytes.NewReader(info)); err != nil {
			return err
		}
	}
	s.dropMutable(ctx, mv.Path)
	return nil
}

// putZip moves the spooled zip into the store when the store can take a
// file (storage.FileMover), else copies it with a streamed Put.
func (s *Service) putZip(ctx context.Context, key, spool string, now time.Time) error {
	if fm, ok := s.opts.Store.(storage.FileMover); ok {
		if si, err := fm.MoveIn(ctx, spool, key); err == nil {
			if s.opts.Index != nil {
				s.opts.Index.Stored(key, si.Size, now)
			}
			return nil
		} // any failure leaves the spool as it was: Put it instead
	}
	f, err := os.Open(spool)
	if err != nil {
		return fmt.Errorf("hosted: %w", err)
	}
	defer f.Close()
	return s.put(ctx, key, f, now)
}

// put stores r under key and tells the index.
func (s *Service) put(ctx context.Context, key string, r io.Reader, now time.Time) error {
	si, err := s.opts.Store.Put(ctx, key, r)
	if err != nil {
		return fmt.Errorf("hosted: storing %s: %w", key, err)
	}
	if s.opts.Index != nil {
		s.opts.Index.Stored(key, si.Size, now)
	}
	return nil
}

// dropMutable deletes the module's cached list and latest answers in
// every service, so that they are computed again from the log.
func (s *Service) dropMutable(ctx context.Context, path string) {
	ep, err := module.EscapePath(path)
	if err != nil {
		return
	}
	prefixes := s.opts.MutablePrefixes
	if len(prefixes) == 0 {
		prefixes = []string{""}
	}
	for _, p := range prefixes {
		for _, k := range []string{p + ep + "/@v/list", p + ep + "/@latest"} {
			if err := s.opts.Store.Delete(ctx, k); err != nil {
				s.logger.Warn("hosted: dropping a cached list", "key", k, "err", err)
			}
		}
	}
}
