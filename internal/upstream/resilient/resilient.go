// Package resilient wraps an upstream.Fetcher with the policies that keep
// an upstream outage from costing users more than it must, built on
// github.com/failsafe-go/failsafe-go:
//
//   - retries of transient failures (connection errors, resets, timeouts,
//     429 and 5xx, i.e. upstream.Error.Transient) with exponential backoff
//     and full jitter, honouring Retry-After, bounded by MaxAttempts, by
//     RequestTimeout and by the caller's context; not-found answers,
//     invalid answers, 403/400 and local failures (*upstream.LocalError: a
//     full disk while spooling a body) are never retried;
//   - a deadline per request (RequestTimeout, every attempt and backoff
//     included): a request that runs out of it fails with an
//     *upstream.Error whose Timeout is set (errclass Timeout), so a hanging
//     upstream is answered with a timeout in bounded time;
//   - a circuit breaker that counts requests, not attempts: a request that
//     failed transiently after its retries is one failure, any answer
//     (success, not found, denied, invalid) one success. The breaker opens
//     when, within the rolling Window, at least MinRequests requests were
//     counted and at least FailureRate of them failed, so one bad request
//     does not open it for everyone. An open upstream fails at once with an
//     *upstream.Error whose BreakerOpen is set (a Chain skips such links);
//     after OpenDelay one trial request is let through (half-open), and its
//     success closes it again. Local failures and requests whose caller
//     went away say nothing about the upstream and are not counted;
//   - Probe, for active health checks, which feeds the same breaker: a
//     failed probe counts as a failed request, ProbeFailures failed probes
//     in a row open the breaker (a dead upstream is noticed without user
//     traffic), a successful one closes it. StartProbes runs it on a
//     schedule; Close stops the schedule and waits for it;
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
	"sync"
	"time"

	"github.com/failsafe-go/failsafe-go"
	"github.com/failsafe-go/failsafe-go/circuitbreaker"
	"github.com/failsafe-go/failsafe-go/retrypolicy"

	"github.com/modproxy/modproxy/internal/background"
	"github.com/modproxy/modproxy/internal/event"
	"github.com/modproxy/modproxy/internal/metrics"
	"github.com/modproxy/modproxy/internal/upstream"
)

// Options configures a Fetcher. Zero values get the defaults noted.
type Options struct {
	MaxAttempts   int           // attempts per Fetch, first included; default 3
	BackoffBase   time.Duration // first retry waits up to this; default 100ms
	BackoffMax    time.Duration // cap of the backoff; default 2s
	MaxRetryAfter time.Duration // longest Retry-After honoured; default 10s
	// RequestTimeout bounds one Fetch, every attempt and backoff included;
	// default 5m. (Each attempt is bounded by the inner fetcher's own
	// timeouts.)
	RequestTimeout time.Duration
	// The breaker opens when, within the rolling Window, at least
	// MinRequests requests were counted and at least FailureRate (0 < r <= 1)
	// of them failed. Defaults 0.5, 10 and 1m.
	FailureRate float64
	MinRequests uint
	Window      time.Duration
	// ProbeFailures is the number of failed probes in a row that open the
	// breaker; default 3.
	ProbeFailures uint
	OpenDelay     time.Duration // open -> half-open; default 30s
	// TempDir holds zips while they are read (default os.TempDir()).
	TempDir string
	Logger  *slog.Logger
	Metrics *metrics.Metrics
	// Events receives an event.BreakerOpen each time the breaker opens
	// (from closed or, after a failed trial, from half-open); nil
	// discards.
	Events event.Sink
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

	// spoolWriter is where a zip body is written; the spool file itself
	// unless a test injects a failing writer (export_test.go).
	spoolWriter func(*os.File) io.Writer

	mu         sync.Mutex
	probeFails uint // failed probes in a row
}

// New wraps inner; name identifies the upstream in logs and metrics.
// FailureRate must be in (0, 1] (New panics otherwise; zero means the
// default).
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
	if opts.RequestTimeout <= 0 {
		opts.RequestTimeout = 5 * time.Minute
	}
	if opts.FailureRate == 0 {
		opts.FailureRate = 0.5
	}
	if opts.MinRequests == 0 {
		opts.MinRequests = 10
	}
	if opts.Window <= 0 {
		opts.Window = time.Minute
	}
	if opts.ProbeFailures == 0 {
		opts.ProbeFailures = 3
	}
	if opts.OpenDelay <= 0 {
		opts.OpenDelay = 30 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Events == nil {
		opts.Events = event.Discard{}
	}
	f := &Fetcher{name: name, inner: inner, opts: opts, log: opts.Logger, metrics: opts.Metrics, bg: background.New(opts.Logger),
		spoolWriter: func(f *os.File) io.Writer { return f }}
	// The breaker is not a policy of the execution (that would count
	// attempts): Fetch asks it for a permit and records the request's
	// outcome itself (record).
	f.cb = circuitbreaker.NewBuilder[*upstream.Response]().
		WithFailureRateThreshold(opts.FailureRate, opts.MinRequests, opts.Window).
		WithDelay(opts.OpenDelay).
		WithSuccessThreshold(1).
		OnStateChanged(func(e circuitbreaker.StateChangedEvent) {
			lvl := slog.LevelWarn
			if e.NewState == circuitbreaker.ClosedState {
				lvl = slog.LevelInfo
			}
			f.log.Log(context.Background(), lvl, "upstream circuit breaker", "upstream", name, "from", stateName(e.OldState), "to", stateName(e.NewState))
			f.metrics.BreakerState(name, stateName(e.NewState), true)
			if e.NewState == circuitbreaker.OpenState {
				opts.Events.Emit(event.Event{Type: event.BreakerOpen, Time: time.Now().UTC(), Upstream: name,
					Reason: "circuit breaker opened (was " + stateName(e.OldState) + ")"})
			}
		}).
		Build()
	f.retry = retrypolicy.NewBuilder[*upstream.Response]().
		HandleIf(func(_ *upstream.Response, err error) bool { return transient(err) }).
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

// transient reports whether err is a failure of the upstream that asking
// again may cure. Local failures and cancellations are not.
func transient(err error) bool {
	var ue *upstream.Error
	var le *upstream.LocalError
	switch {
	case errors.As(err, &le):
		return false
	case errors.As(err, &ue):
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

// Fetch implements upstream.Fetcher. Errors: an *upstream.Error (with
// BreakerOpen when the breaker is open, with Timeout when RequestTimeout
// or the caller's deadline ran out), an *upstream.LocalError when writing
// the body locally failed, or the caller's context.Canceled.
func (f *Fetcher) Fetch(ctx context.Context, path string) (*upstream.Response, error) {
	start := time.Now()
	if !f.cb.TryAcquirePermit() {
		f.metrics.UpstreamFetch(f.name, "breaker_open", time.Since(start))
		return nil, &upstream.Error{Upstream: f.name, Path: path, Msg: "circuit breaker open after repeated failures; skipped", BreakerOpen: true, Err: circuitbreaker.ErrOpen}
	}
	resp, err := f.fetchRetrying(ctx, path)
	f.record(ctx, err)
	var le *upstream.LocalError
	if errors.As(err, &le) {
		// Not the upstream's failure: not in its metrics, not retried, not
		// counted by its breaker.
		f.log.Error("local failure while fetching from an upstream", "upstream", f.name, "path", path, "err", err)
		return nil, err
	}
	f.metrics.UpstreamFetch(f.name, fetchResult(err), time.Since(start))
	return resp, err
}

// fetchRetrying is one request: fetchComplete retried by the retry policy
// within RequestTimeout.
func (f *Fetcher) fetchRetrying(ctx context.Context, path string) (*upstream.Response, error) {
	start := time.Now()
	rctx, cancel := context.WithTimeout(ctx, f.opts.RequestTimeout)
	defer cancel() // bodies are read completely: nothing reads with rctx afterwards
	// The policy runs attempts synchronously, in this goroutine.
	var (
		attempts int
		last     error
		got      *upstream.Response
	)
	_, err := failsafe.With(f.retry).WithContext(rctx).Get(func() (*upstream.Response, error) {
		attempts++
		got, last = f.fetchComplete(rctx, path)
		return got, last
	})
	switch {
	case got != nil:
		// A complete answer (failsafe drops it when the deadline passes as
		// it arrives; it is whole, so keep it).
		return got, nil
	case last != nil && !transient(last) && !errors.Is(last, context.Canceled):
		// A definitive answer (not found, denied, a local failure), even if
		// the deadline passed as it came.
		return nil, last
	case errors.Is(rctx.Err(), context.DeadlineExceeded):
		return nil, &upstream.Error{Upstream: f.name, Path: path, Timeout: true,
			Msg: fmt.Sprintf("timed out after %d attempt(s) in %v", attempts, time.Since(start).Round(time.Millisecond)),
			Err: errors.Join(context.DeadlineExceeded, last)}
	}
	return nil, err
}

// record tells the breaker how a request that held a permit ended: a
// transient failure is a failure, any answer a success. A local failure
// (the upstream answered; writing it here failed) or a request whose caller
// went away says nothing about the upstream and is not counted while the
// breaker is closed. A half-open breaker's trial permit comes back only
// with a verdict, so there a local failure counts as the answer it was and
// an abandoned trial as a failure (the breaker reopens; a probe or the next
// trial decides).
func (f *Fetcher) record(ctx context.Context, err error) {
	var le *upstream.LocalError
	switch {
	case err == nil:
		f.cb.RecordSuccess()
	case errors.As(err, &le):
		if !f.cb.IsClosed() {
			f.cb.RecordSuccess()
		}
	case errors.Is(ctx.Err(), context.Canceled):
		if !f.cb.IsClosed() {
			f.cb.RecordFailure()
		}
	case transient(err):
		f.cb.RecordFailure()
	default:
		f.cb.RecordSuccess()
	}
}

// fetchComplete fetches path and reads the whole body, so that a failure
// in the middle of it (reset, timeout) is an attempt's failure that is
// retried and lets a Chain move on. Zips are read into a temporary file,
// everything else (bounded by the inner fetcher's size limit) into memory.
// Failures to create, write or rewind the temporary file are
// *upstream.LocalError, keeping their cause.
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
	local := func(op string, err error) error {
		return &upstream.LocalError{Upstream: f.name, Path: path, Op: op, Err: err}
	}
	tmp, err := os.CreateTemp(f.opts.TempDir, "upstream-*.zip")
	if err != nil {
		return nil, local("creating the spool file", err)
	}
	w := &writeErr{w: f.spoolWriter(tmp)}
	n, err := io.Copy(w, resp.Body)
	switch {
	case w.err != nil || errors.Is(err, io.ErrShortWrite):
		err = local("spooling the body", err)
	case err == nil && resp.Size >= 0 && n != resp.Size:
		err = &upstream.Error{Upstream: f.name, Path: path, Msg: fmt.Sprintf("short body: %d of %d bytes", n, resp.Size), Err: io.ErrUnexpectedEOF}
	case err == nil:
		if _, serr := tmp.Seek(0, io.SeekStart); serr != nil {
			err = local("rewinding the spool file", serr)
		}
	}
	if err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return nil, err
	}
	return &upstream.Response{Body: spooled{tmp}, Size: n, Source: resp.Source, File: tmp}, nil
}

// writeErr remembers the error of its writer, so that a copy's local
// write failures are told from the upstream's read failures.
type writeErr struct {
	w   io.Writer
	err error
}

func (w *writeErr) Write(p []byte) (int, error) {
	n, err := w.w.Write(p)
	if err != nil {
		w.err = err
	}
	return n, err
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

// Probe fetches path once, bypassing retries and the request timeout (ctx
// bounds it), and records the outcome in the breaker: a transient failure
// counts as a failed request, and ProbeFailures of them in a row (or one
// while half-open) open it; anything else (including not found) proves
// the upstream answers and closes it. A probe cancelled through ctx
// records nothing (one that ran out of time is a failure).
func (f *Fetcher) Probe(ctx context.Context, path string) error {
	resp, err := f.inner.Fetch(ctx, path)
	if resp != nil {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
	}
	if err != nil && errors.Is(ctx.Err(), context.Canceled) {
		return err
	}
	failed := transient(err)
	f.mu.Lock()
	if failed {
		f.probeFails++
	} else {
		f.probeFails = 0
	}
	fails := f.probeFails
	f.mu.Unlock()
	if !failed {
		if !f.cb.IsClosed() {
			f.cb.Close()
		}
		return nil
	}
	switch {
	case f.cb.IsOpen():
	case fails >= f.opts.ProbeFailures || f.cb.IsHalfOpen():
		f.cb.Open()
	default:
		f.cb.RecordFailure()
	}
	return err
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
