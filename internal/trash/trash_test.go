package trash_test

import (
	"context"
	"errors"
	"io"
	iofs "io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modproxy/modproxy/internal/storage"
	storagefs "github.com/modproxy/modproxy/internal/storage/fs"
	"github.com/modproxy/modproxy/internal/trash"
)

var t0 = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

// recorder records keys in order.
type recorder struct {
	mu   sync.Mutex
	keys []string
}

func (r *recorder) add(key string) { r.mu.Lock(); r.keys = append(r.keys, key); r.mu.Unlock() }

// take returns the keys recorded and forgets them.
func (r *recorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	k := r.keys
	r.keys = nil
	return k
}

// copyStore hides the disk store's MoveIn/MoveOut, so that the trash
// copies, as it does for a bucket; it records the order of Puts.
type copyStore struct {
	s    *storagefs.Store
	puts recorder
}

func (c *copyStore) Open(ctx context.Context, key string) (storage.Object, error) {
	return c.s.Open(ctx, key)
}

func (c *copyStore) Put(ctx context.Context, key string, r io.Reader) (storage.Info, error) {
	c.puts.add(key)
	return c.s.Put(ctx, key, r)
}

func (c *copyStore) Delete(ctx context.Context, key string) error { return c.s.Delete(ctx, key) }

// moveStore is the disk store, recording the order of MoveIns.
type moveStore struct {
	*storagefs.Store
	moves recorder
}

func (m *moveStore) MoveIn(ctx context.Context, src, key string) (storage.Info, error) {
	m.moves.add(key)
	return m.Store.MoveIn(ctx, src, key)
}

var version = map[string]string{
	"example.com/a/@v/v1.0.0.zip":    "zip bytes",
	"example.com/a/@v/v1.0.0.zip.h1": "h1:zip=",
	"example.com/a/@v/v1.0.0.mod":    "module example.com/a\n",
	"example.com/a/@v/v1.0.0.mod.h1": "h1:mod=",
	"example.com/a/@v/v1.0.0.info":   `{"Version":"v1.0.0"}`,
}

func fill(t *testing.T, s trash.Store, files map[string]string) {
	t.Helper()
	for k, v := range files {
		if _, err := s.Put(context.Background(), k, strings.NewReader(v)); err != nil {
			t.Fatal(err)
		}
	}
}

func read(t *testing.T, s trash.Store, key string) (string, error) {
	t.Helper()
	o, err := s.Open(context.Background(), key)
	if err != nil {
		return "", err
	}
	defer o.Close()
	b, err := io.ReadAll(o)
	return string(b), err
}

func newTrash(t *testing.T, opts trash.Options) (*trash.Trash, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "trash")
	tr, err := trash.New(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	return tr, dir
}

// TestMoveCommitRestore: a batch takes objects out of the store and puts
// them back byte for byte, recorded hashes first, whether the store
// renames (disk) or copies (bucket).
func TestMoveCommitRestore(t *testing.T) {
	for _, kind := range []string{"mover", "copier"} {
		t.Run(kind, func(t *testing.T) {
			fs, err := storagefs.New(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			var s trash.Store
			var arrived *recorder // how restored objects arrive
			if kind == "mover" {
				ms := &moveStore{Store: fs}
				s, arrived = ms, &ms.moves
			} else {
				cs := &copyStore{s: fs}
				s, arrived = cs, &cs.puts
			}
			fill(t, s, version)
			ctx := context.Background()
			tr, _ := newTrash(t, trash.Options{Retention: time.Hour, Now: func() time.Time { return t0 }})
			b := tr.Begin("gc: keep-newest")
			var total int64
			keys := slices.Sorted(maps.Keys(version))
			for _, k := range keys {
				n, err := b.Move(ctx, s, k)
				if err != nil {
					t.Fatalf("Move(%s): %v", k, err)
				}
				if n != int64(len(version[k])) {
					t.Errorf("Move(%s) = %d bytes, want %d", k, n, len(version[k]))
				}
				total += n
				if _, err := read(t, s, k); !errors.Is(err, iofs.ErrNotExist) {
					t.Errorf("%s still in the store after Move: %v", k, err)
				}
			}
			b.AddVersion("example.com/a@v1.0.0")
			m, err := b.Commit()
			if err != nil {
				t.Fatal(err)
			}
			if m.ID != b.ID() || m.Reason != "gc: keep-newest" || !slices.Equal(m.Versions, []string{"example.com/a@v1.0.0"}) ||
				!slices.Equal(m.Keys, keys) || m.Bytes != total || !m.Created.Equal(t0) || !m.Expires.Equal(t0.Add(time.Hour)) {
				t.Errorf("manifest %+v", m)
			}
			list, err := tr.List()
			if err != nil || len(list) != 1 || list[0].ID != m.ID || list[0].Bytes != total {
				t.Fatalf("List = %+v, %v", list, err)
			}
			if tr.Size() != total {
				t.Errorf("Size = %d, want %d", tr.Size(), total)
			}
			arrived.take() // forget fill's Puts
			if _, err := tr.Restore(ctx, m.ID, s); err != nil {
				t.Fatal(err)
			}
			for k, want := range version {
				if got, err := read(t, s, k); err != nil || got != want {
					t.Errorf("%s restored as %q, %v; want %q", k, got, err, want)
				}
			}
			order := arrived.take()
			if len(order) != len(keys) {
				t.Fatalf("restored %q, want %d keys", order, len(keys))
			}
			for i, k := range order {
				if sidecar := strings.HasSuffix(k, ".h1"); sidecar != (i < 2) {
					t.Errorf("restore order %q: recorded hashes must come first", order)
					break
				}
			}
			if list, err := tr.List(); err != nil || len(list) != 0 {
				t.Errorf("List after Restore = %+v, %v; want empty", list, err)
			}
		})
	}
}

func TestMoveErrors(t *testing.T) {
	s, err := storagefs.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	tr, _ := newTrash(t, trash.Options{})
	b := tr.Begin("test")
	if _, err := b.Move(context.Background(), s, "example.com/a/@v/v9.0.0.zip"); !errors.Is(err, iofs.ErrNotExist) {
		t.Errorf("Move(missing) = %v, want fs.ErrNotExist", err)
	}
	for _, key := range []string{"../escape", "/etc/passwd", "a/../../b", ""} {
		if _, err := b.Move(context.Background(), s, key); !errors.Is(err, storage.ErrInvalidKey) {
			t.Errorf("Move(%q) = %v, want ErrInvalidKey", key, err)
		}
	}
}

func TestEmptyBatchLeavesNothing(t *testing.T) {
	tr, dir := newTrash(t, trash.Options{})
	m, err := tr.Begin("nothing").Commit()
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Keys) != 0 {
		t.Errorf("manifest %+v", m)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 0 {
		t.Errorf("an empty batch left %v", ents)
	}
}

// TestIncompleteBatch: a batch without a manifest (a crash before Commit)
// is listed from its files and can be restored.
func TestIncompleteBatch(t *testing.T) {
	s, err := storagefs.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	fill(t, s, version)
	tr, _ := newTrash(t, trash.Options{})
	b := tr.Begin("interrupted")
	for _, k := range []string{"example.com/a/@v/v1.0.0.zip", "example.com/a/@v/v1.0.0.zip.h1"} {
		if _, err := b.Move(context.Background(), s, k); err != nil {
			t.Fatal(err)
		}
	}
	// No Commit.
	list, err := tr.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].ID != b.ID() || list[0].Reason != "incomplete batch" || len(list[0].Keys) != 2 ||
		list[0].Bytes != int64(len(version["example.com/a/@v/v1.0.0.zip"])+len(version["example.com/a/@v/v1.0.0.zip.h1"])) {
		t.Fatalf("List = %+v", list)
	}
	if _, err := tr.Restore(context.Background(), b.ID(), s); err != nil {
		t.Fatal(err)
	}
	if got, err := read(t, s, "example.com/a/@v/v1.0.0.zip"); err != nil || got != "zip bytes" {
		t.Errorf("restored zip %q, %v", got, err)
	}
}

func TestUnknownAndBadIDs(t *testing.T) {
	s, err := storagefs.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	tr, _ := newTrash(t, trash.Options{})
	for _, id := range []string{"20260101T000000-0001", "", ".", "..", "../x", "a/b", `a\b`} {
		if _, err := tr.Restore(context.Background(), id, s); !errors.Is(err, iofs.ErrNotExist) {
			t.Errorf("Restore(%q) = %v, want fs.ErrNotExist", id, err)
		}
		if err := tr.Remove(id); !errors.Is(err, iofs.ErrNotExist) {
			t.Errorf("Remove(%q) = %v, want fs.ErrNotExist", id, err)
		}
	}
}

// fourBatches moves four zips of 100 bytes into a batch each, a minute
// apart on the clock *now, and returns their IDs, oldest first.
func fourBatches(t *testing.T, s trash.Store, tr *trash.Trash, now *time.Time) []string {
	t.Helper()
	var ids []string
	for i := range 4 {
		key := "example.com/a/@v/v1." + string(rune('0'+i)) + ".0.zip"
		fill(t, s, map[string]string{key: strings.Repeat("x", 100)})
		b := tr.Begin("batch")
		if _, err := b.Move(context.Background(), s, key); err != nil {
			t.Fatal(err)
		}
		if _, err := b.Commit(); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, b.ID())
		*now = now.Add(time.Minute)
	}
	return ids
}

// TestPurgeAndRemove: batches go when past their retention, and oldest
// first while the trash exceeds its size bound; Remove deletes one.
func TestPurgeAndRemove(t *testing.T) {
	s, err := storagefs.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	now := t0
	tr, _ := newTrash(t, trash.Options{Retention: time.Hour, MaxBytes: 250, Now: func() time.Time { return now }})
	ids := fourBatches(t, s, tr, &now)
	if len(slices.Compact(slices.Clone(ids))) != 4 {
		t.Fatalf("batch IDs not unique: %q", ids)
	}
	removed, left, err := tr.Purge()
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) != 2 || removed[0].ID != ids[0] || removed[1].ID != ids[1] || left != 200 {
		t.Fatalf("size purge removed %+v, left %d; want the two oldest, 200", removed, left)
	}
	if err := tr.Remove(ids[3]); err != nil {
		t.Fatal(err)
	}
	now = t0.Add(time.Hour + 3*time.Minute) // ids[2] was made at t0+2m: expired
	removed, left, err = tr.Purge()
	if err != nil || len(removed) != 1 || removed[0].ID != ids[2] || left != 0 {
		t.Fatalf("age purge removed %+v, left %d, %v", removed, left, err)
	}
	if list, err := tr.List(); err != nil || len(list) != 0 {
		t.Errorf("List = %+v, %v; want empty", list, err)
	}
}

func TestNewCreatesDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b", "trash")
	if _, err := trash.New(dir, trash.Options{}); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		t.Fatalf("trash dir: %v", err)
	}
}

// TestPurgeWhile: batches go oldest first while the caller's condition
// holds, here a file system whose free space grows by what each removal
// frees (a fake free-space function), and not one more.
func TestPurgeWhile(t *testing.T) {
	s, err := storagefs.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	now := t0
	tr, _ := newTrash(t, trash.Options{Now: func() time.Time { return now }})
	ids := fourBatches(t, s, tr, &now)
	// The disk has 50 bytes free plus what the trash does not hold; 200
	// are wanted: the two oldest batches must go.
	free := func() int64 { return 50 + 400 - tr.Size() }
	var helds []int64
	removed, left, err := tr.PurgeWhile(func(held int64) bool {
		helds = append(helds, held)
		return free() < 200
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) != 2 || removed[0].ID != ids[0] || removed[1].ID != ids[1] || left != 200 {
		t.Fatalf("removed %+v, left %d; want the two oldest, 200 left", removed, left)
	}
	if !slices.Equal(helds, []int64{400, 300, 200}) {
		t.Errorf("condition asked with held = %v, want [400 300 200]", helds)
	}
	if got := free(); got < 200 {
		t.Errorf("free space %d after the purge, want at least 200", got)
	}
	list, err := tr.List()
	if err != nil || len(list) != 2 || list[0].ID != ids[3] || list[1].ID != ids[2] {
		t.Errorf("List = %+v, %v; want the two newest", list, err)
	}
	// A condition that never holds removes nothing; one that always holds
	// empties the trash.
	if removed, left, err := tr.PurgeWhile(func(int64) bool { return false }); err != nil || len(removed) != 0 || left != 200 {
		t.Errorf("PurgeWhile(false) = %d removed, %d left, %v", len(removed), left, err)
	}
	if removed, left, err := tr.PurgeWhile(func(int64) bool { return true }); err != nil || len(removed) != 2 || left != 0 {
		t.Errorf("PurgeWhile(true) = %d removed, %d left, %v", len(removed), left, err)
	}
}
