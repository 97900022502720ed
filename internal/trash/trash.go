// Package trash keeps objects deleted from the store (by GC or a purge)
// for a retention period, so that they can be restored byte for byte.
//
// Each deletion is a batch: DIR/ID/objects/KEY plus DIR/ID/manifest.json.
// The manifest is written last, so a batch without one is incomplete
// (a crash mid-move) and is restored or purged like any other. Batches are
// purged by age (Retention) and, oldest first, by total size (MaxBytes);
// PurgeWhile removes the oldest batches while a condition of the caller's
// holds (the cache's size cap, low free space).
// Safe for concurrent use.
package trash

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/modproxy/modproxy/internal/storage"
)

// Store is what the trash needs from the store.
type Store interface {
	Open(ctx context.Context, key string) (storage.Object, error)
	Put(ctx context.Context, key string, r io.Reader) (storage.Info, error)
	Delete(ctx context.Context, key string) error
}

// Mover is implemented by stores on the local file system, so objects are
// renamed rather than copied.
type Mover interface {
	MoveOut(ctx context.Context, key, dst string) error
	MoveIn(ctx context.Context, src, key string) (storage.Info, error)
}

// Trash is a trash directory.
type Trash struct {
	dir       string
	retention time.Duration
	maxBytes  int64
	now       func() time.Time
	mu        sync.Mutex
	seq       int
}

// Options configures a Trash.
type Options struct {
	Retention time.Duration // default 7 days
	MaxBytes  int64         // 0: unbounded
	Now       func() time.Time
}

// New opens the trash in dir.
func New(dir string, opts Options) (*Trash, error) {
	if opts.Retention <= 0 {
		opts.Retention = 7 * 24 * time.Hour
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("trash: %w", err)
	}
	return &Trash{dir: dir, retention: opts.Retention, maxBytes: opts.MaxBytes, now: opts.Now}, nil
}

// Manifest describes a batch.
type Manifest struct {
	ID       string    `json:"id"`
	Created  time.Time `json:"created"`
	Reason   string    `json:"reason"`
	Versions []string  `json:"versions"`
	Keys     []string  `json:"keys"`
	Bytes    int64     `json:"bytes"`
	Expires  time.Time `json:"expires"`
}

// Batch collects the objects of one deletion.
type Batch struct {
	t *Trash
	m Manifest
}

// Begin starts a batch.
func (t *Trash) Begin(reason string) *Batch {
	t.mu.Lock()
	t.seq++
	now := t.now().UTC()
	id := fmt.Sprintf("%s-%04d", now.Format("20060102T150405"), t.seq%10000)
	t.mu.Unlock()
	return &Batch{t: t, m: Manifest{ID: id, Created: now, Reason: reason, Expires: now.Add(t.retention)}}
}

// ID returns the batch ID.
func (b *Batch) ID() string { return b.m.ID }

// Move takes key out of the store into the batch. A missing key is
// fs.ErrNotExist.
func (b *Batch) Move(ctx context.Context, s Store, key string) (int64, error) {
	if err := storage.CheckKey(key); err != nil {
		return 0, err
	}
	dst := filepath.Join(b.t.dir, b.m.ID, "objects", filepath.FromSlash(key))
	if mv, ok := s.(Mover); ok {
		if err := mv.MoveOut(ctx, key, dst); err != nil {
			return 0, err
		}
	} else {
		obj, err := s.Open(ctx, key)
		if err != nil {
			return 0, err
		}
		err = copyTo(dst, obj)
		obj.Close()
		if err != nil {
			return 0, err
		}
		if err := s.Delete(ctx, key); err != nil {
			return 0, err
		}
	}
	st, err := os.Stat(dst)
	if err != nil {
		return 0, err
	}
	b.m.Keys = append(b.m.Keys, key)
	b.m.Bytes += st.Size()
	return st.Size(), nil
}

// AddVersion records module@version in the manifest.
func (b *Batch) AddVersion(mv string) { b.m.Versions = append(b.m.Versions, mv) }

// Commit writes the manifest. An empty batch leaves nothing behind.
func (b *Batch) Commit() (Manifest, error) {
	if len(b.m.Keys) == 0 {
		os.RemoveAll(filepath.Join(b.t.dir, b.m.ID))
		return b.m, nil
	}
	data, err := json.MarshalIndent(b.m, "", "  ")
	if err != nil {
		return b.m, err
	}
	if err := os.WriteFile(filepath.Join(b.t.dir, b.m.ID, "manifest.json"), data, 0o640); err != nil {
		return b.m, fmt.Errorf("trash: %w", err)
	}
	return b.m, nil
}

func copyTo(dst string, r io.Reader) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o750); err != nil {
		return err
	}
	f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o640)
	if err != nil {
		return err
	}
	_, err = io.Copy(f, r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// List returns every batch, newest first.
func (t *Trash) List() ([]Manifest, error) {
	ents, err := os.ReadDir(t.dir)
	if err != nil {
		return nil, err
	}
	var out []Manifest
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		m, err := t.manifest(e.Name())
		if err != nil {
			continue
		}
		out = append(out, m)
	}
	slices.SortFunc(out, func(a, b Manifest) int { return b.Created.Compare(a.Created) })
	return out, nil
}

// manifest reads a batch's manifest, or reconstructs one for an
// incomplete batch from its files.
func (t *Trash) manifest(id string) (Manifest, error) {
	if strings.ContainsAny(id, `/\`) || id == "." || id == ".." || id == "" {
		return Manifest{}, fmt.Errorf("bad trash id %q", id)
	}
	data, err := os.ReadFile(filepath.Join(t.dir, id, "manifest.json"))
	if err == nil {
		var m Manifest
		if err := json.Unmarshal(data, &m); err != nil {
			return Manifest{}, err
		}
		return m, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return Manifest{}, err
	}
	root := filepath.Join(t.dir, id, "objects")
	st, err := os.Stat(filepath.Join(t.dir, id))
	if err != nil {
		return Manifest{}, err
	}
	m := Manifest{ID: id, Created: st.ModTime(), Reason: "incomplete batch", Expires: st.ModTime().Add(t.retention)}
	_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			rel, _ := filepath.Rel(root, p)
			m.Keys = append(m.Keys, filepath.ToSlash(rel))
			if i, err := d.Info(); err == nil {
				m.Bytes += i.Size()
			}
		}
		return nil
	})
	return m, nil
}

// Restore puts every object of batch id back into the store (replacing
// what is there) and removes the batch. It returns the restored keys.
func (t *Trash) Restore(ctx context.Context, id string, s Store) (Manifest, error) {
	m, err := t.manifest(id)
	if err != nil {
		return Manifest{}, fmt.Errorf("trash batch %q: %w", id, fs.ErrNotExist)
	}
	root := filepath.Join(t.dir, id, "objects")
	// Sidecars (.h1) first, so an object never reappears without its hash.
	keys := slices.Clone(m.Keys)
	slices.SortStableFunc(keys, func(a, b string) int {
		return boolInt(!strings.HasSuffix(a, ".h1")) - boolInt(!strings.HasSuffix(b, ".h1"))
	})
	for _, k := range keys {
		src := filepath.Join(root, filepath.FromSlash(k))
		if mv, ok := s.(Mover); ok {
			if _, err := mv.MoveIn(ctx, src, k); err != nil {
				return m, fmt.Errorf("restoring %s: %w", k, err)
			}
			continue
		}
		f, err := os.Open(src)
		if err != nil {
			return m, fmt.Errorf("restoring %s: %w", k, err)
		}
		_, err = s.Put(ctx, k, f)
		f.Close()
		if err != nil {
			return m, fmt.Errorf("restoring %s: %w", k, err)
		}
	}
	return m, os.RemoveAll(filepath.Join(t.dir, id))
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// Purge removes batches past their retention and, oldest first, batches
// beyond the size bound. It returns the removed manifests and the bytes
// left.
func (t *Trash) Purge() ([]Manifest, int64, error) {
	all, err := t.List()
	if err != nil {
		return nil, 0, err
	}
	var total int64
	for _, m := range all {
		total += m.Bytes
	}
	now := t.now()
	var removed []Manifest
	for i := len(all) - 1; i >= 0; i-- { // oldest first
		m := all[i]
		if now.After(m.Expires) || (t.maxBytes > 0 && total > t.maxBytes) {
			if err := removeAll(filepath.Join(t.dir, m.ID)); err != nil {
				return removed, total, err
			}
			total -= m.Bytes
			removed = append(removed, m)
		}
	}
	return removed, total, nil
}

// PurgeWhile removes batches, oldest first, for as long as more(held)
// reports true, held being the bytes the trash holds before each removal;
// it stops when more reports false or the trash is empty. It returns the
// removed manifests and the bytes left. Callers use it to bound the trash
// by something it cannot know: a share of the cache's size cap, or the
// free space of the file system (more then asks the file system and
// ignores held).
func (t *Trash) PurgeWhile(more func(held int64) bool) ([]Manifest, int64, error) {
	all, err := t.List()
	if err != nil {
		return nil, 0, err
	}
	var held int64
	for _, m := range all {
		held += m.Bytes
	}
	var removed []Manifest
	for i := len(all) - 1; i >= 0 && more(held); i-- { // oldest first
		if err := removeAll(filepath.Join(t.dir, all[i].ID)); err != nil {
			return removed, held, err
		}
		held -= all[i].Bytes
		removed = append(removed, all[i])
	}
	return removed, held, nil
}

// Size returns the bytes held.
func (t *Trash) Size() int64 {
	all, _ := t.List()
	var n int64
	for _, m := range all {
		n += m.Bytes
	}
	return n
}

func removeAll(dir string) error {
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			_ = os.Chmod(p, 0o750)
		}
		return nil
	})
	return os.RemoveAll(dir)
}

// Remove deletes batch id for good.
func (t *Trash) Remove(id string) error {
	if _, err := t.manifest(id); err != nil {
		return fmt.Errorf("trash batch %q: %w", id, fs.ErrNotExist)
	}
	return removeAll(filepath.Join(t.dir, id))
}
