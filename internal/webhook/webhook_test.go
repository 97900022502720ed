package webhook

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/modproxy/modproxy/internal/event"
	"github.com/modproxy/modproxy/internal/metrics"
)

// received is one request a test receiver got.
type received struct {
	header http.Header
	body   []byte
}

// receiver records requests; answer decides each one's status (nil: 200).
type receiver struct {
	mu     sync.Mutex
	got    []received
	answer func(n int, r *http.Request) int
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	rc.mu.Lock()
	rc.got = append(rc.got, received{header: r.Header.Clone(), body: body})
	n := len(rc.got)
	rc.mu.Unlock()
	code := http.StatusOK
	if rc.answer != nil {
		code = rc.answer(n, r)
	}
	w.WriteHeader(code)
}

func (rc *receiver) requests() []received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]received(nil), rc.got...)
}

// handlerTransport calls a handler in memory (no sockets, so that tests
// can run in a synctest bubble). A request whose context ends while the
// handler runs fails with the context's error, as over a network.
type handlerTransport struct {
	h   http.Handler
	err func(n int) error // transport failure of attempt n (1-based); nil: none
	mu  sync.Mutex
	n   int
}

func (t *handlerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	t.mu.Lock()
	t.n++
	n := t.n
	t.mu.Unlock()
	if t.err != nil {
		if err := t.err(n); err != nil {
			return nil, err
		}
	}
	rec := httptest.NewRecorder()
	t.h.ServeHTTP(rec, r)
	if err := r.Context().Err(); err != nil {
		return nil, err
	}
	return rec.Result(), nil
}

// counter reads a sample of m's webhook metric name, with the given
// webhook label and result label (when not empty), from /metrics.
func counter(t *testing.T, m *metrics.Metrics, name, webhook, result string) float64 {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	series := name + `{webhook="` + webhook + `"}`
	if result != "" {
		series = name + `{result="` + result + `",webhook="` + webhook + `"}`
	}
	for line := range strings.Lines(rec.Body.String()) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatal(err)
			}
			return f
		}
	}
	t.Fatalf("no sample %s", series)
	return 0
}

// TestSignedDelivery: a loopback receiver gets each event it subscribed
// to as one POST whose signature it verifies with the shared secret; a
// webhook without a secret gets no signature, one subscribed to other
// types gets nothing.
func TestSignedDelivery(t *testing.T) {
	const secret = "s3cret"
	var signed, plain, other receiver
	srvSigned := httptest.NewServer(&signed)
	defer srvSigned.Close()
	srvPlain := httptest.NewServer(&plain)
	defer srvPlain.Close()
	srvOther := httptest.NewServer(&other)
	defer srvOther.Close()
	m := metrics.New()
	d, err := New(Options{Hooks: []Hook{
		{Name: "signed", URL: srvSigned.URL + "/hook", Secret: secret, Events: []event.Type{event.Purged}},
		{Name: "plain", URL: srvPlain.URL},
		{Name: "other", URL: srvOther.URL, Events: []event.Type{event.BreakerOpen}},
	}, DrainTimeout: time.Minute, Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	d.Emit(event.Event{Type: event.Purged, Time: at, Module: "example.com/m", Version: "v1.0.0", Reason: "leak"})
	d.Close() // delivers what is queued

	got := signed.requests()
	if len(got) != 1 {
		t.Fatalf("signed receiver got %d requests, want 1", len(got))
	}
	r := got[0]
	if !Verify(secret, r.body, r.header.Get(SignatureHeader)) {
		t.Errorf("signature %q does not verify", r.header.Get(SignatureHeader))
	}
	if Verify("other secret", r.body, r.header.Get(SignatureHeader)) {
		t.Error("signature verifies with the wrong secret")
	}
	if h := r.header.Get(EventHeader); h != "purge" {
		t.Errorf("%s = %q, want purge", EventHeader, h)
	}
	var p Payload
	if err := json.Unmarshal(r.body, &p); err != nil {
		t.Fatal(err)
	}
	want := event.Event{Type: event.Purged, Time: at, Module: "example.com/m", Version: "v1.0.0", Reason: "leak"}
	if p.Event != want || p.ID == "" || p.ID != r.header.Get(DeliveryHeader) {
		t.Errorf("payload %+v (delivery header %q), want event %+v with the delivery id", p, r.header.Get(DeliveryHeader), want)
	}
	if pg := plain.requests(); len(pg) != 1 || pg[0].header.Get(SignatureHeader) != "" {
		t.Errorf("receiver without secret got %d requests (signature %q), want 1 unsigned", len(pg), pg[0].header.Get(SignatureHeader))
	}
	if n := len(other.requests()); n != 0 {
		t.Errorf("receiver subscribed to breaker_open got %d purge events", n)
	}
	if v := counter(t, m, "modproxy_webhook_deliveries_total", "signed", "ok"); v != 1 {
		t.Errorf("deliveries ok = %v, want 1", v)
	}
	d.Emit(event.Event{Type: event.Purged}) // after Close: nothing, no panic
}

// TestRetries: a receiver failing twice (a 503, then a transport error)
// gets the delivery on the third attempt, with the same delivery id; a 4xx
// is final and not retried.
func TestRetries(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var rc receiver
		rc.answer = func(n int, r *http.Request) int {
			if r.URL.Path == "/bad" {
				return http.StatusBadRequest
			}
			if n == 1 {
				return http.StatusServiceUnavailable
			}
			return http.StatusOK
		}
		tr := &handlerTransport{h: &rc, err: func(n int) error {
			if n == 2 {
				return errors.New("connection reset")
			}
			return nil
		}}
		m := metrics.New()
		d, err := New(Options{Hooks: []Hook{{Name: "w", URL: "http://receiver.test/ok", Secret: "k"}},
			Client: &http.Client{Transport: tr}, Metrics: m})
		if err != nil {
			t.Fatal(err)
		}
		d.Emit(event.Event{Type: event.BreakerOpen, Upstream: "http://up.test"})
		d.Close()
		got := rc.requests()
		if len(got) != 2 || tr.n != 3 { // attempt 2 failed in transport
			t.Fatalf("receiver got %d requests in %d attempts, want 2 in 3", len(got), tr.n)
		}
		if got[0].header.Get(DeliveryHeader) != got[1].header.Get(DeliveryHeader) {
			t.Error("retries carry different delivery ids")
		}
		if v := counter(t, m, "modproxy_webhook_deliveries_total", "w", "ok"); v != 1 {
			t.Errorf("deliveries ok = %v, want 1", v)
		}
		if v := counter(t, m, "modproxy_webhook_retries_total", "w", ""); v != 2 {
			t.Errorf("retries = %v, want 2", v)
		}

		var bad receiver
		bad.answer = rc.answer
		d, err = New(Options{Hooks: []Hook{{Name: "bad", URL: "http://receiver.test/bad"}},
			Client: &http.Client{Transport: &handlerTransport{h: &bad}}, Metrics: m})
		if err != nil {
			t.Fatal(err)
		}
		d.Emit(event.Event{Type: event.Purged})
		d.Close()
		if n := len(bad.requests()); n != 1 {
			t.Errorf("a 400 was tried %d times, want 1", n)
		}
		if v := counter(t, m, "modproxy_webhook_deliveries_total", "bad", "failed"); v != 1 {
			t.Errorf("deliveries failed = %v, want 1", v)
		}
	})
}

// TestBoundedQueue: while the receiver hangs, Emit keeps returning; what
// does not fit the queue is dropped and counted. Nothing is timed: the
// Emit calls simply return while the receiver is blocked.
func TestBoundedQueue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		var rc receiver
		rc.answer = func(n int, r *http.Request) int {
			select {
			case <-release:
			case <-r.Context().Done():
			}
			return http.StatusOK
		}
		m := metrics.New()
		d, err := New(Options{Hooks: []Hook{{Name: "w", URL: "http://receiver.test/"}}, QueueSize: 2,
			Client: &http.Client{Transport: &handlerTransport{h: &rc}}, Metrics: m})
		if err != nil {
			t.Fatal(err)
		}
		d.Emit(event.Event{Type: event.Purged, Version: "v1"})
		synctest.Wait() // the first delivery is in progress, blocked in the receiver
		if n := len(rc.requests()); n != 1 {
			t.Fatalf("receiver has %d requests in progress, want 1", n)
		}
		for range 9 {
			d.Emit(event.Event{Type: event.Purged})
		}
		if v := counter(t, m, "modproxy_webhook_dropped_total", "w", ""); v != 7 {
			t.Errorf("dropped = %v, want 7 (2 queued, 1 in progress)", v)
		}
		close(release)
		d.Close()
		if v := counter(t, m, "modproxy_webhook_deliveries_total", "w", "ok"); v != 3 {
			t.Errorf("delivered %v, want 3", v)
		}
	})
}

// TestCloseJoins: Close with a receiver that never answers waits for the
// drain timeout, then cancels the delivery in progress, counts it and the
// queued events as dropped, and returns only once the goroutine is gone.
func TestCloseJoins(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var rc receiver
		cancelled := make(chan struct{})
		rc.answer = func(n int, r *http.Request) int {
			<-r.Context().Done()
			close(cancelled)
			return http.StatusOK
		}
		m := metrics.New()
		d, err := New(Options{Hooks: []Hook{{Name: "w", URL: "http://receiver.test/"}}, DrainTimeout: time.Second,
			Client: &http.Client{Transport: &handlerTransport{h: &rc}}, Metrics: m})
		if err != nil {
			t.Fatal(err)
		}
		for range 3 {
			d.Emit(event.Event{Type: event.Mismatch})
		}
		d.Close()
		select {
		case <-cancelled:
		default:
			t.Fatal("Close returned before the delivery in progress was cancelled")
		}
		select {
		case <-d.hooks[0].done:
		default:
			t.Fatal("Close returned before the webhook's goroutine")
		}
		if v := counter(t, m, "modproxy_webhook_dropped_total", "w", ""); v != 3 {
			t.Errorf("dropped = %v, want 3", v)
		}
		d.Close() // idempotent
	})
}

func TestNewErrors(t *testing.T) {
	for _, h := range []Hook{
		{URL: "ftp://host/x"},
		{URL: "/relative"},
		{URL: "http://host/", Events: []event.Type{"nope"}},
	} {
		if d, err := New(Options{Hooks: []Hook{h}}); err == nil {
			d.Close()
			t.Errorf("New(%+v) succeeded", h)
		}
	}
}

// TestNameHidesCredentials: the default name (logs, metrics label) has no
// credentials or query.
func TestNameHidesCredentials(t *testing.T) {
	d, err := New(Options{Hooks: []Hook{{URL: "https://user:pw@hooks.example/x?token=t"}}})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if n := d.hooks[0].Name; n != "https://hooks.example/x" {
		t.Errorf("name %q", n)
	}
}
