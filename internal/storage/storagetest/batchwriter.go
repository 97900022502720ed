package storagetest

import (
	"bytes"
	"context"
	"errors"
	"io"
	iofs "io/fs"
	"os"
	"testing"

	"github.com/modproxy/modproxy/internal/storage"
)

// runBatchWriter checks the storage.BatchWriter contract; newStore returns
// stores that implement it.
func runBatchWriter(t *testing.T, newStore func(t *testing.T) storage.Store) {
	ctx := context.Background()
	readAll := func(t *testing.T, s storage.Store, key string) []byte {
		t.Helper()
		o, err := s.Open(ctx, key)
		if err != nil {
			t.Fatalf("Open %s: %v", key, err)
		}
		defer o.Close()
		b, err := io.ReadAll(o)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	t.Run("StoresEveryEntry", func(t *testing.T) {
		s := newStore(t)
		bw := s.(storage.BatchWriter)
		zip := "example.com/a/@v/v1.0.0.zip"
		if _, err := s.Put(ctx, zip, bytes.NewReader([]byte("old"))); err != nil {
			t.Fatal(err)
		}
		data := bytes.Repeat([]byte("zip bytes "), 50_000)
		src := spoolFile(t, bw.TempDir(), data)
		entries := []storage.Entry{{Key: zip + ".h1", Data: []byte("h1:hash"), Unsynced: true}, {Key: zip, Src: src}}
		infos, err := bw.WriteBatch(ctx, entries)
		if err != nil {
			t.Fatal(err)
		}
		if len(infos) != 2 || infos[0].Key != zip+".h1" || infos[0].Size != 7 || infos[1].Key != zip || infos[1].Size != int64(len(data)) {
			t.Fatalf("infos %+v", infos)
		}
		if got := readAll(t, s, zip+".h1"); string(got) != "h1:hash" {
			t.Errorf("%s holds %q", zip+".h1", got)
		}
		if got := readAll(t, s, zip); !bytes.Equal(got, data) {
			t.Errorf("%s holds %d bytes, want %d", zip, len(got), len(data))
		}
		if _, err := os.Stat(src); !errors.Is(err, iofs.ErrNotExist) {
			t.Errorf("src after WriteBatch: %v, want it gone", err)
		}
	})
	t.Run("InvalidKeyStoresNothing", func(t *testing.T) {
		s := newStore(t)
		key := "example.com/a/@v/v1.0.0.mod"
		_, err := s.(storage.BatchWriter).WriteBatch(ctx, []storage.Entry{{Key: key, Data: []byte("module a\n")}, {Key: "../escape", Data: []byte("x")}})
		if !errors.Is(err, storage.ErrInvalidKey) {
			t.Fatalf("WriteBatch with an invalid key = %v, want ErrInvalidKey", err)
		}
		if _, err := s.Stat(ctx, key); !errors.Is(err, iofs.ErrNotExist) {
			t.Errorf("Stat %s after a refused batch = %v, want fs.ErrNotExist", key, err)
		}
	})
}
