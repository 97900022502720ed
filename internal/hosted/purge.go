package hosted

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"sync"
	"time"

	"github.com/modproxy/modproxy/internal/atomicfile"
	"github.com/modproxy/modproxy/internal/audit"
	"github.com/modproxy/modproxy/internal/event"
	"github.com/modproxy/modproxy/internal/storage"
)

// purgesFile holds the purge marks, in the state directory (or, on a
// shared store, under SharedPurgesKey).
const purgesFile = "purged.json"

// SharedPurgesKey is where the purge marks are on a store shared by
// replicas.
const SharedPurgesKey = "_state/hosted/" + purgesFile

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
}

// marksFile reads and replaces the marks' document; read returns
// fs.ErrNotExist when there is none.
type marksFile interface {
	read(ctx context.Context) ([]byte, error)
	write(ctx context.Context, b []byte) error
}

// dirMarks is the document in a state directory, replaced with atomicfile.
type dirMarks struct{ path string }

func (d dirMarks) read(context.Context) ([]byte, error) { return atomicfile.Read(d.path, maxPurges) }
func (d dirMarks) write(_ context.Context, b []byte) error {
	return atomicfile.Write(d.path, b, 0o644)
}

// storeMarks is the document in a shared store (a Put replaces it whole).
type storeMarks struct{ store Store }

func (s storeMarks) read(ctx context.Context) ([]byte, error) {
	return storage.ReadSmall(ctx, s.store, SharedPurgesKey, maxPurges)
}
func (s storeMarks) write(ctx context.Context, b []byte) error {
	_, err := s.store.Put(ctx, SharedPurgesKey, bytes.NewReader(b))
	return err
}

func openPurges(ctx context.Context, files marksFile) (*purges, error) {
	p := &purges{files: files, m: map[string]Mark{}}
	if err := p.reload(ctx); err != nil {
		return nil, err
	}
	return p, nil
}

// reload reads the marks again (a shared store's, which other replicas
// change).
func (p *purges) reload(ctx context.Context) error {
	b, err := p.files.read(ctx)
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
	p.m = m
	p.mu.Unlock()
	return nil
}

// ReadPurges reads the purge marks kept in the state directory dir, or,
// with store set, in that shared store (for an offline scrub; none when
// there is no document).
func ReadPurges(ctx context.Context, dir string, store Store) (map[string]Mark, error) {
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
// memory change only when the file was written.
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
	if err := p.files.write(ctx, b); err != nil {
		return fmt.Errorf("hosted: purge marks: %w", err)
	}
	p.m = next
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
