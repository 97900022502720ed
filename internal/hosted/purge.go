package hosted

import (
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
)

// purgesFile holds the purge marks, in the state directory.
const purgesFile = "purged.json"

// Mark is the record of a purged hosted version.
type Mark struct {
	Time           time.Time `json:"time"`
	Actor          string    `json:"actor,omitempty"`
	Reason         string    `json:"reason"`
	AllowRepublish bool      `json:"allow_republish,omitempty"`
}

// purges are the purge marks, keyed by path@version, persisted with
// atomicfile.
type purges struct {
	path string
	mu   sync.Mutex
	m    map[string]Mark
}

func openPurges(dir string) (*purges, error) {
	p := &purges{path: filepath.Join(dir, purgesFile), m: map[string]Mark{}}
	b, err := atomicfile.Read(p.path, 64<<20)
	if errors.Is(err, fs.ErrNotExist) {
		return p, nil
	}
	if err != nil {
		return nil, fmt.Errorf("hosted: purge marks: %w", err)
	}
	if err := json.Unmarshal(b, &p.m); err != nil {
		return nil, fmt.Errorf("hosted: purge marks %s: %w", p.path, err)
	}
	return p, nil
}

// ReadPurges reads the purge marks kept in the state directory dir (for
// an offline scrub; none when there is no file).
func ReadPurges(dir string) (map[string]Mark, error) {
	p, err := openPurges(dir)
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
func (p *purges) change(fn func(m map[string]Mark)) error {
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
	if err := atomicfile.Write(p.path, b, 0o644); err != nil {
		return fmt.Errorf("hosted: purge marks: %w", err)
	}
	p.m = next
	return nil
}

func (p *purges) remove(key string) error {
	return p.change(func(m map[string]Mark) { delete(m, key) })
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
	s.mu.Lock()
	defer s.mu.Unlock()
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
	err := s.purges.change(func(m map[string]Mark) {
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
