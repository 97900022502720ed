package resilient_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/modproxy/modproxy/internal/upstream"
	"github.com/modproxy/modproxy/internal/upstream/resilient"
)

// fakeFetcher answers with fn and records when it was called.
type fakeFetcher struct {
	mu    sync.Mutex
	calls []time.Duration // since start
	start time.Time
	fn    func(ctx context.Context, n int) (*upstream.Response, error)
}

func newFake(fn func(ctx context.Context, n int) (*upstream.Response, error)) *fakeFetcher {
	return &fakeFetcher{start: time.Now(), fn: fn}
}

func (f *fakeFetcher) Fetch(ctx context.Context, path string) (*upstream.Response, error) {
	f.mu.Lock()
	f.calls = append(f.calls, time.Since(f.start))
	n := len(f.calls)
	f.mu.Unlock()
	return f.fn(ctx, n)
}

func (f *fakeFetcher) Calls() []time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Duration(nil), f.calls...)
}

func ok(body string) (*upstream.Response, error) {
	return &upstream.Response{Body: io.NopCloser(bytes.NewReader([]byte(body))), Size: int64(len(body))}, nil
}

var unavailable = &upstream.Error{Upstream: "fake", Status: http.StatusServiceUnavailable}

func seconds(ds []time.Duration) []int {
	var out []int
	for _, d := range ds {
		out = append(out, int(d/time.Second))
	}
	return out
}

// TestProbeSchedule: probes run every interval, back off (doubling, up to
// 8 intervals) while they fail, return to the interval when one succeeds,
// and never run once Close has returned.
func TestProbeSchedule(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		inner := newFake(func(ctx context.Context, n int) (*upstream.Response, error) {
			if n <= 4 {
				return nil, unavailable
			}
			return ok("ok")
		})
		f := resilient.New("fake", inner, resilient.Options{ProbeFailures: 100})
		f.StartProbes(context.Background(), time.Second, "probe")
		time.Sleep(30*time.Second + time.Millisecond)
		synctest.Wait()
		// Failures at 1, 3 (+2), 7 (+4), 15 (+8), then 23 (+8, capped): ok,
		// then every second.
		want := []int{1, 3, 7, 15, 23, 24, 25, 26, 27, 28, 29, 30}
		if got := seconds(inner.Calls()); !equal(got, want) {
			t.Fatalf("probes at %v s, want %v", got, want)
		}
		f.Close()
		time.Sleep(time.Hour)
		synctest.Wait()
		if n := len(inner.Calls()); n != len(want) {
			t.Fatalf("%d probes after Close, want none", n-len(want))
		}
	})
}

// TestProbeSurvivesPanic: a probe that panics is logged and probing goes
// on at the same interval.
func TestProbeSurvivesPanic(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		inner := newFake(func(ctx context.Context, n int) (*upstream.Response, error) {
			if n == 1 {
				panic("broken upstream client")
			}
			return ok("ok")
		})
		f := resilient.New("fake", inner, resilient.Options{})
		defer f.Close()
		ctx, cancel := context.WithCancel(context.Background())
		f.StartProbes(ctx, time.Second, "probe")
		time.Sleep(5*time.Second + time.Millisecond)
		synctest.Wait()
		cancel() // the context ends the probes too
		time.Sleep(time.Hour)
		synctest.Wait()
		if got, want := seconds(inner.Calls()), []int{1, 2, 3, 4, 5}; !equal(got, want) {
			t.Fatalf("probes at %v s, want %v", got, want)
		}
	})
}

func equal(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
