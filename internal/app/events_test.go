package app_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/modproxy/modproxy/internal/admin"
	"github.com/modproxy/modproxy/internal/config"
	"github.com/modproxy/modproxy/internal/upstream/upstreamtest"
	"github.com/modproxy/modproxy/internal/webhook"
)

// hookReceiver is a loopback webhook receiver that keeps the payloads
// whose signature verifies with secret, and counts the others.
type hookReceiver struct {
	secret string
	mu     sync.Mutex
	got    []webhook.Payload
	bad    int
}

func (rc *hookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	var p webhook.Payload
	if err != nil || !webhook.Verify(rc.secret, body, r.Header.Get(webhook.SignatureHeader)) || json.Unmarshal(body, &p) != nil ||
		r.Header.Get(webhook.EventHeader) != string(p.Type) {
		rc.bad++
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	rc.got = append(rc.got, p)
}

// TestWebhookEvents: a running server sends a loopback receiver a signed
// purge event and one breaker_open event when an upstream's breaker
// opens; Close delivers what is queued.
func TestWebhookEvents(t *testing.T) {
	rc := &hookReceiver{secret: "hook-secret"}
	recv := httptest.NewServer(rc)
	defer recv.Close()
	primary := upstreamtest.New(t, testMods(), upstreamtest.WithoutSumDB())
	secondary := upstreamtest.New(t, testMods(), upstreamtest.WithoutSumDB())
	primary.SetFault("ALL", upstreamtest.Fault{Kind: upstreamtest.ServerError})
	h := start(t, func(c *config.Config) {
		c.Upstream = primary.URL() + "|" + secondary.URL()
		c.Resilience.MaxAttempts = 1
		c.Resilience.BreakerFailures = 2
		c.Resilience.BreakerOpen = config.Duration(time.Hour)
		c.Webhooks = []config.Webhook{{URL: recv.URL + "/hook", Secret: rc.secret, Events: []string{"purge", "breaker_open"}}}
	})
	for _, p := range []string{"/example.com/a/@v/v1.0.0.info", "/example.com/a/@v/v1.1.0.info", "/example.com/a/@v/v1.0.0.mod"} {
		if status, body, _ := h.get(t, p); status != 200 {
			t.Fatalf("GET %s: %d %q", p, status, body)
		}
	}
	if _, err := h.srv.Admin().Purge(context.Background(), "admin", admin.PurgeRequest{Module: "example.com/a", Versions: "v1.0.0", Reason: "test purge"}); err != nil {
		t.Fatal(err)
	}
	if err := h.srv.Close(); err != nil { // delivers the queue
		t.Fatal(err)
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.bad != 0 {
		t.Errorf("%d deliveries without a valid signature", rc.bad)
	}
	var purges, opens int
	for _, p := range rc.got {
		switch p.Type {
		case "purge":
			purges++
			if p.Module != "example.com/a" || p.Version != "v1.0.0" || p.Reason != "test purge" {
				t.Errorf("purge event %+v", p)
			}
		case "breaker_open":
			opens++
			if p.Upstream != primary.URL() {
				t.Errorf("breaker_open event for %q, want %q", p.Upstream, primary.URL())
			}
		default:
			t.Errorf("unexpected event %+v", p)
		}
	}
	if purges != 1 || opens != 1 {
		t.Errorf("received %d purge and %d breaker_open events, want 1 each: %+v", purges, opens, rc.got)
	}
}
