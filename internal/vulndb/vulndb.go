// Package vulndb keeps a Go vulnerability database (OSV entries as the
// vulndb API serves them: index/db.json, index/modules.json, ID/ID.json)
// in the proxy's store, mirrored from an operator-configured URL or
// imported from the database's zip archive, and answers from it: the
// files for /vuln/, and the advisories of a module (policy.Source).
//
// # Generations
//
// A database is admitted whole as a generation: its two indexes, every
// entry index/modules.json names (each present and parsing, its id the
// file's), and a manifest of the entries with their ranges. Entries are
// stored once under a key made of their ID and content hash
// (vuln/entry/ID/HASH.json) and shared by the generations that hold the
// same bytes. Only after all of it is stored, the small pointer object
// vuln/current is written, naming the generation: readers read only
// through it, so nothing half-fetched or half-imported is ever served. A
// failed admission deletes what it wrote and leaves the current generation
// as it was (stale-if-error). After a switch the generation before the
// previous one is removed (the previous one stays for readers in flight
// and replicas that have not reloaded yet), and objects no generation in
// use refers to are removed once an hour old (leftovers of a crash or of
// a failed admission).
//
// The current generation is held in memory with a per-module map of
// advisories built when it is switched in, so Advisories reads no store.
//
// All methods are safe for concurrent use; admissions (Refresh, Import)
// are serialized.
package vulndb

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/modproxy/modproxy/internal/artifact"
	"github.com/modproxy/modproxy/internal/policy"
	"github.com/modproxy/modproxy/internal/storage"
	"github.com/modproxy/modproxy/internal/upstream"
)

// Store keys, all under vuln/.
const (
	pointerKey  = "vuln/current"
	genPrefix   = "vuln/gen/"
	entryPrefix = "vuln/entry/"
)

// sweepGrace is how old an object no generation in use refers to must be
// before a sweep removes it: younger ones may belong to an admission in
// progress elsewhere (an offline import, another replica).
const sweepGrace = time.Hour

// maxFile bounds every file of an imported archive (decompressed).
const maxFile = 64 << 20

// ErrNoDatabase is returned (wrapped) by Open when no generation has
// been admitted. It wraps fs.ErrNotExist (errclass NotExist).
var ErrNoDatabase = fmt.Errorf("no vulnerability database: %w", fs.ErrNotExist)

// Options configures a DB.
type Options struct {
	// Store holds the database under vuln/.
	Store storage.Store
	// Source is the database to mirror (vuln.source), fetched with paths
	// relative to it ("index/db.json"); nil means no mirror. SourceName
	// names it in logs and the manifest (without credentials).
	Source     upstream.Fetcher
	SourceName string
	// Refresh is the interval of Run's refreshes; default 1h.
	Refresh time.Duration
	// Concurrency bounds the entries fetched at once; default 8.
	Concurrency int
	Logger      *slog.Logger
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// DB is the vulnerability database. See the package documentation.
type DB struct {
	opts     Options
	log      *slog.Logger
	cur      atomic.Pointer[generation]
	admitMu  sync.Mutex   // serializes admissions
	lastOK   atomic.Int64 // unix nanoseconds of the last successful refresh or admission; 0: none
	failures atomic.Int64
	started  time.Time
}

// New returns a DB; it reads nothing until Load.
func New(opts Options) *DB {
	if opts.Refresh <= 0 {
		opts.Refresh = time.Hour
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = 8
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &DB{opts: opts, log: opts.Logger, started: opts.Now()}
}

// pointer is the content of vuln/current.
type pointer struct {
	Generation string `json:"generation"`
}

// manifest is a generation's vuln/gen/G/manifest.json.
type manifest struct {
	Generation string      `json:"generation"`
	Previous   string      `json:"previous,omitempty"` // the generation it replaced
	Source     string      `json:"source"`             // mirror URL or archive name
	Admitted   time.Time   `json:"admitted"`
	DBModified time.Time   `json:"db_modified"`
	Entries    []entryMeta `json:"entries"`
}

type entryMeta struct {
	ID       string         `json:"id"`
	Key      string         `json:"key"`
	Modified time.Time      `json:"modified"`
	Aliases  []string       `json:"aliases,omitempty"`
	Summary  string         `json:"summary,omitempty"`
	Affected []affectedMeta `json:"affected,omitempty"`
}

type affectedMeta struct {
	Module string         `json:"module"`
	Ranges []policy.Range `json:"ranges,omitempty"`
}

// generation is an admitted database in memory.
type generation struct {
	m        manifest
	entries  map[string]*entryMeta        // by ID
	byModule map[string][]policy.Advisory // by module path
}

func genKey(g, name string) string { return genPrefix + g + "/" + name }

func newGeneration(m manifest) *generation {
	g := &generation{m: m, entries: make(map[string]*entryMeta, len(m.Entries)), byModule: map[string][]policy.Advisory{}}
	for i := range m.Entries {
		e := &m.Entries[i]
		g.entries[e.ID] = e
		for _, a := range e.Affected {
			g.byModule[a.Module] = append(g.byModule[a.Module], policy.Advisory{ID: e.ID, Aliases: e.Aliases, Ranges: a.Ranges})
		}
	}
	return g
}

// keys are the store keys the generation refers to.
func (g *generation) keys() map[string]bool {
	k := map[string]bool{pointerKey: true}
	for _, name := range []string{artifact.VulnDBIndex, artifact.VulnModulesIndex, "manifest.json"} {
		k[genKey(g.m.Generation, name)] = true
	}
	for _, e := range g.m.Entries {
		k[e.Key] = true
	}
	return k
}

func (d *DB) now() time.Time { return d.opts.Now() }

// Load makes the generation vuln/current names the current one, if it is
// not already (a database admitted by another process: an offline import,
// another replica). No pointer means no database and no error. On error
// the current generation stays as it was.
func (d *DB) Load(ctx context.Context) error {
	b, err := d.readAll(ctx, pointerKey)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("vulnerability database: %w", err)
	}
	var p pointer
	if err := json.Unmarshal(b, &p); err != nil || p.Generation == "" {
		return fmt.Errorf("vulnerability database: %s is not a generation pointer", pointerKey)
	}
	if g := d.cur.Load(); g != nil && g.m.Generation == p.Generation {
		return nil
	}
	g, err := d.loadGeneration(ctx, p.Generation)
	if err != nil {
		return fmt.Errorf("vulnerability database: generation %s: %w", p.Generation, err)
	}
	d.cur.Store(g)
	if d.lastOK.Load() == 0 {
		d.lastOK.Store(g.m.Admitted.UnixNano())
	}
	d.log.Info("vulnerability database loaded", "generation", g.m.Generation, "source", g.m.Source, "entries", len(g.m.Entries), "modified", g.m.DBModified)
	return nil
}

func (d *DB) loadGeneration(ctx context.Context, name string) (*generation, error) {
	b, err := d.readAll(ctx, genKey(name, "manifest.json"))
	if err != nil {
		return nil, err
	}
	var m manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	if m.Generation != name {
		return nil, fmt.Errorf("manifest names generation %q", m.Generation)
	}
	return newGeneration(m), nil
}

func (d *DB) readAll(ctx context.Context, key string) ([]byte, error) {
	o, err := d.opts.Store.Open(ctx, key)
	if err != nil {
		return nil, err
	}
	defer o.Close()
	return io.ReadAll(io.LimitReader(o, maxFile))
}

// Open opens a file of the current generation by its database path
// ("index/db.json", "index/modules.json", "ID/ID.json"; artifact.ParseVuln)
// and returns it with its modification time (the database's, or the
// entry's). The caller closes it. A path that is not a database path
// wraps artifact.ErrInvalid; no database (ErrNoDatabase) or no such entry
// wraps fs.ErrNotExist.
func (d *DB) Open(ctx context.Context, name string) (io.ReadSeekCloser, time.Time, error) {
	id, err := artifact.ParseVuln(name)
	if err != nil {
		return nil, time.Time{}, err
	}
	g := d.cur.Load()
	if g == nil {
		return nil, time.Time{}, ErrNoDatabase
	}
	key, mod := genKey(g.m.Generation, name), g.m.DBModified
	if id != "" {
		e := g.entries[id]
		if e == nil {
			return nil, time.Time{}, fmt.Errorf("vulnerability %s: %w", id, fs.ErrNotExist)
		}
		key, mod = e.Key, e.Modified
	}
	o, err := d.opts.Store.Open(ctx, key)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("vulnerability database %s: %w", name, err)
	}
	return o, mod, nil
}

// Advisories implements policy.Source: the advisories of the current
// generation that name modulePath as an affected package, with their
// SEMVER ranges for it; none naming it is nil and no error. Without a
// database (none imported, the mirror's first refresh not done) it is an
// error wrapping ErrNoDatabase: the policy cannot tell, and fails closed
// under "block". It reads no store.
func (d *DB) Advisories(_ context.Context, modulePath string) ([]policy.Advisory, error) {
	g := d.cur.Load()
	if g == nil {
		return nil, ErrNoDatabase
	}
	return g.byModule[modulePath], nil
}

var _ policy.Source = (*DB)(nil)

// Status is what is known about the database in use.
type Status struct {
	Generation string    // "" when there is none
	Source     string    // the mirror URL or archive it came from
	Admitted   time.Time // when the generation was admitted
	Modified   time.Time // index/db.json's modified time
	Entries    int
	// LastSuccess is the last successful refresh (also one that found
	// nothing new) or admission by this process, else Admitted.
	LastSuccess time.Time
	Failures    int64 // failed refreshes and imports since start
}

// Status reports the current generation and refresh health.
func (d *DB) Status() Status {
	s := Status{Failures: d.failures.Load()}
	if n := d.lastOK.Load(); n != 0 {
		s.LastSuccess = time.Unix(0, n)
	}
	if g := d.cur.Load(); g != nil {
		s.Generation, s.Source, s.Admitted, s.Modified, s.Entries = g.m.Generation, g.m.Source, g.m.Admitted, g.m.DBModified, len(g.m.Entries)
	}
	return s
}

// Age is the time since the last successful refresh or admission of the
// data served (modproxy_vuln_data_age_seconds), or since New while there
// is none.
func (d *DB) Age() time.Duration {
	n := d.lastOK.Load()
	if n == 0 || d.cur.Load() == nil {
		return d.now().Sub(d.started)
	}
	return d.now().Sub(time.Unix(0, n))
}

// Failures is the number of failed refreshes and imports since start.
func (d *DB) Failures() int64 { return d.failures.Load() }

// reader reads one file of a database being admitted, by database path.
type reader func(ctx context.Context, name string) ([]byte, error)

// admit stores the database read reads as a new generation and switches
// to it; see the package documentation. prev is the current generation
// (nil: none).
func (d *DB) admit(ctx context.Context, source string, read reader, dbBytes []byte, db dbMeta) (g *generation, err error) {
	prev := d.cur.Load()
	modBytes, err := read(ctx, artifact.VulnModulesIndex)
	if err != nil {
		return nil, err
	}
	ids, err := parseModules(modBytes)
	if err != nil {
		return nil, err
	}
	name, err := generationName(d.now())
	if err != nil {
		return nil, err
	}
	var (
		mu      sync.Mutex
		written []string // keys this admission stored, removed again on failure
	)
	put := func(ctx context.Context, key string, b []byte) error {
		if _, err := d.opts.Store.Put(ctx, key, bytes.NewReader(b)); err != nil {
			return fmt.Errorf("storing %s: %w", key, err)
		}
		mu.Lock()
		written = append(written, key)
		mu.Unlock()
		return nil
	}
	defer func() {
		if err != nil {
			d.remove(context.WithoutCancel(ctx), written)
		}
	}()
	entries, err := d.entries(ctx, ids, prev, read, put)
	if err != nil {
		return nil, err
	}
	m := manifest{Generation: name, Source: source, Admitted: d.now().UTC(), DBModified: db.Modified, Entries: entries}
	if prev != nil {
		m.Previous = prev.m.Generation
	}
	mb, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	for _, f := range []struct {
		name string
		b    []byte
	}{{artifact.VulnDBIndex, dbBytes}, {artifact.VulnModulesIndex, modBytes}, {"manifest.json", mb}} {
		if err := put(ctx, genKey(name, f.name), f.b); err != nil {
			return nil, err
		}
	}
	pb, _ := json.Marshal(pointer{Generation: name})
	// The switch: last, and the only write readers see.
	if _, err := d.opts.Store.Put(ctx, pointerKey, bytes.NewReader(pb)); err != nil {
		return nil, fmt.Errorf("storing %s: %w", pointerKey, err)
	}
	g = newGeneration(m)
	d.cur.Store(g)
	d.lastOK.Store(d.now().UnixNano())
	d.log.Info("vulnerability database admitted", "generation", name, "source", source, "entries", len(entries), "modified", db.Modified)
	d.cleanup(context.WithoutCancel(ctx), g, prev)
	return g, nil
}

// entries reads, checks and stores every entry ids names, reusing those
// of prev whose modified time is unchanged.
func (d *DB) entries(ctx context.Context, ids map[string]time.Time, prev *generation, read reader, put func(context.Context, string, []byte) error) ([]entryMeta, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var (
		mu   sync.Mutex
		out  = make([]entryMeta, 0, len(ids))
		wg   sync.WaitGroup
		sem  = make(chan struct{}, d.opts.Concurrency)
		keys = map[string]bool{} // stored by this admission or held by prev
	)
	if prev != nil {
		for _, e := range prev.m.Entries {
			keys[e.Key] = true
		}
	}
	one := func(id string, modified time.Time) error {
		if prev != nil {
			if e := prev.entries[id]; e != nil && !modified.IsZero() && e.Modified.Equal(modified) {
				mu.Lock()
				out = append(out, *e)
				mu.Unlock()
				return nil
			}
		}
		b, err := read(ctx, artifact.VulnEntryPath(id))
		if err != nil {
			return err
		}
		e, err := parseEntry(id, b)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		e.Key = entryPrefix + id + "/" + hex.EncodeToString(sum[:16]) + ".json"
		mu.Lock()
		have := keys[e.Key]
		keys[e.Key] = true
		mu.Unlock()
		if !have {
			if err := put(ctx, e.Key, b); err != nil {
				return err
			}
		}
		mu.Lock()
		out = append(out, e)
		mu.Unlock()
		return nil
	}
	for id, modified := range ids {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := one(id, modified); err != nil {
				cancel(err)
			}
		})
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return nil, err
	}
	sortEntries(out)
	return out, nil
}

func sortEntries(es []entryMeta) {
	slices.SortFunc(es, func(a, b entryMeta) int { return strings.Compare(a.ID, b.ID) })
}

// generationName is unique and sorts by admission time.
func generationName(t time.Time) (string, error) {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return t.UTC().Format("20060102T150405.000000000Z") + "-" + hex.EncodeToString(b[:]), nil
}

// remove deletes keys, logging failures (a sweep removes what is left).
func (d *DB) remove(ctx context.Context, keys []string) {
	for _, k := range keys {
		if err := d.opts.Store.Delete(ctx, k); err != nil {
			d.log.Warn("vulnerability database: removing an object failed; a later sweep removes it", "key", k, "err", err)
		}
	}
}

// cleanup runs after a switch from prev to g: the generation prev replaced
// is removed with the entries only it used, then objects under vuln/ that
// neither g nor prev uses and that are older than sweepGrace.
func (d *DB) cleanup(ctx context.Context, g, prev *generation) {
	keep := g.keys()
	if prev != nil {
		for k := range prev.keys() {
			keep[k] = true
		}
		if old := prev.m.Previous; old != "" && old != g.m.Generation {
			if og, err := d.loadGeneration(ctx, old); err == nil {
				var drop []string
				for k := range og.keys() {
					if !keep[k] {
						drop = append(drop, k)
					}
				}
				d.remove(ctx, drop)
			}
		}
	}
	cutoff := d.now().Add(-sweepGrace)
	var drop []string
	for _, prefix := range []string{genPrefix, entryPrefix} {
		err := d.opts.Store.Walk(ctx, prefix, func(info storage.Info) error {
			if !keep[info.Key] && info.ModTime.Before(cutoff) {
				drop = append(drop, info.Key)
			}
			return nil
		})
		if err != nil {
			d.log.Warn("vulnerability database: sweep failed", "err", err)
			return
		}
	}
	d.remove(ctx, drop)
}
