package resilient_test

import (
	"context"
	"errors"
	"io"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/modproxy/modproxy/internal/upstream"
	"github.com/modproxy/modproxy/internal/upstream/resilient"
)

// hang blocks until ctx is done and counts the cancellations.
func hang(cancelled *atomic.Int32) func(ctx context.Context, n int) (*upstream.Response, error) {
	return func(ctx context.Context, n int) (*upstream.Response, error) {
		<-ctx.Done()
		cancelled.Add(1)
		return nil, ctx.Err()
	}
}

// TestHedgeMutable: a list request whose first upstream has not answered
// after the delay goes to the rest of the chain too; the first success
// wins and the slow request is cancelled.
func TestHedgeMutable(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var cancelled atomic.Int32
		primary := newFake(hang(&cancelled))
		secondary := newFake(func(ctx context.Context, n int) (*upstream.Response, error) { return ok("v1.0.0\n") })
		f := resilient.Hedge(&upstream.Chain{Links: []upstream.Link{{Fetcher: primary}, {Fetcher: secondary}}}, 100*time.Millisecond)
		start := time.Now()
		resp, err := f.Fetch(context.Background(), "example.com/a/@v/list")
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		if err != nil || string(body) != "v1.0.0\n" {
			t.Fatalf("body %q, %v", body, err)
		}
		if d := time.Since(start); d != 100*time.Millisecond {
			t.Errorf("answered after %v, want the hedge delay", d)
		}
		synctest.Wait()
		if cancelled.Load() != 1 {
			t.Error("the slow primary request was not cancelled")
		}
		if got := seconds(secondary.Calls()); len(got) != 1 {
			t.Errorf("secondary called %d times, want 1", len(got))
		}
	})
}

// TestHedgeOnlyMutableAndSlow: immutable requests are never hedged, nor
// requests the first upstream answers in time; a single-link chain is
// returned as it is.
func TestHedgeOnlyMutableAndSlow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var cancelled atomic.Int32
		primary := newFake(hang(&cancelled))
		secondary := newFake(func(ctx context.Context, n int) (*upstream.Response, error) { return ok("x") })
		chain := &upstream.Chain{Links: []upstream.Link{{Fetcher: primary}, {Fetcher: secondary}}}
		f := resilient.Hedge(chain, 100*time.Millisecond)
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		for _, p := range []string{"example.com/a/@v/v1.0.0.zip", "example.com/a/@v/v1.0.0.mod", "sumdb/sum.example/latest"} {
			if _, err := f.Fetch(ctx, p); !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("%s: err = %v, want the primary's deadline", p, err)
			}
		}
		if n := len(secondary.Calls()); n != 0 {
			t.Errorf("immutable requests were hedged %d times", n)
		}

		fast := newFake(func(ctx context.Context, n int) (*upstream.Response, error) { return ok("fast") })
		f = resilient.Hedge(&upstream.Chain{Links: []upstream.Link{{Fetcher: fast}, {Fetcher: secondary}}}, 100*time.Millisecond)
		if _, err := f.Fetch(context.Background(), "example.com/a/@latest"); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second)
		synctest.Wait()
		if n := len(secondary.Calls()); n != 0 {
			t.Errorf("a request answered in time was hedged %d times", n)
		}

		single := &upstream.Chain{Links: []upstream.Link{{Fetcher: fast}}}
		if got := resilient.Hedge(single, time.Second); got != upstream.Fetcher(single) {
			t.Error("a single-link chain was wrapped")
		}
		if got := resilient.Hedge(chain, 0); got != upstream.Fetcher(chain) {
			t.Error("a chain was wrapped without a delay")
		}
	})
}
