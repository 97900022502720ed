package checksum

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/modproxy/modproxy/internal/upstream/upstreamtest"
)

// recoveryFixture is a checksum database on loopback with modules
// example.com/m0 ... m(n-1) and a way to make Verifiers for it.
type recoveryFixture struct {
	up   *upstreamtest.Server
	name string
	key  string
}

func newRecoveryFixture(t *testing.T, n int) *recoveryFixture {
	t.Helper()
	var mods []upstreamtest.Module
	for i := range n {
		mods = append(mods, upstreamtest.Module{Path: fmt.Sprintf("example.com/m%d", i), Version: "v1.0.0",
			Files: map[string][]byte{"m.go": []byte(fmt.Sprintf("package m%d\n", i))}})
	}
	up := upstreamtest.New(t, mods)
	name, key := up.SumDB()
	return &recoveryFixture{up: up, name: name, key: key}
}

func (f *recoveryFixture) verifier(t *testing.T, stateDir string) *Verifier {
	t.Helper()
	remote := func(ctx context.Context, path string) ([]byte, error) {
		return httpGet(ctx, f.up.URL()+"/sumdb/"+f.name+path)
	}
	v, err := New(Options{Key: f.key, Remote: remote, StateDir: stateDir})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// verify checks the honest zip hash of example.com/m<i>@v1.0.0.
func (f *recoveryFixture) verify(v *Verifier, i int) error {
	mod := fmt.Sprintf("example.com/m%d", i)
	zipH1 := strings.Fields(f.up.GoSum(mod, "v1.0.0"))[2]
	return v.Verify(context.Background(), mod, "v1.0.0", false, zipH1)
}

// unavailable reports whether err is a verification that failed because the
// database could not be read (not a verdict about the content).
func unavailable(err error) bool {
	var le *LookupError
	return errors.As(err, &le) && !le.NotFound
}

// TestTransientFailuresAreNotRemembered turns the checksum database (or the
// verifier's state) off and on again: the verification right after the
// recovery succeeds, for the version that failed and for every other
// version that needs the tile that failed.
func TestTransientFailuresAreNotRemembered(t *testing.T) {
	t.Run("lookup", func(t *testing.T) {
		f := newRecoveryFixture(t, 1)
		v := f.verifier(t, t.TempDir())
		f.up.SetFault("sumdb/"+f.name+"/lookup/example.com/m0@v1.0.0", upstreamtest.Fault{Kind: upstreamtest.ServerError})
		if err := f.verify(v, 0); !unavailable(err) {
			t.Fatalf("with the lookup failing: %v, want an unavailable *LookupError", err)
		}
		f.up.ClearFaults()
		if err := f.verify(v, 0); err != nil {
			t.Fatalf("after the database recovered: %v", err)
		}
	})
	t.Run("tile", func(t *testing.T) {
		f := newRecoveryFixture(t, 2)
		// Record both versions in the database first, so that both
		// lookups are proved against the same tree and need the same tile.
		seed := f.verifier(t, t.TempDir())
		for i := range 2 {
			if err := f.verify(seed, i); err != nil {
				t.Fatalf("seeding m%d: %v", i, err)
			}
		}
		v := f.verifier(t, t.TempDir())
		for _, p := range []string{"/tile/*/*/*", "/tile/*/*/*/*"} {
			f.up.SetFault("sumdb/"+f.name+p, upstreamtest.Fault{Kind: upstreamtest.ServerError})
		}
		if err := f.verify(v, 0); !unavailable(err) {
			t.Fatalf("with the tiles failing: %v, want an unavailable *LookupError", err)
		}
		f.up.ClearFaults()
		if err := f.verify(v, 1); err != nil {
			t.Fatalf("another version needing the tile that failed, after recovery: %v", err)
		}
		if err := f.verify(v, 0); err != nil {
			t.Fatalf("the version that failed, after recovery: %v", err)
		}
	})
	t.Run("state", func(t *testing.T) {
		// The persisted tree head cannot be read (here: a directory
		// where the file should be, as an I/O error would).
		f := newRecoveryFixture(t, 1)
		dir := t.TempDir()
		v := f.verifier(t, dir)
		latest := filepath.Join(dir, f.name, "latest")
		if err := os.Mkdir(latest, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := f.verify(v, 0); !unavailable(err) {
			t.Fatalf("with the state unreadable: %v, want an unavailable *LookupError", err)
		}
		if err := os.Remove(latest); err != nil {
			t.Fatal(err)
		}
		if err := f.verify(v, 0); err != nil {
			t.Fatalf("after the state became readable: %v", err)
		}
	})
}

// TestConcurrentVerifications verifies many versions at once while the
// database's tree grows under them: every verification succeeds and the
// persisted tree head ends at the newest tree.
func TestConcurrentVerifications(t *testing.T) {
	const n = 12
	f := newRecoveryFixture(t, n)
	dir := t.TempDir()
	v := f.verifier(t, dir)
	var wg sync.WaitGroup
	errs := make([]error, 2*n)
	for i := range 2 * n {
		wg.Go(func() { errs[i] = f.verify(v, i%n) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("m%d: %v", i%n, err)
		}
	}
	latest, err := os.ReadFile(filepath.Join(dir, f.name, "latest"))
	if err != nil {
		t.Fatal(err)
	}
	// A signed tree note: "go.sum database tree\nN\nHASH\n\n— signature".
	if lines := strings.SplitN(string(latest), "\n", 3); len(lines) < 3 || lines[1] != fmt.Sprint(n) {
		t.Errorf("persisted tree head %q, want a tree of %d records", latest, n)
	}
}
