// Package prefetch warms a Go module proxy, or the local module cache, with
// the module versions a project needs.
//
// A Set collects module versions and the files each needs (.info, .mod,
// .zip) from go.mod, go.sum, go.work and go.work.sum files (read by package
// modrefs) and module@version lists. A Fetcher then gets them:
//
//   - ProxyFetcher requests every file from a GOPROXY-protocol server
//     ($base/$module/@v/$version.info|.mod|.zip, paths and versions
//     case-escaped with module.EscapePath and EscapeVersion), in parallel
//     up to a concurrency limit. Each body is read to its end and
//     discarded, so that a caching proxy fills its cache completely, and its
//     length is checked against Content-Length. Transient failures
//     (connection errors, timeouts, 429 and 5xx answers, truncated bodies)
//     are retried with exponential backoff and jitter, waiting at least the
//     server's Retry-After when it sends one; 404 and 410 are reported as
//     not found and never retried; other answers fail at once.
//   - ModCacheFetcher runs the go command ("go mod download -json" for
//     module versions that need their zip, "go list -m -e -json" for those
//     that need only their go.mod) in batches, and reads its JSON answer
//     per module. Versions whose files are all in the module cache already
//     are reported as cached and not passed to the go command.
//
// Both return a Report that counts the outcomes and keeps one Result per
// request. The package has no package-level state: the HTTP client, the
// clock and the go command are given in Options.
package prefetch

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/failsafe-go/failsafe-go"
	"github.com/failsafe-go/failsafe-go/retrypolicy"
	"golang.org/x/mod/module"
	"golang.org/x/sync/errgroup"

	"github.com/modproxy/modproxy/internal/artifact"
	"github.com/modproxy/modproxy/internal/upstream"
)

// Fetcher warms a target with module versions. Prefetch returns a Report
// with one Result per request; it returns an error only when it could not
// start (the Report is then nil). Cancelling ctx makes the remaining
// requests fail.
type Fetcher interface {
	Prefetch(ctx context.Context, mods []Module) (*Report, error)
}

// Options configure a Fetcher. The zero value of each field means its
// default.
type Options struct {
	// Concurrency bounds the requests in flight (proxy) or the go commands
	// run at once (module cache). Default 8.
	Concurrency int
	// Progress, if set, is called after each request with the number done
	// and the total. Calls are serialized.
	Progress func(done, total int)
	// Now is the clock used for durations and HTTP-date Retry-After
	// values. Default time.Now. (Waits between attempts are timers of the
	// retry policy.)
	Now func() time.Time

	// Proxy target.

	// Client makes the requests. Default: a client on a clone of
	// http.DefaultTransport (so HTTPS_PROXY and NO_PROXY apply) keeping
	// Concurrency idle connections; no overall timeout (see Timeout).
	Client *http.Client
	// Timeout bounds one attempt, body included. Default 5 minutes.
	Timeout time.Duration
	// Attempts is the most requests made for one file. Default 4.
	Attempts int
	// Backoff is the wait before the first retry; it doubles up to
	// MaxBackoff. Defaults 500ms and 15s.
	Backoff, MaxBackoff time.Duration
	// Jitter varies every wait by up to this fraction, in [0, 0.5]
	// (default 0.25). A Retry-After wait is never shortened by it.
	Jitter float64
	// MaxRetryAfter caps the wait a Retry-After header can ask for.
	// Default 1 minute.
	MaxRetryAfter time.Duration
	// UserAgent is sent with every request. Default "modproxy-prefetch".
	UserAgent string

	// Module-cache target.

	// GoCommand is the go command to run. Default "go" (found in PATH).
	GoCommand string
	// Env is the environment of the go command; nil means the current
	// process's. GOFLAGS is read from it (through "go env") and rewritten
	// with -mod=mod; GOWORK is set to off.
	Env []string
	// BatchSize bounds the module versions given to one go command.
	// Default 32.
	BatchSize int
}

func (o Options) withDefaults() Options {
	if o.Concurrency <= 0 {
		o.Concurrency = 8
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Minute
	}
	if o.Attempts <= 0 {
		o.Attempts = 4
	}
	if o.Backoff <= 0 {
		o.Backoff = 500 * time.Millisecond
	}
	if o.MaxBackoff < o.Backoff {
		o.MaxBackoff = max(15*time.Second, o.Backoff)
	}
	if o.Jitter == 0 {
		o.Jitter = 0.25
	}
	o.Jitter = min(max(o.Jitter, 0), 0.5)
	if o.MaxRetryAfter <= 0 {
		o.MaxRetryAfter = time.Minute
	}
	if o.UserAgent == "" {
		o.UserAgent = "modproxy-prefetch"
	}
	if o.GoCommand == "" {
		o.GoCommand = "go"
	}
	if o.BatchSize <= 0 {
		o.BatchSize = 32
	}
	return o
}

// ProxyFetcher warms a GOPROXY-protocol server. It is safe for concurrent
// use.
type ProxyFetcher struct {
	base   string // without trailing slash
	target string // base with credentials removed, for reports
	opts   Options
	client *http.Client
}

// NewProxyFetcher returns a Fetcher for the proxy at base, an http or https
// URL (a GOPROXY entry).
func NewProxyFetcher(base string, opts Options) (*ProxyFetcher, error) {
	u, err := url.Parse(base)
	if err != nil {
		return nil, fmt.Errorf("proxy URL: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("proxy URL %q: want an http or https URL", u.Redacted())
	}
	opts = opts.withDefaults()
	client := opts.Client
	if client == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = opts.Concurrency
		client = &http.Client{Transport: tr}
	}
	return &ProxyFetcher{
		base:   strings.TrimSuffix(base, "/"),
		target: strings.TrimSuffix(u.Redacted(), "/"),
		opts:   opts,
		client: client,
	}, nil
}

// job is one file to fetch.
type job struct {
	mod  Module
	kind artifact.Kind
}

// Prefetch implements Fetcher: it requests every file each module needs.
func (f *ProxyFetcher) Prefetch(ctx context.Context, mods []Module) (*Report, error) {
	start := f.opts.Now()
	var jobs []job
	for _, m := range mods {
		for _, k := range m.Need.Kinds() {
			jobs = append(jobs, job{m, k})
		}
	}
	rep := &Report{Target: f.target, Mode: "proxy", Modules: len(mods), Results: make([]Result, len(jobs))}
	var (
		mu   sync.Mutex
		done int
	)
	g := errgroup.Group{}
	g.SetLimit(f.opts.Concurrency)
	for i, j := range jobs {
		g.Go(func() error {
			rep.Results[i] = f.fetch(ctx, j.mod, j.kind)
			mu.Lock()
			done++
			if f.opts.Progress != nil {
				f.opts.Progress(done, len(jobs))
			}
			mu.Unlock()
			return nil
		})
	}
	_ = g.Wait()
	rep.Duration = Seconds(f.opts.Now().Sub(start))
	rep.finish()
	return rep, nil
}

// fetchError is a failed attempt.
type fetchError struct {
	status     int           // HTTP status, 0 if none
	retryAfter time.Duration // from a Retry-After header
	transient  bool          // retrying later may succeed
	msg        string
}

func (e *fetchError) Error() string {
	if e.status != 0 {
		s := fmt.Sprintf("%d %s", e.status, http.StatusText(e.status))
		if e.msg != "" {
			s += ": " + e.msg
		}
		return s
	}
	return e.msg
}

// fileURL is the request URL of one file, with the module path and version
// case-escaped.
func (f *ProxyFetcher) fileURL(m Module, kind artifact.Kind) (string, error) {
	ep, err := module.EscapePath(m.Path)
	if err != nil {
		return "", err
	}
	ev, err := module.EscapeVersion(m.Version)
	if err != nil {
		return "", err
	}
	return f.base + "/" + ep + "/@v/" + ev + "." + kind.String(), nil
}

// fetch gets one file with retries and returns its Result.
func (f *ProxyFetcher) fetch(ctx context.Context, m Module, kind artifact.Kind) Result {
	res := Result{Path: m.Path, Version: m.Version, Kind: kind.String()}
	u, err := f.fileURL(m, kind)
	if err != nil {
		res.Outcome, res.Error = Failed, err.Error()
		return res
	}
	var waited time.Duration
	policy := retrypolicy.NewBuilder[int64]().
		HandleIf(func(_ int64, err error) bool {
			var fe *fetchError
			return errors.As(err, &fe) && fe.transient
		}).
		WithMaxAttempts(f.opts.Attempts).
		WithBackoff(f.opts.Backoff, f.opts.MaxBackoff).
		WithJitterFactor(f.opts.Jitter).
		WithDelayFunc(func(exec failsafe.ExecutionAttempt[int64]) time.Duration {
			var fe *fetchError
			if errors.As(exec.LastError(), &fe) && fe.retryAfter > 0 {
				// Jitter is applied to this delay too: lengthen it so that
				// the shortest jittered wait is still the server's.
				d := min(fe.retryAfter, f.opts.MaxRetryAfter)
				return time.Duration(float64(d) / (1 - f.opts.Jitter))
			}
			return -1 // exponential backoff
		}).
		OnRetryScheduled(func(e failsafe.ExecutionScheduledEvent[int64]) { waited += e.Delay }).
		ReturnLastFailure().
		Build()
	n, err := failsafe.With(policy).WithContext(ctx).GetWithExecution(func(exec failsafe.Execution[int64]) (int64, error) {
		res.Attempts = exec.Attempts()
		n, status, err := f.attempt(exec.Context(), u, m, kind)
		res.Status = status
		return n, err
	})
	res.Waited = Seconds(waited)
	res.Bytes = n
	var fe *fetchError
	switch {
	case err == nil:
		res.Outcome = Fetched
	case errors.As(err, &fe) && (fe.status == http.StatusNotFound || fe.status == http.StatusGone):
		res.Outcome, res.Error = NotFound, err.Error()
	case ctx.Err() != nil:
		res.Outcome, res.Error = Failed, "canceled: "+context.Cause(ctx).Error()
	default:
		res.Outcome, res.Error = Failed, err.Error()
	}
	return res
}

// maxInfo bounds a .info body, which is decoded to check its version.
const maxInfo = 1 << 20

// attempt makes one request, reads the body to its end and checks it. It
// returns the bytes read and the HTTP status.
func (f *ProxyFetcher) attempt(parent context.Context, u string, m Module, kind artifact.Kind) (int64, int, error) {
	ctx, cancel := context.WithTimeout(parent, f.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, 0, &fetchError{msg: err.Error()}
	}
	req.Header.Set("User-Agent", f.opts.UserAgent)
	// Ask for the bytes as stored, so that Content-Length is the length
	// read (the transport does not decompress what it did not ask for).
	req.Header.Set("Accept-Encoding", "identity")
	resp, err := f.client.Do(req)
	if err != nil {
		return 0, 0, f.transportError(parent, ctx, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // let the connection be reused
		fe := &fetchError{status: resp.StatusCode, msg: upstream.Sanitize(string(body), 200)}
		if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500 {
			fe.transient = true
			fe.retryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), f.opts.Now())
		}
		return 0, resp.StatusCode, fe
	}
	var (
		n    int64
		info bytes.Buffer
	)
	if kind == artifact.Info {
		n, err = io.Copy(&info, io.LimitReader(resp.Body, maxInfo+1))
		if err == nil && n > maxInfo {
			return n, resp.StatusCode, &fetchError{msg: ".info larger than 1 MiB"}
		}
	} else {
		n, err = io.Copy(io.Discard, resp.Body)
	}
	if err != nil {
		fe := f.transportError(parent, ctx, err)
		fe.msg = fmt.Sprintf("reading body after %d bytes: %s", n, fe.msg)
		return n, resp.StatusCode, fe
	}
	if resp.ContentLength >= 0 && n != resp.ContentLength {
		return n, resp.StatusCode, &fetchError{transient: true, msg: fmt.Sprintf("body has %d bytes, Content-Length said %d", n, resp.ContentLength)}
	}
	if kind == artifact.Info {
		var v struct{ Version string }
		if err := json.Unmarshal(info.Bytes(), &v); err != nil {
			return n, resp.StatusCode, &fetchError{msg: "invalid .info: " + upstream.Sanitize(err.Error(), 200)}
		}
		if v.Version != m.Version {
			return n, resp.StatusCode, &fetchError{msg: fmt.Sprintf("proxy returned info for version %s instead of requested version", upstream.Sanitize(v.Version, 100))}
		}
	}
	return n, resp.StatusCode, nil
}

// transportError classifies a failed request or body read: transient,
// unless the caller's own context ended.
func (f *ProxyFetcher) transportError(parent, attempt context.Context, err error) *fetchError {
	if parent.Err() != nil {
		return &fetchError{msg: "canceled: " + context.Cause(parent).Error()}
	}
	if errors.Is(attempt.Err(), context.DeadlineExceeded) {
		return &fetchError{transient: true, msg: fmt.Sprintf("timed out after %s", f.opts.Timeout)}
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err // the URL is in the Result already
	}
	return &fetchError{transient: true, msg: upstream.Sanitize(err.Error(), 200)}
}

// parseRetryAfter reads a Retry-After value: seconds or an HTTP date. It
// returns 0 when there is none or it is invalid or past.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil {
		if s <= 0 {
			return 0
		}
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
