// Package audit is modproxy's append-only audit log: one JSON object per
// line, for every action an operator may need to account for (a rejected
// download, a quarantine, a security error; later evictions, purges and
// admin actions).
//
// An event names the acting identity (Event.Identity: a token's or a
// certificate mapping's name) when one is known: RecordContext asks
// Options.Identity for the identity a request's context carries, so that
// packages below the HTTP layer need not know how identities are
// represented. Identity names are never secrets.
//
// Each Record is written with a single write(2) on a file opened with
// O_APPEND, so records from concurrent goroutines never interleave. A Log is
// safe for concurrent use.
package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Event is one audit record.
type Event struct {
	Time  time.Time `json:"time"`
	Actor string    `json:"actor"` // "verifier", "scrub", a policy name, an admin
	// Identity is the authenticated identity that acted or whose request
	// caused the event (a token or certificate mapping name), when known.
	Identity string            `json:"identity,omitempty"`
	Action   string            `json:"action"`           // "reject", "quarantine", "security-error", ...
	Target   string            `json:"target"`           // module@version, a key, a database name
	Reason   string            `json:"reason,omitempty"` // why
	Bytes    int64             `json:"bytes,omitempty"`
	Hashes   map[string]string `json:"hashes,omitempty"` // e.g. {"got": "h1:...", "want": "h1:..."}
}

// Log appends events to a file, rotating it by size: PATH.1 is the
// previous file, PATH.2 the one before, up to MaxFiles old files.
type Log struct {
	mu    sync.Mutex
	f     *os.File
	size  int64
	since time.Time // time of the current file's first record (approximated by its mtime on open)
	now   func() time.Time
	path  string
	opts  Options
}

// Options bounds the log. Zero values: 100 MiB per file, 10 old files,
// no age limit.
type Options struct {
	MaxBytes int64
	MaxFiles int
	// MaxAge rotates the current file once its first record is older.
	MaxAge time.Duration
	// Identity returns the name of the identity ctx carries, or "" when
	// it carries none; RecordContext uses it. nil: no identities.
	Identity func(ctx context.Context) string
}

// Open opens (creating if needed) the audit log at path.
func Open(path string, opts ...Options) (*Log, error) {
	o := Options{}
	if len(opts) > 0 {
		o = opts[0]
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = 100 << 20
	}
	if o.MaxFiles <= 0 {
		o.MaxFiles = 10
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("audit log: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("audit log: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("audit log: %w", err)
	}
	l := &Log{f: f, size: st.Size(), now: time.Now, path: path, opts: o}
	if st.Size() > 0 {
		l.since = st.ModTime()
	}
	return l, nil
}

// rotate shifts PATH -> PATH.1 -> ... and opens a new PATH. Called with mu held.
func (l *Log) rotate() error {
	if err := l.f.Close(); err != nil {
		return err
	}
	os.Remove(fmt.Sprintf("%s.%d", l.path, l.opts.MaxFiles))
	for i := l.opts.MaxFiles - 1; i >= 1; i-- {
		os.Rename(fmt.Sprintf("%s.%d", l.path, i), fmt.Sprintf("%s.%d", l.path, i+1))
	}
	if err := os.Rename(l.path, l.path+".1"); err != nil {
		return err
	}
	f, err := os.OpenFile(l.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return err
	}
	l.f, l.size, l.since = f, 0, time.Time{}
	return nil
}

// Path returns the file the log writes to.
func (l *Log) Path() string { return l.path }

// Record appends e, setting Time when it is zero. A nil Log discards.
func (l *Log) Record(e Event) error {
	if l == nil {
		return nil
	}
	if e.Time.IsZero() {
		e.Time = l.now().UTC()
	}
	b, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	b = append(b, '\n')
	l.mu.Lock()
	defer l.mu.Unlock()
	tooOld := l.opts.MaxAge > 0 && !l.since.IsZero() && e.Time.Sub(l.since) > l.opts.MaxAge
	if l.size > 0 && (l.size+int64(len(b)) > l.opts.MaxBytes || tooOld) {
		if err := l.rotate(); err != nil {
			return fmt.Errorf("audit: rotating: %w", err)
		}
	}
	n, err := l.f.Write(b)
	if l.size == 0 {
		l.since = e.Time
	}
	l.size += int64(n)
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	return nil
}

// RecordContext is Record with e.Identity, when empty, set to the
// identity ctx carries (Options.Identity). A nil Log discards.
func (l *Log) RecordContext(ctx context.Context, e Event) error {
	if l == nil {
		return nil
	}
	if e.Identity == "" && l.opts.Identity != nil {
		e.Identity = l.opts.Identity(ctx)
	}
	return l.Record(e)
}

// Filter selects events in Query. Zero fields match everything.
type Filter struct {
	Action, Actor string
	Identity      string // exact
	Target        string // substring
	Since, Until  time.Time
	Limit         int // default 100
}

func (f Filter) match(e Event) bool {
	return (f.Action == "" || e.Action == f.Action) && (f.Actor == "" || strings.HasPrefix(e.Actor, f.Actor)) &&
		(f.Identity == "" || e.Identity == f.Identity) &&
		(f.Target == "" || strings.Contains(e.Target, f.Target)) &&
		(f.Since.IsZero() || !e.Time.Before(f.Since)) && (f.Until.IsZero() || e.Time.Before(f.Until))
}

// Query returns the newest events matching f, newest first, from the log
// and its rotated files.
func (l *Log) Query(f Filter) ([]Event, error) {
	if f.Limit <= 0 {
		f.Limit = 100
	}
	var out []Event
	files := []string{l.path}
	for i := 1; i <= l.opts.MaxFiles; i++ {
		files = append(files, fmt.Sprintf("%s.%d", l.path, i))
	}
	for _, p := range files {
		evs, err := Read(p)
		if err != nil && !errors.Is(err, os.ErrNotExist) && len(evs) == 0 {
			return out, err
		}
		for i := len(evs) - 1; i >= 0; i-- {
			if f.match(evs[i]) {
				out = append(out, evs[i])
				if len(out) >= f.Limit {
					return out, nil
				}
			}
		}
	}
	return out, nil
}

// Close closes the file.
func (l *Log) Close() error {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.f.Close()
}

// Read returns every event in the log file at path, oldest first.
func Read(path string) ([]Event, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []Event
	dec := json.NewDecoder(bytes.NewReader(data))
	for dec.More() {
		var e Event
		if err := dec.Decode(&e); err != nil {
			return out, fmt.Errorf("audit log %s: %w", path, err)
		}
		out = append(out, e)
	}
	return out, nil
}
