// Package resilient wraps an upstream.Fetcher with the policies that keep
// an upstream outage from costing users more than it must, built on
// github.com/failsafe-go/failsafe-go:
//
//   - retries of transient failures (connection errors, resets, timeouts,
//     429 and 5xx, i.e. upstream.Error.Transient) with exponential backoff
//     and full jitter, honouring Retry-After, bounded by MaxAttempts and by
//     the caller's context; not-found answers, invalid answers and 403/400
//     are never retried;
//   - a circuit breaker: after FailureThreshold consecutive transient
//     failures the upstream is open and Fetch fails at once with an
//     *upstream.Error whose BreakerOpen is set (a Chain skips such links);
//     after OpenDelay one trial request is let through (half-open), and a
//     success closes it again;
//   - Probe, for active health checks, which feeds the same breaker: a
//     failed probe counts as a failure, a successful one closes an open
//     breaker, so it recovers without user traffic. StartProbes runs it
//     on a schedule; Close stops the schedule and waits for it;
//   - Hedge (hedge.go), which hedges a chain's mutable requests to the
//     rest of the chain.
//
// A Fetcher is safe for concurrent use.
package resilient

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"strings"
	"time"

	"github.com/failsafe-go/failsafe-go"
	"github.com/failsafe-go/failsafe-go/circuitbreaker"
	"github.com/failsafe-go/failsafe-go/retrypolicy"

	"github.com/modproxy/modproxy/internal/background"
	"github.com/modproxy/modproxy/internal/metrics"
	"github.com/modproxy/modproxy/internal/upstream"
)

// Options configures a Fetcher. Zero values get the defaults noted.
type Options struct {
	MaxAttempts      int           // attempts per Fetch, first included; default 3
	BackoffBase      time.Duration // first retry waits up to this; default 100ms
	BackoffMax       time.Duration // cap of the backoff; default 2s
	MaxRetryAfter    time.Duration // longest Retry-After honoured; default 10s
	FailureThreshold uint          // consecutive failures that open the breaker; default 3
	OpenDelay        time.Duration // open -> half-open; default 30s
	// TempDir holds zips while they are read (default os.TempDir()).
	TempDir string
	Logger  *slog.Logger
	Metrics *metrics.Metrics
}

// Fetcher is a resilient upstream.Fetcher around another.
type Fetcher struct {
	name    string
	inner   upstream.Fetcher
	opts    Options
	cb      circuitbreaker.CircuitBreaker[*upstream.Response]
	retry   retrypolicy.RetryPolicy[*upstream.Response]
	log     *slog.Logger
	metrics *metrics.Metrics
	bg      *background.Group // probes
}

// New wraps inner; name identifies the upstream in logs and metrics.
func New(name string, inner upstream.Fetcher, opts Options) *Fetcher {
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = 3
	}
	if opts.BackoffBase <= 0 {
		opts.BackoffBase = 100 * time.Millisecond
	}
	if opts.BackoffMax <= 0 {
		opts.BackoffMax = 2 * time.Second
	}
	if opts.MaxRetryAfter <= 0 {
		opts.MaxRetryAfter = 10 * time.Second
	}
	if opts.FailureThreshold == 0 {
		opts.FailureThreshold = 3
	}
	if opts.OpenDelay <= 0 {
		opts.OpenDelay = 30 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	f := &Fetcher{name: name, inner: inner, opts: opts, log: opts.Logger, metrics: opts.Metrics, bg: background.New(opts.Logger)}
	f.cb = circuitbreaker.NewBuilder[*upstream.Response]().
		HandleIf(func(_ *upstream.Response, err error) bool { return transient(err) }).
		WithFailureThreshold(opts.FailureThreshold).
		WithDelay(opts.OpenDelay).
		WithSuccessThreshold(1).
		OnStateChanged(func(e circuitbreaker.StateChangedEvent) {
			lvl := slog.LevelWarn
			if e.NewState == circuitbreaker.ClosedState {
				lvl = slog.LevelInfo
			}
			f.log.Log(context.Background(), lvl, "upstream circuit breaker", "upstream", name, "from", stateName(e.OldState), "to", stateName(e.NewState))
			f.metrics.BreakerState(name, stateName(e.NewState), true)
		}).
		Build()
	f.retry = retrypolicy.NewBuilder[*upstream.Response]().
		HandleIf(func(_ *upstream.Response, err error) bool { return transient(err) }).
		AbortOnErrors(circuitbreaker.ErrOpen).
		WithMaxAttempts(opts.MaxAttempts).
		WithDelayFunc(f.delay).
		ReturnLastFailure().
		OnRetry(func(e failsafe.ExecutionEvent[*upstream.Response]) {
			f.log.Debug("retrying upstream fetch", "upstream", name, "attempt", e.Attempts(), "err", e.LastError())
			f.metrics.UpstreamRetry(name)
		}).
		Build()
	f.metrics.BreakerState(name, "closed", false)
	return f
}

// Name returns the upstream's name.
func (f *Fetcher) Name() string { return f.name }

// State returns "closed", "open" or "half-open".
func (f *Fetcher) State() string { return stateName(f.cb.State()) }

func stateName(s circuitbreaker.State) string {
	switch s {
	case circuitbreaker.OpenState:
		return "open"
	case circuitbreaker.HalfOpenState:
		return "half-open"
	default:
		return "closed"
	}
}

func transient(err error) bool {
	var ue *upstream.Error
	if errors.As(err, &ue) {
		return ue.Transient() && !ue.BreakerOpen
	}
	return err != nil && !errors.Is(err, context.Canceled)
}

// delay is exponential backoff with full jitter, or the upstream's
// Retry-After when it gave one.
func (f *Fetcher) delay(exec failsafe.ExecutionAttempt[*upstream.Response]) time.Duration {
	var ue *upstream.Error
	if errors.As(exec.LastError(), &ue) && ue.RetryAfter > 0 {
		return min(ue.RetryAfter, f.opts.MaxRetryAfter)
	}
	ceiling := f.opts.BackoffBase << min(exec.Retries(), 16)
	if ceiling <= 0 || ceiling > f.opts.BackoffMax {
		ceiling = f.opts.BackoffMax
	}
	return time.Duration(rand.Int64N(int64(ceiling) + 1))
}

// Fetch implements upstream.Fetcher.
func (f *Fetcher) Fetch(ctx context.Context, path string) (*upstream.Response, error) {
	start := time.Now()
	resp, err := failsafe.With(f.retry, f.cb).WithContext(ctx).Get(func() (*upstream.Response, error) {
		return f.fetchComplete(ctx, path)
	})
	if errors.Is(err, circuitbreaker.ErrOpen) {
		err = &upstream.Error{Upstream: f.name, Path: path, Msg: "circuit breaker open after repeated failures; skipped", BreakerOpen: true, Err: err}
	}
	f.metrics.UpstreamFetch(f.name, fetchResult(err), time.Since(start))
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// fetchComplete fetches path and reads the whole body, so that a failure
// in the middle of it (reset, timeout) is an attempt's failure that is
// retried, counted by the breaker, and lets a Chain move on. Zips are read
// into a temporary file, everything else (bounded by the inner fetcher's
// size limit) into memory.
func (f *Fetcher) fetchComplete(ctx context.Context, path string) (*upstream.Response, error) {
	resp, err := f.inner.Fetch(ctx, path)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if !strings.HasSuffix(path, ".zip") {
		data, err := io.ReadAll(resp.Body)
		if err != nil {
			return nil, err
		}
		if resp.Size >= 0 && int64(len(data)) != resp.Size {
			return nil, &upstream.Error{Upstream: f.name, Path: path, Msg: fmt.Sprintf("short body: %d of %d bytes", len(data), resp.Size), Err: io.ErrUnexpectedEOF}
		}
		return &upstream.Response{Body: io.NopCloser(bytes.NewReader(data)), Size: int64(len(data)), Source: resp.Source}, nil
	}
	tmp, err := os.CreateTemp(f.opts.TempDir, "upstream-*.zip")
	if err != nil {
		return nil, fmt.Errorf("spooling %s: %w", path, err)
	}
	n, err := io.Copy(tmp, resp.Body)
	if err == nil && resp.Size >= 0 && n != resp.Size {
		err = &upstream.Error{Upstream: f.name, Path: path, Msg: fmt.Sprintf("short body: %d of %d bytes", n, resp.Size), Err: io.ErrUnexpectedEOF}
	}
	if err == nil {
		_, err = tmp.Seek(0, io.SeekStart)
	}
	if err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return nil, err
	}
	return &upstream.Response{Body: spooled{tmp}, Size: n, Source: resp.Source, File: tmp}, nil
}

// spooled removes its temporary file on Close.
type spooled struct{ *os.File }

func (s spooled) Close() error {
	err := s.File.Close()
	os.Remove(s.File.Name())
	return err
}

func fetchResult(err error) string {
	var ue *upstream.Error
	switch {
	case err == nil:
		return "ok"
	case errors.As(err, &ue) && ue.BreakerOpen:
		return "breaker_open"
	case errors.As(err, &ue) && ue.NotFound():
		return "not_found"
	case errors.As(err, &ue) && ue.Timeout:
		return "timeout"
	default:
		return "error"
	}
}

// Probe fetches path once, bypassing retries, and records the outcome in
// the breaker: a transient failure counts towards opening it, anything
// else (including not found) proves the upstream answers and closes it.
func (f *Fetcher) Probe(ctx context.Context, path string) error {
	resp, err := f.inner.Fetch(ctx, path)
	if resp != nil {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
	}
	if transient(err) {
		if !f.cb.IsOpen() {
			f.cb.RecordFailure()
		}
		return err
	}
	if !f.cb.IsClosed() {
		f.cb.Close()
	}
	return nil
}

// StartProbes probes path every interval, backing off up to 8 intervals
// while the probes fail, until ctx is done or Close is called. Each probe
// has a timeout of the interval (at least 5 s); failures are logged and
// every outcome is counted in the metrics.
func (f *Fetcher) StartProbes(ctx context.Context, every time.Duration, path string) {
	wait := every
	f.bg.Loop(ctx, "upstream probe "+f.name, every, func(ctx context.Context) time.Duration {
		pctx, cancel := context.WithTimeout(ctx, max(every, 5*time.Second))
		err := f.Probe(pctx, path)
		cancel()
		if ctx.Err() != nil {
			return wait // stopping
		}
		f.metrics.Probe(f.name, err == nil)
		if err != nil {
			f.log.Warn("upstream health probe failed", "upstream", f.name, "path", path, "state", f.State(), "err", err)
			wait = min(wait*2, 8*every)
		} else {
			wait = every
		}
		return wait
	})
}

// Close stops the probes and waits for them to return. The Fetcher still
// fetches afterwards.
func (f *Fetcher) Close() { f.bg.Close() }
