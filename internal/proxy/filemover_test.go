package proxy_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sync"
	"testing"

	"github.com/modproxy/modproxy/internal/proxy"
	"github.com/modproxy/modproxy/internal/storage"
	storagefs "github.com/modproxy/modproxy/internal/storage/fs"
	"github.com/modproxy/modproxy/internal/upstream/upstreamtest"
)

// movingStore is a disk store that records how objects arrive, and can
// refuse MoveIn and WriteBatch as a store on another file system would.
type movingStore struct {
	*storagefs.Store
	refuse  error // returned by MoveIn and WriteBatch when set
	noBatch bool  // WriteBatch is refused
	mu      sync.Mutex
	how     map[string]string // key -> "put" or "move"
}

func (s *movingStore) record(key, how string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.how[key] = how
}

func (s *movingStore) arrived(key string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.how[key]
}

func (s *movingStore) Put(ctx context.Context, key string, r io.Reader) (storage.Info, error) {
	s.record(key, "put")
	return s.Store.Put(ctx, key, r)
}

func (s *movingStore) MoveIn(ctx context.Context, src, key string) (storage.Info, error) {
	if s.refuse != nil {
		return storage.Info{}, fmt.Errorf("move in %s: %w", key, s.refuse)
	}
	s.record(key, "move")
	return s.Store.MoveIn(ctx, src, key)
}

func (s *movingStore) WriteBatch(ctx context.Context, entries []storage.Entry) ([]storage.Info, error) {
	switch {
	case s.refuse != nil:
		return nil, fmt.Errorf("write batch: %w", s.refuse)
	case s.noBatch:
		return nil, fmt.Errorf("write batch: %w", storage.ErrNotSupported)
	}
	for _, e := range entries {
		s.record(e.Key, "batch")
	}
	return s.Store.WriteBatch(ctx, entries)
}

// TestZipFillUsesFileMover: a verified zip is moved into a store that can
// take files in, with its hash in one batch when the store can, and copied
// with Put when the store refuses (another file system); either way the
// stored bytes are the upstream's.
func TestZipFillUsesFileMover(t *testing.T) {
	for _, tc := range []struct {
		name    string
		refuse  error
		noBatch bool
		want    string
	}{
		{"batch", nil, false, "batch"},
		{"moved", nil, true, "move"},
		{"another file system", storage.ErrNotSupported, false, "put"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up := upstreamtest.New(t, mods(), upstreamtest.WithoutSumDB())
			fs, err := storagefs.New(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			store := &movingStore{Store: fs, refuse: tc.refuse, noBatch: tc.noBatch, how: map[string]string{}}
			svc := newService(t, up, proxy.Options{Store: store, TempDir: store.TempDir()})
			const key = "example.com/a/@v/v1.0.0.zip"
			res, err := svc.Get(context.Background(), mustParse(t, key))
			if err != nil {
				t.Fatal(err)
			}
			want := up.ZipBytes("example.com/a", "v1.0.0")
			if got := read(t, res); !bytes.Equal(got, want) {
				t.Fatalf("served %d bytes, want the upstream's %d", len(got), len(want))
			}
			if got := store.arrived(key); got != tc.want {
				t.Errorf("zip arrived by %q, want %q", got, tc.want)
			}
			wantHash := "put"
			if tc.want == "batch" {
				wantHash = "batch"
			}
			if got := store.arrived(key + ".h1"); got != wantHash {
				t.Errorf("hash arrived by %q, want %q", got, wantHash)
			}
			o, err := fs.Open(context.Background(), key)
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(o)
			if cerr := o.Close(); err == nil {
				err = cerr
			}
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("stored %d bytes (%v), want the upstream's %d", len(got), err, len(want))
			}
		})
	}
}

// TestInvalidSidecarIsNoHash: a recorded hash that a crash left empty or
// zero-filled (the sidecar is written unsynced) is served as no hash, not
// as garbage headers.
func TestInvalidSidecarIsNoHash(t *testing.T) {
	for _, side := range [][]byte{nil, make([]byte, 47)} {
		up := upstreamtest.New(t, mods(), upstreamtest.WithoutSumDB())
		fs, err := storagefs.New(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		const key = "example.com/a/@v/v1.0.0.mod"
		ctx := context.Background()
		for k, v := range map[string][]byte{key: up.ModBytes("example.com/a", "v1.0.0"), key + ".h1": side} {
			if _, err := fs.Put(ctx, k, bytes.NewReader(v)); err != nil {
				t.Fatal(err)
			}
		}
		svc := newService(t, up, proxy.Options{Store: fs, TempDir: fs.TempDir()})
		res, err := svc.Get(ctx, mustParse(t, key))
		if err != nil {
			t.Fatal(err)
		}
		read(t, res)
		if res.H1 != "" || res.HashHeaders != nil {
			t.Errorf("sidecar %q: served hash %q, want none", side, res.H1)
		}
	}
}
