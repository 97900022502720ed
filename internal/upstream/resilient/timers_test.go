package resilient_test

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/modproxy/modproxy/internal/upstream"
	"github.com/modproxy/modproxy/internal/upstream/resilient"
)

// scripted answers its calls with errs in order, then successes.
type scripted struct {
	mu    sync.Mutex
	errs  []error
	calls int
}

func (s *scripted) Fetch(ctx context.Context, path string) (*upstream.Response, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	if len(s.errs) > 0 {
		err := s.errs[0]
		s.errs = s.errs[1:]
		return nil, err
	}
	return &upstream.Response{Body: io.NopCloser(strings.NewReader("v1.0.0\n")), Size: 7, Source: "scripted"}, nil
}

func (s *scripted) fail(errs ...error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.errs = append(s.errs, errs...)
}

func (s *scripted) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

func unavailableAfter(retryAfter time.Duration) error {
	return &upstream.Error{Upstream: "scripted", Path: list, Status: 503, RetryAfter: retryAfter}
}

// TestRetryDelays: a retry waits for the upstream's Retry-After (bounded
// by MaxRetryAfter), otherwise for a jittered backoff bounded by
// BackoffMax; all in fake time.
func TestRetryDelays(t *testing.T) {
	for _, tc := range []struct {
		name     string
		opts     resilient.Options
		errs     []error
		min, max time.Duration // time Fetch takes
	}{
		{"Retry-After", resilient.Options{}, []error{unavailableAfter(7 * time.Second)}, 7 * time.Second, 7 * time.Second},
		{"Retry-After capped", resilient.Options{MaxRetryAfter: 10 * time.Second}, []error{unavailableAfter(time.Hour)}, 10 * time.Second, 10 * time.Second},
		{"backoff", resilient.Options{BackoffBase: time.Second, BackoffMax: 2 * time.Second},
			[]error{unavailableAfter(0), unavailableAfter(0)}, 0, 3 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				inner := &scripted{}
				inner.fail(tc.errs...)
				f := resilient.New("scripted", inner, tc.opts)
				start := time.Now()
				if err := fetch(t, f, list); err != nil {
					t.Fatalf("Fetch after %d transient failures: %v", len(tc.errs), err)
				}
				if d := time.Since(start); d < tc.min || d > tc.max {
					t.Errorf("Fetch took %v, want %v to %v", d, tc.min, tc.max)
				}
				if n := inner.count(); n != len(tc.errs)+1 {
					t.Errorf("%d attempts, want %d", n, len(tc.errs)+1)
				}
			})
		})
	}
}

// TestBreakerHalfOpensAfterOpenDelay: an open breaker fails at once
// without asking the upstream until OpenDelay has passed; then one trial
// request goes through, and its success closes the breaker.
func TestBreakerHalfOpensAfterOpenDelay(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		inner := &scripted{}
		inner.fail(unavailableAfter(0), unavailableAfter(0))
		f := resilient.New("scripted", inner, resilient.Options{MaxAttempts: 1, MinRequests: 2, FailureRate: 1, OpenDelay: time.Minute})
		for range 2 {
			if err := fetch(t, f, list); err == nil {
				t.Fatal("Fetch succeeded against a failing upstream")
			}
		}
		if f.State() != "open" {
			t.Fatalf("breaker %s after 2 failures, want open", f.State())
		}
		time.Sleep(time.Minute - time.Second)
		err := fetch(t, f, list)
		var ue *upstream.Error
		if !errors.As(err, &ue) || !ue.BreakerOpen || inner.count() != 2 {
			t.Fatalf("before OpenDelay: %v after %d upstream calls, want a breaker-open error and no call", err, inner.count())
		}
		time.Sleep(time.Second)
		if err := fetch(t, f, list); err != nil {
			t.Fatalf("trial request after OpenDelay: %v", err)
		}
		if f.State() != "closed" || inner.count() != 3 {
			t.Errorf("breaker %s after a successful trial (%d calls), want closed (3)", f.State(), inner.count())
		}
	})
}
