// Package storagetest is the conformance kit for storage.Store
// implementations. Every backend's tests call Run.
package storagetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"slices"
	"sync"
	"testing"

	"github.com/modproxy/modproxy/internal/storage"
)

// Run checks that the store returned by newStore meets the storage.Store
// contract, and the storage.FileMover and storage.BatchWriter contracts
// when the store has those capabilities. newStore is called once per subtest and must return an empty
// store.
func Run(t *testing.T, newStore func(t *testing.T) storage.Store) {
	ctx := context.Background()
	t.Run("Missing", func(t *testing.T) {
		s := newStore(t)
		if _, err := s.Open(ctx, "example.com/a/@v/v1.0.0.zip"); !errors.Is(err, iofs.ErrNotExist) {
			t.Fatalf("Open(missing) = %v, want fs.ErrNotExist", err)
		}
		if _, err := s.Stat(ctx, "example.com/a/@v/list"); !errors.Is(err, iofs.ErrNotExist) {
			t.Fatalf("Stat(missing) = %v, want fs.ErrNotExist", err)
		}
		if err := s.Delete(ctx, "example.com/a/@v/list"); err != nil {
			t.Fatalf("Delete(missing) = %v, want nil", err)
		}
	})
	t.Run("PutOpen", func(t *testing.T) {
		s := newStore(t)
		key := "github.com/!burnt!sushi/toml/@v/v1.3.2+incompatible.zip"
		data := bytes.Repeat([]byte("0123456789"), 100_000)
		info, err := s.Put(ctx, key, bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		if info.Size != int64(len(data)) || info.Key != key || info.ModTime.IsZero() {
			t.Fatalf("Put info = %+v", info)
		}
		got := readAll(t, s, key)
		if !bytes.Equal(got, data) {
			t.Fatalf("Open returned %d bytes, want %d", len(got), len(data))
		}
		st, err := s.Stat(ctx, key)
		if err != nil || st.Size != int64(len(data)) {
			t.Fatalf("Stat = %+v, %v", st, err)
		}
	})
	t.Run("Seek", func(t *testing.T) {
		s := newStore(t)
		key := "example.com/a/@v/v1.0.0.zip"
		if _, err := s.Put(ctx, key, bytes.NewReader([]byte("hello, world"))); err != nil {
			t.Fatal(err)
		}
		o, err := s.Open(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		defer o.Close()
		if o.Info().Size != 12 {
			t.Fatalf("Info().Size = %d", o.Info().Size)
		}
		if _, err := o.Seek(7, io.SeekStart); err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(o)
		if string(b) != "world" {
			t.Fatalf("after Seek read %q", b)
		}
		if end, err := o.Seek(0, io.SeekEnd); err != nil || end != 12 {
			t.Fatalf("Seek end = %d, %v", end, err)
		}
	})
	t.Run("Replace", func(t *testing.T) {
		s := newStore(t)
		key := "example.com/a/@v/list"
		for _, v := range []string{"v1.0.0\n", "v1.0.0\nv1.1.0\n", ""} {
			if _, err := s.Put(ctx, key, bytes.NewReader([]byte(v))); err != nil {
				t.Fatal(err)
			}
			if got := string(readAll(t, s, key)); got != v {
				t.Fatalf("after Put(%q) read %q", v, got)
			}
		}
	})
	t.Run("FailedPutKeepsOld", func(t *testing.T) {
		s := newStore(t)
		key := "example.com/a/@v/v1.0.0.mod"
		if _, err := s.Put(ctx, key, bytes.NewReader([]byte("module example.com/a\n"))); err != nil {
			t.Fatal(err)
		}
		boom := errors.New("upstream reset")
		_, err := s.Put(ctx, key, io.MultiReader(bytes.NewReader([]byte("partial")), errReader{boom}))
		if !errors.Is(err, boom) {
			t.Fatalf("Put with failing reader = %v, want %v", err, boom)
		}
		if got := string(readAll(t, s, key)); got != "module example.com/a\n" {
			t.Fatalf("after failed Put read %q", got)
		}
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := s.Put(cctx, "example.com/b/@v/v1.0.0.mod", bytes.NewReader([]byte("x"))); err == nil {
			t.Fatal("Put with cancelled context succeeded")
		}
		if _, err := s.Stat(ctx, "example.com/b/@v/v1.0.0.mod"); !errors.Is(err, iofs.ErrNotExist) {
			t.Fatalf("cancelled Put left an object: %v", err)
		}
	})
	t.Run("InvalidKeys", func(t *testing.T) {
		s := newStore(t)
		for _, key := range []string{"", "/etc/passwd", "../x", "a/../../x", "a/./b", "a//b", "a\\b", "a\x00b", "a/", ".."} {
			if _, err := s.Put(ctx, key, bytes.NewReader([]byte("x"))); !errors.Is(err, storage.ErrInvalidKey) {
				t.Errorf("Put(%q) = %v, want ErrInvalidKey", key, err)
			}
			if _, err := s.Open(ctx, key); !errors.Is(err, storage.ErrInvalidKey) {
				t.Errorf("Open(%q) = %v, want ErrInvalidKey", key, err)
			}
			if err := s.Delete(ctx, key); !errors.Is(err, storage.ErrInvalidKey) {
				t.Errorf("Delete(%q) = %v, want ErrInvalidKey", key, err)
			}
		}
	})
	t.Run("DeleteAndWalk", func(t *testing.T) {
		s := newStore(t)
		keys := []string{
			"example.com/a/@v/list", "example.com/a/@v/v1.0.0.info", "example.com/a/@v/v1.0.0.mod",
			"example.com/ab/@v/list", "example.com/a/b/@latest", "sumdb/sum.example/tile/8/0/001",
		}
		for _, k := range keys {
			if _, err := s.Put(ctx, k, bytes.NewReader([]byte(k))); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.Delete(ctx, "example.com/a/@v/v1.0.0.mod"); err != nil {
			t.Fatal(err)
		}
		walk := func(prefix string) []string {
			var got []string
			var mu sync.Mutex
			err := s.Walk(ctx, prefix, func(i storage.Info) error {
				if i.Size != int64(len(i.Key)) {
					return fmt.Errorf("%s: size %d", i.Key, i.Size)
				}
				mu.Lock()
				got = append(got, i.Key)
				mu.Unlock()
				return nil
			})
			if err != nil {
				t.Fatalf("Walk(%q): %v", prefix, err)
			}
			slices.Sort(got)
			return got
		}
		if got, want := walk("example.com/a/"), []string{"example.com/a/@v/list", "example.com/a/@v/v1.0.0.info", "example.com/a/b/@latest"}; !slices.Equal(got, want) {
			t.Errorf("Walk(example.com/a/) = %q, want %q", got, want)
		}
		if got := walk(""); len(got) != len(keys)-1 {
			t.Errorf("Walk(\"\") = %q, want %d keys", got, len(keys)-1)
		}
		stop := errors.New("stop")
		if err := s.Walk(ctx, "", func(storage.Info) error { return stop }); !errors.Is(err, stop) {
			t.Errorf("Walk error = %v, want %v", err, stop)
		}
	})
	t.Run("FileMover", func(t *testing.T) {
		if _, ok := newStore(t).(storage.FileMover); !ok {
			t.Skip("the store does not implement storage.FileMover")
		}
		runFileMover(t, newStore)
	})
	t.Run("BatchWriter", func(t *testing.T) {
		if _, ok := newStore(t).(storage.BatchWriter); !ok {
			t.Skip("the store does not implement storage.BatchWriter")
		}
		runBatchWriter(t, newStore)
	})
	t.Run("ConcurrentReadersSeeWholeObjects", func(t *testing.T) {
		s := newStore(t)
		key := "example.com/a/@v/list"
		a := bytes.Repeat([]byte("a"), 256<<10)
		b := bytes.Repeat([]byte("b"), 128<<10)
		if _, err := s.Put(ctx, key, bytes.NewReader(a)); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		errs := make(chan error, 100)
		for i := range 8 {
			wg.Go(func() {
				for j := range 10 {
					data := a
					if (i+j)%2 == 0 {
						data = b
					}
					if _, err := s.Put(ctx, key, bytes.NewReader(data)); err != nil {
						errs <- err
						return
					}
				}
			})
			wg.Go(func() {
				for range 20 {
					o, err := s.Open(ctx, key)
					if err != nil {
						errs <- err
						return
					}
					got, err := io.ReadAll(o)
					o.Close()
					if err != nil {
						errs <- err
						return
					}
					if !bytes.Equal(got, a) && !bytes.Equal(got, b) {
						errs <- fmt.Errorf("reader saw a partial object of %d bytes", len(got))
						return
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	})
}

func readAll(t *testing.T, s storage.Store, key string) []byte {
	t.Helper()
	o, err := s.Open(context.Background(), key)
	if err != nil {
		t.Fatalf("Open(%q): %v", key, err)
	}
	defer o.Close()
	b, err := io.ReadAll(o)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(b)) != o.Info().Size {
		t.Fatalf("Open(%q): read %d bytes, Info().Size %d", key, len(b), o.Info().Size)
	}
	return b
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }
