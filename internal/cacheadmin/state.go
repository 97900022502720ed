package cacheadmin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/modproxy/modproxy/internal/atomicfile"
)

// Pins are the pins added through the service (the configured ones are
// in Options.Policy). The JSON form is that of pins.json.
type Pins struct {
	Patterns []string `json:"patterns"` // "module-pattern[@version]"
	Sets     []string `json:"sets"`     // go.sum / go.mod files or directories
}

// Pin names one pin: exactly one of Pattern and Set.
type Pin struct {
	Pattern string
	Set     string
}

// Block refuses a module or a range of its versions, added by a purge.
// The JSON form is that of blocked.json (field names as they are).
type Block struct {
	Match    string // module path pattern
	Versions string // "" all, "v1.2.3", or a range ">=v1.0.0 <v1.2.0"
	Reason   string // shown to clients
}

// A block always refuses (clients see 403 and their "," lists stop); files
// written before this note carry a "Status": 403 field, ignored on reading.

const (
	pinsFile    = "pins.json"
	blockedFile = "blocked.json"
	// sharedPrefix is where state lives in a shared store.
	sharedPrefix = "_state/"
	// stateMessage is broadcast when state changed.
	stateMessage = "state"
)

// Blocks returns the blocks added by purges.
func (s *Service) Blocks() []Block {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Block(nil), s.blocks...)
}

func (s *Service) readState(ctx context.Context, name string) ([]byte, error) {
	if s.opts.Shared {
		o, err := s.opts.Store.Open(ctx, sharedPrefix+name)
		if err != nil {
			return nil, err
		}
		defer o.Close()
		return io.ReadAll(o)
	}
	return os.ReadFile(filepath.Join(s.opts.StateDir, name))
}

// loadState reads pins and blocks. Called with mu held (or before the
// service is shared).
func (s *Service) loadState(ctx context.Context) error {
	var pins Pins
	var blocks []Block
	for name, v := range map[string]any{pinsFile: &pins, blockedFile: &blocks} {
		data, err := s.readState(ctx, name)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("state %s: %w", name, err)
		}
		if err := json.Unmarshal(data, v); err != nil {
			return fmt.Errorf("state %s: %w", name, err)
		}
	}
	s.pins, s.blocks = pins, blocks
	return nil
}

// saveState writes v as the state file name (atomically on disk) and
// tells the other replicas. Called with mu held.
func (s *Service) saveState(ctx context.Context, name string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	if s.opts.Shared {
		if _, err := s.opts.Store.Put(ctx, sharedPrefix+name, bytes.NewReader(data)); err != nil {
			return fmt.Errorf("state %s: %w", name, err)
		}
	} else if err := writeFile(filepath.Join(s.opts.StateDir, name), data); err != nil {
		return fmt.Errorf("state %s: %w", name, err)
	}
	if c := s.opts.Coordinator; c != nil {
		if err := c.Publish(ctx, stateMessage); err != nil {
			s.log.Warn("could not tell other replicas of a state change", "err", err)
		}
	}
	return nil
}

// writeFile replaces p with data durably (temporary file, fsync, rename,
// directory fsync): a crash leaves the old state or the new, never a torn
// or unsynced one.
func writeFile(p string, data []byte) error {
	return atomicfile.Write(p, data, 0o644)
}

// onMessage reloads state when another replica (or this one) changed it.
func (s *Service) onMessage(ctx context.Context, msg string) {
	if s.onRefreshMessage(msg) || msg != stateMessage {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.loadState(ctx); err != nil {
		s.log.Error("reloading shared state", "err", err)
		return
	}
	s.notifyBlocks()
}

// notifyBlocks passes the blocks to Options.OnBlocks. Called with mu held.
func (s *Service) notifyBlocks() {
	if s.opts.OnBlocks != nil {
		s.opts.OnBlocks(append([]Block(nil), s.blocks...))
	}
}
