package storage_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"strings"
	"testing"
	"time"

	"github.com/modproxy/modproxy/internal/storage"
)

func TestCheckKey(t *testing.T) {
	for _, key := range []string{
		"example.com/a/@v/list",
		"github.com/!burnt!sushi/toml/@v/v1.3.2+incompatible.zip",
		"example.com/a/@v/v1.0.0.zip.h1",
		"sumdb/sum.example/tile/8/0/x001/234.p/5",
		"a",
		"a/b.c/...x",  // dots inside an element are fine
		"a/.hidden/b", // so are leading dots other than "." and ".."
		"ns/prod/x/@latest",
		strings.Repeat("a", 1024),
	} {
		if err := storage.CheckKey(key); err != nil {
			t.Errorf("CheckKey(%q) = %v, want nil", key, err)
		}
	}
	for _, key := range []string{
		"",
		strings.Repeat("a", 1025),
		"/etc/passwd",
		"a/",
		"a//b",
		".",
		"..",
		"./a",
		"a/.",
		"a/..",
		"../a",
		"a/../../b",
		`a\b`,
		`..\..\x`,
		"a:b",
		"C:/x",
		"a\x00b",
		"a\nb",
		"a\tb",
		"a\x7fb",
	} {
		if err := storage.CheckKey(key); !errors.Is(err, storage.ErrInvalidKey) {
			t.Errorf("CheckKey(%q) = %v, want ErrInvalidKey", key, err)
		}
	}
}

// memStore is an Opener over a map, for ReadSmall.
type memStore struct {
	objects map[string]string
	err     error // returned by Open for every key, when set
}

type memObject struct {
	*bytes.Reader
	info storage.Info
}

func (o memObject) Close() error       { return nil }
func (o memObject) Info() storage.Info { return o.info }

func (m memStore) Open(ctx context.Context, key string) (storage.Object, error) {
	if m.err != nil {
		return nil, m.err
	}
	v, ok := m.objects[key]
	if !ok {
		return nil, fmt.Errorf("open %s: %w", key, iofs.ErrNotExist)
	}
	return memObject{bytes.NewReader([]byte(v)), storage.Info{Key: key, Size: int64(len(v)), ModTime: time.Unix(1, 0)}}, nil
}

// failingObject fails its reads.
type failingObject struct{ memObject }

func (failingObject) Read([]byte) (int, error) { return 0, io.ErrUnexpectedEOF }

type failingStore struct{}

func (failingStore) Open(ctx context.Context, key string) (storage.Object, error) {
	return failingObject{}, nil
}

func TestReadSmall(t *testing.T) {
	ctx := context.Background()
	s := memStore{objects: map[string]string{"a.h1": "h1:abc=", "big": strings.Repeat("x", 100)}}
	if b, err := storage.ReadSmall(ctx, s, "a.h1", 256); err != nil || string(b) != "h1:abc=" {
		t.Errorf("ReadSmall(a.h1) = %q, %v", b, err)
	}
	if b, err := storage.ReadSmall(ctx, s, "big", 10); err != nil || string(b) != strings.Repeat("x", 10) {
		t.Errorf("ReadSmall(big, 10) = %q, %v; want the first 10 bytes", b, err)
	}
	if _, err := storage.ReadSmall(ctx, s, "missing", 10); !errors.Is(err, iofs.ErrNotExist) {
		t.Errorf("ReadSmall(missing) = %v, want fs.ErrNotExist", err)
	}
	boom := errors.New("store down")
	if _, err := storage.ReadSmall(ctx, memStore{err: boom}, "a.h1", 10); !errors.Is(err, boom) {
		t.Errorf("ReadSmall with a failing Open = %v, want %v", err, boom)
	}
	if _, err := storage.ReadSmall(ctx, failingStore{}, "a.h1", 10); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("ReadSmall with a failing read = %v, want io.ErrUnexpectedEOF", err)
	}
}
