package checksum

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/modproxy/modproxy/internal/upstream/upstreamtest"
)

// TestPrefetchFailureIsNotRemembered: a prefetch that cannot read the
// database fails, and the verification after the database recovered
// reads it again and succeeds.
func TestPrefetchFailureIsNotRemembered(t *testing.T) {
	f := newRecoveryFixture(t, 1)
	v := f.verifier(t, t.TempDir())
	f.up.SetFault("sumdb/"+f.name+"/lookup/example.com/m0@v1.0.0", upstreamtest.Fault{Kind: upstreamtest.ServerError})
	var le *LookupError
	if err := v.Prefetch(context.Background(), "example.com/m0", "v1.0.0"); !errors.As(err, &le) {
		t.Fatalf("prefetch with the lookup failing: %v, want a *LookupError", err)
	}
	f.up.ClearFaults()
	if err := v.Prefetch(context.Background(), "example.com/m0", "v1.0.0"); err != nil {
		t.Fatalf("prefetch after the database recovered: %v", err)
	}
	if err := f.verify(v, 0); err != nil {
		t.Fatalf("verification after the database recovered: %v", err)
	}
}

// TestPrefetchPrivate: a private path is never looked up.
func TestPrefetchPrivate(t *testing.T) {
	var reads atomic.Int32
	v, err := New(Options{Key: newRecoveryFixture(t, 1).key, StateDir: t.TempDir(), Private: "example.com/private",
		Remote: func(context.Context, string) ([]byte, error) {
			reads.Add(1)
			return nil, errors.New("must not be read")
		}})
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Prefetch(context.Background(), "example.com/private/x", "v1.0.0"); !errors.Is(err, ErrPrivate) {
		t.Fatalf("prefetch of a private module: %v, want ErrPrivate", err)
	}
	if n := reads.Load(); n != 0 {
		t.Fatalf("%d database reads for a private module, want none", n)
	}
}

// TestPrefetchUsesContext: the prefetch's reads run under its context.
func TestPrefetchUsesContext(t *testing.T) {
	f := newRecoveryFixture(t, 1)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var sawCancel atomic.Bool
	v, err := New(Options{Key: f.key, StateDir: t.TempDir(),
		Remote: func(ctx context.Context, _ string) ([]byte, error) {
			sawCancel.Store(errors.Is(ctx.Err(), context.Canceled))
			return nil, ctx.Err()
		}})
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Prefetch(ctx, "example.com/m0", "v1.0.0"); err == nil {
		t.Fatal("prefetch under a cancelled context succeeded")
	}
	if !sawCancel.Load() {
		t.Fatal("the database read did not run under the prefetch's context")
	}
}
