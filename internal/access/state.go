package access

import (
	"context"
	"errors"
	"fmt"
	"io/fs"

	"github.com/modproxy/modproxy/internal/atomicfile"
)

// StateName is the document's name: the file under CACHE_DIR/state, or the
// object's name under the shared store's state prefix.
const StateName = "tokens.json"

// maxDocument bounds the token document (about 40 000 tokens).
const maxDocument = 16 << 20

// State holds the token document.
type State interface {
	// Read returns the document, or an error satisfying
	// errors.Is(err, fs.ErrNotExist) when there is none yet (no tokens).
	Read(ctx context.Context) ([]byte, error)
	// Write replaces the document atomically: a concurrent Read sees the
	// old document or the new one, never a mix.
	Write(ctx context.Context, data []byte) error
}

// File is a State in a local file, written with mode 0600 by temporary
// file, fsync and rename.
type File struct{ path string }

// NewFile returns the State kept at path (conventionally
// CACHE_DIR/state/tokens.json); missing directories are created on the
// first Write.
func NewFile(path string) *File { return &File{path: path} }

// Read implements State.
func (f *File) Read(ctx context.Context) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	data, err := atomicfile.Read(f.path, maxDocument)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("access: reading tokens: %w", err)
	}
	return data, err
}

// Write implements State.
func (f *File) Write(ctx context.Context, data []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := atomicfile.Write(f.path, data, 0o600); err != nil {
		return fmt.Errorf("access: writing tokens: %w", err)
	}
	return nil
}
