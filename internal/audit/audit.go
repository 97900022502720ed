// Package audit is modproxy's append-only audit log: one JSON object per
// line, for every action an operator may need to account for (a rejected
// download, a quarantine, a security error; later evictions, purges and
// admin actions).
//
// Each Record is written with a single write(2) on a file opened with
// O_APPEND, so records from concurrent goroutines never interleave. A Log is
// safe for concurrent use.
package audit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Event is one audit record.
type Event struct {
	Time   time.Time         `json:"time"`
	Actor  string            `json:"actor"`            // "verifier", "scrub", a policy name, an admin
	Action string            `json:"action"`           // "reject", "quarantine", "security-error", ...
	Target string            `json:"target"`           // module@version, a key, a database name
	Reason string            `json:"reason,omitempty"` // why
	Bytes  int64             `json:"bytes,omitempty"`
	Hashes map[string]string `json:"hashes,omitempty"` // e.g. {"got": "h1:...", "want": "h1:..."}
}

// Log appends events to a file.
type Log struct {
	mu   sync.Mutex
	f    *os.File
	now  func() time.Time
	path string
}

// Open opens (creating if needed) the audit log at path.
func Open(path string) (*Log, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("audit log: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("audit log: %w", err)
	}
	return &Log{f: f, now: time.Now, path: path}, nil
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
	if _, err := l.f.Write(b); err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	return nil
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
