package hosted

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/modproxy/modproxy/internal/atomicfile"
	"github.com/modproxy/modproxy/internal/audit"
	"github.com/modproxy/modproxy/internal/event"
	"github.com/modproxy/modproxy/internal/storage"
)

// purgesFile holds the purge marks, in the state directory (or, on a
// shared store before generations, under SharedPurgesKey).
const purgesFile = "purged.json"

// SharedPurgesKey is where the purge marks were on a store shared by
// replicas before they were kept in generations (SharedPurgesPrefix); it is
// read while no generation exists.
const SharedPurgesKey = "_state/hosted/" + purgesFile

// SharedPurgesPrefix is where the generations of the purge marks are on a
// store shared by replicas: SharedPurgesPrefix + the generation in 12
// decimal digits, each the whole document.
const SharedPurgesPrefix = "_state/hosted/purges/"

// maxPurges bounds the purge marks' document.
const maxPurges = 64 << 20

// Mark is the record of a purged hosted version.
type Mark struct {
	Time           time.Time `json:"time"`
	Actor          string    `json:"actor,omitempty"`
	Reason         string    `json:"reason"`
	AllowRepublish bool      `json:"allow_republish,omitempty"`
}

// purges are the purge marks, keyed by path@version, kept as one JSON
// document by a marksFile.
type purges struct {
	files marksFile
	mu    sync.Mutex
	m     map[string]Mark
	gen   int64 // the generation m was read from or written as
}

// marksFile reads and replaces the marks' document.
type marksFile interface {
	// read returns the latest document and its generation;
	// fs.ErrNotExist when there is none (generation 0).
	read(ctx context.Context) (b []byte, gen int64, err error)
	// write replaces the document of generation gen with b and returns
	// b's generation; ErrRaced when gen is no longer the latest (another
	// writer replaced it: nothing was written).
	write(ctx context.Context, gen int64, b []byte) (int64, error)
}

// dirMarks is the document in a state directory, replaced with atomicfile
// (one process writes it; its generation is always 0).
type dirMarks struct{ path string }

func (d dirMarks) read(context.Context) ([]byte, int64, error) {
	b, err := atomicfile.Read(d.path, maxPurges)
	return b, 0, err
}

func (d dirMarks) write(_ context.Context, _ int64, b []byte) (int64, error) {
	return 0, atomicfile.Write(d.path, b, 0o644)
}

// MarksStore is what reading purge marks kept in a shared store needs.
type MarksStore interface {
	storage.Opener
	Walk(ctx context.Context, prefix string, fn func(storage.Info) error) error
}

// storeMarks is the document in a shared store, in generations: each
// change creates the next generation's object (SharedStore.PutIfAbsent),
// so two writers that both changed generation g cannot both succeed, even
// when the cluster lock that serialises them was lost (a lease that
// expired during a pause): the second gets ErrRaced and changes nothing.
// Readers take the largest generation (one listing of SharedPurgesPrefix
// and one read). A writer keeps the latest keepGenerations and deletes the
// older ones; since a deleted generation's successor could then be created
// again by a writer that read an old one, every writer lists the
// generations after creating its own and reports ErrRaced when a larger one
// exists (the largest is never deleted, so it is always seen).
type storeMarks struct{ store MarksStore }

// keepGenerations is how many of the latest purge-mark generations a
// writer keeps.
const keepGenerations = 8

func (s storeMarks) key(gen int64) string { return fmt.Sprintf("%s%012d", SharedPurgesPrefix, gen) }

func (s storeMarks) read(ctx context.Context) ([]byte, int64, error) {
	var gen int64
	var written time.Time
	err := s.walk(ctx, func(g int64, info storage.Info) {
		if g > gen {
			gen, written = g, info.ModTime
		}
	})
	if err != nil {
		return nil, 0, err
	}
	if gen == 0 {
		b, err := storage.ReadSmall(ctx, s.store, SharedPurgesKey, maxPurges)
		return b, 0, err
	}
	b, err := storage.ReadSmall(ctx, s.store, s.key(gen), maxPurges)
	if errors.Is(err, fs.ErrNotExist) {
		err = fmt.Errorf("generation %d listed but not found: %w", gen, err) // not "no marks"
	}
	if err != nil {
		return nil, 0, err
	}
	b, err = s.withLegacy(ctx, b, written)
	return b, gen, err
}

// legacySkew is how much earlier than the generation it joins a mark of the
// legacy document may be stamped (the replicas' clocks and the store's).
const legacySkew = time.Minute

// withLegacy adds to doc, the marks of a generation the store wrote at
// written, the marks that a replica of a version before generations (in a
// rolling upgrade) put into the legacy document since: when the store
// wrote that document after written (less legacySkew), its marks that doc
// lacks and that are stamped after written (less legacySkew). Every change
// reads before it writes, so a legacy document older than the generation
// is already in it, and a mark the generation removed (an allowed
// re-publish) stays removed unless both happened within legacySkew. A
// purge on a newer replica is not seen by an older one, which reads only
// the legacy document.
func (s storeMarks) withLegacy(ctx context.Context, doc []byte, written time.Time) ([]byte, error) {
	obj, err := s.store.Open(ctx, SharedPurgesKey)
	if errors.Is(err, fs.ErrNotExist) {
		return doc, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", SharedPurgesKey, err)
	}
	defer obj.Close()
	if obj.Info().ModTime.Before(written.Add(-legacySkew)) { // LastModified may be whole seconds, and a change's read comes before its write
		return doc, nil
	}
	lb, err := io.ReadAll(io.LimitReader(obj, maxPurges))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", SharedPurgesKey, err)
	}
	var legacy, m map[string]Mark
	if err := json.Unmarshal(lb, &legacy); err != nil {
		return nil, fmt.Errorf("%s: %w", SharedPurgesKey, err)
	}
	if err := json.Unmarshal(doc, &m); err != nil {
		return nil, err
	}
	added := false
	for k, mk := range legacy {
		if _, ok := m[k]; !ok && mk.Time.After(written.Add(-legacySkew)) {
			if m == nil {
				m = map[string]Mark{}
			}
			m[k], added = mk, true
		}
	}
	if !added {
		return doc, nil
	}
	return json.Marshal(m)
}

func (s storeMarks) write(ctx context.Context, gen int64, b []byte) (int64, error) {
	ss, ok := s.store.(SharedStore)
	if !ok {
		return 0, errors.New("the shared store cannot create objects conditionally")
	}
	created, err := ss.PutIfAbsent(ctx, s.key(gen+1), bytes.NewReader(b))
	if err != nil {
		return 0, err
	}
	if !created {
		return 0, fmt.Errorf("generation %d: %w", gen+1, ErrRaced)
	}
	var gens []int64
	if err := s.walk(ctx, func(g int64, _ storage.Info) { gens = append(gens, g) }); err != nil {
		// Not known to be the latest: not installed; a retry reads again.
		return 0, fmt.Errorf("generation %d written, but the generations could not be listed: %w", gen+1, err)
	}
	if latest := slices.Max(append(gens, gen+1)); latest > gen+1 {
		return 0, fmt.Errorf("generation %d written where generation %d exists: %w", gen+1, latest, ErrRaced)
	}
	if d, ok := s.store.(interface {
		Delete(ctx context.Context, key string) error
	}); ok {
		for _, g := range gens {
			if g <= gen+1-keepGenerations {
				_ = d.Delete(ctx, s.key(g)) // left for the next writer on an error
			}
		}
	}
	return gen + 1, nil
}

// walk calls fn for every generation in the store.
func (s storeMarks) walk(ctx context.Context, fn func(gen int64, info storage.Info)) error {
	return s.store.Walk(ctx, SharedPurgesPrefix, func(info storage.Info) error {
		if g, err := strconv.ParseInt(strings.TrimPrefix(info.Key, SharedPurgesPrefix), 10, 64); err == nil && g > 0 {
			fn(g, info)
		}
		return nil
	})
}

func openPurges(ctx context.Context, files marksFile) (*purges, error) {
	p := &purges{files: files, m: map[string]Mark{}}
	if err := p.reload(ctx); err != nil {
		return nil, err
	}
	return p, nil
}

// reload reads the marks again (a shared store's, which other replicas
// change). A generation older than the one held (read before a change of
// this process was written) is not installed.
func (p *purges) reload(ctx context.Context) error {
	b, gen, err := p.files.read(ctx)
	m := map[string]Mark{}
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return fmt.Errorf("hosted: purge marks: %w", err)
	default:
		if err := json.Unmarshal(b, &m); err != nil {
			return fmt.Errorf("hosted: purge marks: %w", err)
		}
	}
	p.mu.Lock()
	if gen >= p.gen {
		p.m, p.gen = m, gen
	}
	p.mu.Unlock()
	return nil
}

// ReadPurges reads the purge marks kept in the state directory dir, or,
// with store set, in that shared store (for an offline scrub; none when
// there is no document).
func ReadPurges(ctx context.Context, dir string, store MarksStore) (map[string]Mark, error) {
	var files marksFile = dirMarks{filepath.Join(dir, purgesFile)}
	if store != nil {
		files = storeMarks{store}
	}
	p, err := openPurges(ctx, files)
	if err != nil {
		return nil, err
	}
	return p.m, nil
}

// Checker returns the scrub's view of the service's log and purge marks.
func (s *Service) Checker() Checker {
	s.purges.mu.Lock()
	defer s.purges.mu.Unlock()
	return Checker{Patterns: s.opts.Patterns, Log: s.log, Purged: s.purges.m}
}

func (p *purges) get(key string) (Mark, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	m, ok := p.m[key]
	return m, ok
}

// change applies fn to a copy of the marks and persists it; the marks in
// memory change only when the file was written. On a shared store the
// change is refused (ErrRaced) when another writer changed the marks since
// they were read: reload, then decide again.
func (p *purges) change(ctx context.Context, fn func(m map[string]Mark)) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	next := make(map[string]Mark, len(p.m)+1)
	for k, v := range p.m {
		next[k] = v
	}
	fn(next)
	b, err := json.MarshalIndent(next, "", "  ")
	if err != nil {
		return err
	}
	gen, err := p.files.write(ctx, p.gen, b)
	if err != nil {
		return fmt.Errorf("hosted: purge marks: %w", err)
	}
	p.m, p.gen = next, gen
	return nil
}

func (p *purges) remove(ctx context.Context, key string) error {
	return p.change(ctx, func(m map[string]Mark) { delete(m, key) })
}

// Purged records that the published versions of a hosted module that
// match reports were purged (the cache administration evicted them, with
// a mandatory reason): they are no longer listed, and Publish refuses them
// (ErrPurged) unless allowRepublish is set; purging again with it set
// allows a version purged before. The log keeps their records: it is
// append-only. A path that is not hosted, or no matching version, is
// ignored.
func (s *Service) Purged(ctx context.Context, actor, path string, match func(version string) bool, reason string, allowRepublish bool) error {
	if !s.IsHosted(path) {
		return nil
	}
	release, err := s.decide(ctx)
	if err != nil {
		return err
	}
	changed := false
	defer func() { release(changed) }()
	var versions []string
	for _, v := range s.log.Versions(path) {
		if match(v) {
			versions = append(versions, v)
		}
	}
	if len(versions) == 0 {
		return nil
	}
	now := s.opts.Now()
	changed = true
	err = s.purges.change(ctx, func(m map[string]Mark) {
		for _, v := range versions {
			m[path+"@"+v] = Mark{Time: now.UTC(), Actor: actor, Reason: reason, AllowRepublish: allowRepublish}
		}
	})
	if err != nil {
		return err
	}
	s.dropMutable(ctx, path)
	for _, v := range versions {
		r := reason
		if allowRepublish {
			r += " (re-publishing allowed)"
		}
		_ = s.opts.Audit.Record(audit.Event{Actor: actor, Action: "purge-hosted", Target: path + "@" + v, Reason: r})
		s.opts.Events.Emit(event.Event{Type: event.Purged, Time: now, Module: path, Version: v, Identity: actor, Reason: reason})
	}
	return nil
}

// IsPurged reports whether path@version is purged (and not re-published).
func (s *Service) IsPurged(path, version string) bool {
	_, ok := s.purges.get(path + "@" + version)
	return ok
}
