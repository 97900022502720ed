package background_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/modproxy/modproxy/internal/background"
)

// syncBuffer is a log sink safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestEveryStopsAtClose: a loop ticks every interval, and once Close has
// returned it never runs again, however much time passes.
func TestEveryStopsAtClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := background.New(nil)
		var n atomic.Int32
		if !g.Every(context.Background(), "tick", time.Second, func(context.Context) { n.Add(1) }) {
			t.Fatal("Every refused to start")
		}
		time.Sleep(3*time.Second + time.Millisecond)
		synctest.Wait()
		if got := n.Load(); got != 3 {
			t.Fatalf("%d rounds after 3 intervals, want 3", got)
		}
		g.Close()
		time.Sleep(time.Hour)
		synctest.Wait()
		if got := n.Load(); got != 3 {
			t.Fatalf("%d rounds after Close, want 3", got)
		}
		if g.Go(context.Background(), "late", func(context.Context) { t.Error("a goroutine ran after Close") }) {
			t.Error("Go after Close reported true")
		}
	})
}

// TestCloseWaits: Close cancels the goroutine's context and returns only
// after the goroutine has returned.
func TestCloseWaits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := background.New(nil)
		var finished atomic.Bool
		g.Go(context.Background(), "worker", func(ctx context.Context) {
			<-ctx.Done()
			time.Sleep(time.Minute) // cleaning up takes a while
			finished.Store(true)
		})
		g.Close()
		if !finished.Load() {
			t.Fatal("Close returned before the goroutine did")
		}
		g.Close() // idempotent
	})
}

// TestParentContext: a goroutine also stops when the context it was
// started on is done.
func TestParentContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := background.New(nil)
		defer g.Close()
		ctx, cancel := context.WithCancel(context.Background())
		var n atomic.Int32
		g.Every(ctx, "tick", time.Second, func(context.Context) { n.Add(1) })
		time.Sleep(1500 * time.Millisecond)
		cancel()
		time.Sleep(time.Hour)
		synctest.Wait()
		if got := n.Load(); got != 1 {
			t.Fatalf("%d rounds, want 1 before the parent context ended", got)
		}
	})
}

// TestPanicsAreSurvived: a round that panics is logged with its stack and
// the loop carries on; a panicking goroutine ends without taking the
// process down.
func TestPanicsAreSurvived(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var logs syncBuffer
		g := background.New(slog.New(slog.NewTextHandler(&logs, nil)))
		var n atomic.Int32
		g.Every(context.Background(), "flaky", time.Second, func(context.Context) {
			if n.Add(1) == 1 {
				panic("first round fails")
			}
		})
		g.Go(context.Background(), "doomed", func(context.Context) { panic("boom") })
		time.Sleep(3*time.Second + time.Millisecond)
		synctest.Wait()
		g.Close()
		if got := n.Load(); got != 3 {
			t.Errorf("%d rounds, want 3 (the loop survives its first round's panic)", got)
		}
		out := logs.String()
		for _, want := range []string{"task=flaky", "first round fails", "task=doomed", "boom", "background_test.go"} {
			if !strings.Contains(out, want) {
				t.Errorf("log lacks %q:\n%s", want, out)
			}
		}
	})
}

// TestLoopWaits: each round chooses the wait before the next.
func TestLoopWaits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := background.New(nil)
		start := time.Now()
		var at []time.Duration
		var mu sync.Mutex
		g.Loop(context.Background(), "backoff", time.Second, func(context.Context) time.Duration {
			mu.Lock()
			defer mu.Unlock()
			at = append(at, time.Since(start))
			return time.Duration(len(at)) * time.Second
		})
		time.Sleep(10*time.Second + time.Millisecond)
		g.Close()
		mu.Lock()
		defer mu.Unlock()
		want := []time.Duration{1 * time.Second, 2 * time.Second, 4 * time.Second, 7 * time.Second}
		if len(at) != len(want) {
			t.Fatalf("rounds at %v, want %v", at, want)
		}
		for i := range want {
			if at[i] != want[i] {
				t.Fatalf("rounds at %v, want %v", at, want)
			}
		}
	})
}
