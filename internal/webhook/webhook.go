// Package webhook delivers events (package event) to outbound webhooks:
// one JSON POST per event and webhook, signed with HMAC-SHA256 of the body
// when the webhook has a secret, retried with backoff on transport errors,
// 429 and 5xx, a bounded number of times.
//
// Emit never blocks: every webhook has a bounded queue and its own
// goroutine that delivers from it in order; an event that finds the queue
// full is dropped and counted (modproxy_webhook_dropped_total), so a
// receiver that is slow or down never slows the requests that emit. Close
// stops taking events, lets the goroutines deliver what is queued for at
// most Options.DrainTimeout, then cancels what is still in progress and
// waits for them.
//
// The request body is Payload: the event's fields and a delivery id
// (also in the X-Modproxy-Delivery header), which stays the same across
// the retries of one delivery so that receivers can drop duplicates. The
// X-Modproxy-Event header holds the event type and X-Modproxy-Signature
// "sha256=" and the hex HMAC-SHA256 of the body with the secret. Secrets
// are never logged.
package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/failsafe-go/failsafe-go"
	"github.com/failsafe-go/failsafe-go/retrypolicy"

	"github.com/modproxy/modproxy/internal/background"
	"github.com/modproxy/modproxy/internal/event"
	"github.com/modproxy/modproxy/internal/metrics"
)

// Header names.
const (
	SignatureHeader = "X-Modproxy-Signature"
	EventHeader     = "X-Modproxy-Event"
	DeliveryHeader  = "X-Modproxy-Delivery"
)

// Hook is one webhook.
type Hook struct {
	// Name identifies the webhook in logs and metrics; default: the URL
	// without credentials, query and fragment.
	Name string
	URL  string // http or https
	// Events are the event types sent to it; empty: all.
	Events []event.Type
	// Secret signs the body; empty: no signature header.
	Secret string
}

// Options configures a Dispatcher. Zero values get the defaults noted.
type Options struct {
	Hooks []Hook
	// Client sends the requests; default one with a 10 s timeout per
	// attempt.
	Client *http.Client
	// QueueSize bounds the events waiting for each webhook; default 256.
	QueueSize int
	// MaxAttempts bounds the attempts of one delivery, the first
	// included; default 5.
	MaxAttempts int
	// BackoffBase and BackoffMax bound the exponential backoff between
	// attempts; defaults 1 s and 30 s.
	BackoffBase, BackoffMax time.Duration
	// DrainTimeout bounds how long Close lets queued events be delivered;
	// default 5 s.
	DrainTimeout time.Duration
	Logger       *slog.Logger
	Metrics      *metrics.Metrics
}

// Payload is the JSON body of a delivery.
type Payload struct {
	ID string `json:"id"` // delivery id, the same for each attempt
	event.Event
}

// Dispatcher is an event.Sink that delivers to webhooks. Safe for
// concurrent use.
type Dispatcher struct {
	opts  Options
	log   *slog.Logger
	bg    *background.Group
	hooks []*hook

	mu     sync.RWMutex // guards closed against sends on closed queues
	closed bool
}

var _ event.Sink = (*Dispatcher)(nil)

type hook struct {
	Hook
	events map[event.Type]bool // nil: all
	queue  chan event.Event
	done   chan struct{} // closed when the goroutine returned
	retry  retrypolicy.RetryPolicy[*http.Response]
}

// HookError is a Hook that New refuses: Field of Options.Hooks[Index].
type HookError struct {
	Index int
	Field string // "url", "events"
	Err   error
}

func (e *HookError) Error() string {
	return fmt.Sprintf("webhook[%d].%s: %v", e.Index, e.Field, e.Err)
}

func (e *HookError) Unwrap() error { return e.Err }

// New validates the hooks and starts one goroutine per webhook. A URL
// that is not absolute http(s), or an unknown event type, is a
// *HookError.
func New(opts Options) (*Dispatcher, error) {
	if opts.Client == nil {
		opts.Client = &http.Client{Timeout: 10 * time.Second}
	}
	if opts.QueueSize <= 0 {
		opts.QueueSize = 256
	}
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = 5
	}
	if opts.BackoffBase <= 0 {
		opts.BackoffBase = time.Second
	}
	if opts.BackoffMax < opts.BackoffBase {
		opts.BackoffMax = max(30*time.Second, opts.BackoffBase)
	}
	if opts.DrainTimeout <= 0 {
		opts.DrainTimeout = 5 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	d := &Dispatcher{opts: opts, log: opts.Logger, bg: background.New(opts.Logger)}
	for i, h := range opts.Hooks {
		name, err := displayName(h.URL)
		if err != nil {
			return nil, &HookError{Index: i, Field: "url", Err: err}
		}
		if h.Name == "" {
			h.Name = name
		}
		w := &hook{Hook: h, queue: make(chan event.Event, opts.QueueSize), done: make(chan struct{})}
		for _, t := range h.Events {
			if !slices.Contains(event.Types(), t) {
				return nil, &HookError{Index: i, Field: "events", Err: fmt.Errorf("unknown event type %q (known: %v)", t, event.Types())}
			}
			if w.events == nil {
				w.events = map[event.Type]bool{}
			}
			w.events[t] = true
		}
		w.retry = retrypolicy.NewBuilder[*http.Response]().
			HandleIf(func(resp *http.Response, err error) bool { return retryable(resp, err) }).
			WithMaxAttempts(opts.MaxAttempts).
			WithBackoff(opts.BackoffBase, opts.BackoffMax).
			WithJitterFactor(0.25).
			ReturnLastFailure().
			OnRetry(func(failsafe.ExecutionEvent[*http.Response]) { opts.Metrics.WebhookRetry(w.Name) }).
			Build()
		opts.Metrics.PresetWebhook(w.Name)
		d.hooks = append(d.hooks, w)
	}
	for _, w := range d.hooks {
		d.bg.Go(context.Background(), "webhook "+w.Name, func(ctx context.Context) { d.run(ctx, w) })
	}
	return d, nil
}

// displayName checks u and returns it without credentials, query and
// fragment (which may hold secrets).
func displayName(u string) (string, error) {
	p, err := url.Parse(u)
	if err != nil {
		return "", err
	}
	if (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
		return "", fmt.Errorf("%q is not an absolute http or https URL", p.Redacted())
	}
	p.User, p.RawQuery, p.Fragment, p.RawFragment = nil, "", "", ""
	return p.String(), nil
}

// RedactURL returns u without credentials, query and fragment (a
// webhook's default name), or "REDACTED" when u is not a valid webhook URL.
func RedactURL(u string) string {
	s, err := displayName(u)
	if err != nil {
		return "REDACTED"
	}
	return s
}

// Emit queues e for every webhook that wants its type, without blocking:
// a full queue drops e for that webhook and counts it. After Close it
// does nothing.
func (d *Dispatcher) Emit(e event.Event) {
	if e.Time.IsZero() {
		e.Time = time.Now().UTC()
	}
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.closed {
		return
	}
	for _, w := range d.hooks {
		if w.events != nil && !w.events[e.Type] {
			continue
		}
		select {
		case w.queue <- e:
		default:
			d.opts.Metrics.WebhookDropped(w.Name)
			d.log.Warn("webhook queue full: event dropped", "webhook", w.Name, "event", e.Type)
		}
	}
}

// Close stops taking events, waits at most DrainTimeout for the queued
// ones to be delivered, then cancels deliveries in progress (what is left
// is counted as dropped) and waits for the goroutines. Later calls return
// at once.
func (d *Dispatcher) Close() {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return
	}
	d.closed = true
	for _, w := range d.hooks {
		close(w.queue)
	}
	d.mu.Unlock()
	timer := time.NewTimer(d.opts.DrainTimeout)
	defer timer.Stop()
drain:
	for _, w := range d.hooks {
		select {
		case <-w.done:
		case <-timer.C:
			break drain
		}
	}
	d.bg.Close()
}

// run delivers w's events in order until its queue is closed and empty,
// or ctx is done (then the rest counts as dropped).
func (d *Dispatcher) run(ctx context.Context, w *hook) {
	defer close(w.done)
	for e := range w.queue {
		if ctx.Err() != nil {
			d.opts.Metrics.WebhookDropped(w.Name)
			continue
		}
		d.deliver(ctx, w, e)
	}
}

// deliver sends e to w, retrying, and counts the outcome.
func (d *Dispatcher) deliver(ctx context.Context, w *hook, e event.Event) {
	id, body, err := encode(e)
	if err != nil { // an Event always encodes; keep the goroutine alive anyway
		d.log.Error("webhook: encoding event", "webhook", w.Name, "err", err)
		d.opts.Metrics.WebhookDelivery(w.Name, false)
		return
	}
	resp, err := failsafe.With(w.retry).WithContext(ctx).Get(func() (*http.Response, error) {
		return d.attempt(ctx, w, e.Type, id, body)
	})
	if err == nil && resp.StatusCode/100 != 2 {
		err = fmt.Errorf("status %s", resp.Status)
	}
	if err != nil {
		if ctx.Err() != nil {
			d.opts.Metrics.WebhookDropped(w.Name)
			return
		}
		d.log.Warn("webhook delivery failed", "webhook", w.Name, "event", e.Type, "delivery", id, "err", err)
		d.opts.Metrics.WebhookDelivery(w.Name, false)
		return
	}
	d.opts.Metrics.WebhookDelivery(w.Name, true)
}

// attempt is one POST. The response body is read (bounded) and closed:
// the returned response is for its status only.
func (d *Dispatcher) attempt(ctx context.Context, w *hook, typ event.Type, id string, body []byte) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "modproxy-webhook")
	req.Header.Set(EventHeader, string(typ))
	req.Header.Set(DeliveryHeader, id)
	if w.Secret != "" {
		req.Header.Set(SignatureHeader, Sign(w.Secret, body))
	}
	resp, err := d.opts.Client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) { // its text holds the URL, which may hold credentials
			ue.URL = w.Name
		}
		return nil, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	return resp, nil
}

// retryable: transport errors, 429 and 5xx.
func retryable(resp *http.Response, err error) bool {
	if err != nil {
		return !errors.Is(err, context.Canceled)
	}
	return resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500
}

func encode(e event.Event) (id string, body []byte, err error) {
	var b [16]byte
	_, _ = rand.Read(b[:])
	id = hex.EncodeToString(b[:])
	body, err = json.Marshal(Payload{ID: id, Event: e})
	return id, body, err
}

// Sign returns the X-Modproxy-Signature value of body: "sha256=" and the
// hex HMAC-SHA256 of body keyed with secret.
func Sign(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Verify reports whether signature is body's X-Modproxy-Signature for
// secret, compared in constant time (for receivers written in Go).
func Verify(secret string, body []byte, signature string) bool {
	return hmac.Equal([]byte(Sign(secret, body)), []byte(signature))
}
