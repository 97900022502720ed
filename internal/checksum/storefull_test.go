package checksum

import (
	"context"
	"errors"
	iofs "io/fs"
	"strings"
	"syscall"
	"testing"

	"github.com/modproxy/modproxy/internal/errclass"
	"github.com/modproxy/modproxy/internal/upstream/upstreamtest"
)

// TestStoreFullKeepsItsCause: when the proxy cannot store a tile or a
// lookup because local storage is full, the verification fails with that
// cause (class StoreFull), not as an unreachable database; a database
// failure is still Unavailable.
func TestStoreFullKeepsItsCause(t *testing.T) {
	up := upstreamtest.New(t, []upstreamtest.Module{{Path: "example.com/a", Version: "v1.0.0", Files: map[string][]byte{"a.go": []byte("package a\n")}}})
	name, key := up.SumDB()
	zipH1 := strings.Fields(up.GoSum("example.com/a", "v1.0.0"))[2]
	for _, tc := range []struct {
		name   string
		prefix string // remote reads of paths with this prefix fail
		fail   error
		want   errclass.Class
	}{
		{"tile not stored", "/tile/", &iofs.PathError{Op: "write", Path: "tmp/put-1", Err: syscall.ENOSPC}, errclass.StoreFull},
		{"lookup not stored", "/lookup/", &iofs.PathError{Op: "write", Path: "tmp/put-2", Err: syscall.EDQUOT}, errclass.StoreFull},
		{"database down", "/tile/", errors.New("502 Bad Gateway"), errclass.Unavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			remote := func(ctx context.Context, path string) ([]byte, error) {
				if strings.HasPrefix(path, tc.prefix) {
					return nil, tc.fail
				}
				return httpGet(ctx, up.URL()+"/sumdb/"+name+path)
			}
			v, err := New(Options{Key: key, Remote: remote, StateDir: t.TempDir()})
			if err != nil {
				t.Fatal(err)
			}
			err = v.Verify(context.Background(), "example.com/a", "v1.0.0", false, zipH1)
			var le *LookupError
			if !errors.As(err, &le) {
				t.Fatalf("Verify = %v, want a *LookupError", err)
			}
			if got := errclass.Of(err); got != tc.want {
				t.Errorf("class %v, want %v (err %v)", got, tc.want, err)
			}
			if full := errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT); full != (tc.want == errclass.StoreFull) {
				t.Errorf("errors.Is(err, ENOSPC or EDQUOT) = %v for %v", full, err)
			}
		})
	}
}
