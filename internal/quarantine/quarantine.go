// Package quarantine keeps bytes that failed verification for inspection,
// in a directory that is never reachable through the proxy protocol, and
// bounded in total size (oldest files go first).
package quarantine

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// Dir is a size-bounded quarantine directory. Safe for concurrent use.
type Dir struct {
	mu   sync.Mutex
	dir  string
	max  int64
	now  func() time.Time
	nseq int
}

// New returns a quarantine in dir holding at most maxBytes (0: unbounded).
func New(dir string, maxBytes int64) (*Dir, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("quarantine: %w", err)
	}
	return &Dir{dir: dir, max: maxBytes, now: time.Now}, nil
}

// Path returns the quarantine directory.
func (d *Dir) Path() string { return d.dir }

// Keep copies r into a new file named after name (a key such as
// "example.com/a/@v/v1.0.0.zip", flattened) and returns its path. Then it
// removes the oldest files while the directory exceeds its bound.
func (d *Dir) Keep(name string, r io.Reader) (string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.nseq++
	flat := strings.NewReplacer("/", "_", "\\", "_", "\x00", "_").Replace(name)
	if len(flat) > 180 {
		flat = flat[len(flat)-180:]
	}
	p := filepath.Join(d.dir, fmt.Sprintf("%s-%03d-%s", d.now().UTC().Format("20060102T150405.000000000"), d.nseq%1000, flat))
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o640)
	if err != nil {
		return "", fmt.Errorf("quarantine: %w", err)
	}
	_, err = io.Copy(f, r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(p)
		return "", fmt.Errorf("quarantine: %w", err)
	}
	d.enforce(p)
	return p, nil
}

// enforce removes the oldest files (never keep) while over the bound.
func (d *Dir) enforce(keep string) {
	if d.max <= 0 {
		return
	}
	ents, err := os.ReadDir(d.dir)
	if err != nil {
		return
	}
	type file struct {
		path string
		size int64
		mod  time.Time
	}
	var files []file
	var total int64
	for _, e := range ents {
		info, err := e.Info()
		if err != nil || !info.Mode().IsRegular() {
			continue
		}
		files = append(files, file{filepath.Join(d.dir, e.Name()), info.Size(), info.ModTime()})
		total += info.Size()
	}
	slices.SortFunc(files, func(a, b file) int { return strings.Compare(filepath.Base(a.path), filepath.Base(b.path)) })
	for _, f := range files {
		if total <= d.max {
			break
		}
		if f.path == keep {
			continue
		}
		if os.Remove(f.path) == nil {
			total -= f.size
		}
	}
}
