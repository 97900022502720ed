package app_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/modproxy/modproxy/internal/app"
	"github.com/modproxy/modproxy/internal/config"
	"github.com/modproxy/modproxy/internal/upstream/upstreamtest"
)

func testMods() []upstreamtest.Module {
	return []upstreamtest.Module{
		{Path: "example.com/a", Version: "v1.0.0", Files: map[string][]byte{"go.mod": []byte("module example.com/a\n"), "a.go": []byte("package a\n")}},
		{Path: "example.com/a", Version: "v1.1.0", Files: map[string][]byte{"go.mod": []byte("module example.com/a\n"), "a.go": []byte("package a // 1.1\n")}},
		{Path: "example.com/leaky", Version: "v1.2.0", Files: map[string][]byte{"l.go": []byte("package leaky\n")}},
		{Path: "example.com/leaky", Version: "v1.3.0", Files: map[string][]byte{"l.go": []byte("package leaky // fixed\n")}},
	}
}

type harness struct {
	srv  *app.Server
	http *httptest.Server
}

// start wires a real server from cfg (after defaults for tests) and serves
// it in process.
func start(t *testing.T, mutate func(*config.Config)) *harness {
	t.Helper()
	cfg := config.Default()
	cfg.CacheDir = t.TempDir()
	cfg.SumDB = []string{"off"}
	cfg.Verify.Private = []string{}
	cfg.Resilience.BackoffBase = config.Duration(time.Millisecond)
	cfg.Resilience.BackoffMax = config.Duration(5 * time.Millisecond)
	cfg.Resilience.HeaderTimeout = config.Duration(500 * time.Millisecond)
	cfg.Resilience.ProbeInterval = 0
	cfg.Fetch.Timeout = config.Duration(2 * time.Second)
	mutate(&cfg)
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	srv, err := app.New(cfg, slog.New(slog.DiscardHandler), app.Info{Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	h := httptest.NewServer(srv.Handler())
	t.Cleanup(h.Close)
	return &harness{srv: srv, http: h}
}

func (h *harness) get(t *testing.T, path string, hdr ...string) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest("GET", h.http.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: reading the body: %v", path, err)
	}
	return resp.StatusCode, string(b), resp.Header
}

// TestFailover covers every way a primary can fail, with "|" (fall over on
// any error) and "," (only on not found, as the go command does).
func TestFailover(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fault *upstreamtest.Fault // nil: primary stopped (connection refused)
	}{
		{"connection refused", nil},
		{"500", &upstreamtest.Fault{Kind: upstreamtest.ServerError}},
		{"hang past the deadline", &upstreamtest.Fault{Kind: upstreamtest.Hang}},
		{"reset mid-zip", &upstreamtest.Fault{Kind: upstreamtest.Reset}},
		{"slow drip", &upstreamtest.Fault{Kind: upstreamtest.SlowBody, Chunk: 16, Delay: 200 * time.Millisecond}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			primary := upstreamtest.New(t, testMods(), upstreamtest.WithoutSumDB())
			secondary := upstreamtest.New(t, testMods(), upstreamtest.WithoutSumDB())
			if tc.fault == nil {
				primary.Stop()
			} else {
				primary.SetFault("ALL", *tc.fault)
			}
			const zip = "/example.com/a/@v/v1.0.0.zip"
			pipe := start(t, func(c *config.Config) {
				c.Upstream = primary.URL() + "|" + secondary.URL()
				c.Resilience.MaxAttempts = 2
			})
			status, body, _ := pipe.get(t, zip)
			if status != 200 || body != string(secondary.ZipBytes("example.com/a", "v1.0.0")) {
				t.Fatalf("'|' chain: %d %q", status, body)
			}
			if secondary.Requests(zip[1:]) != 1 {
				t.Errorf("secondary saw %d requests", secondary.Requests(zip[1:]))
			}
			comma := start(t, func(c *config.Config) {
				c.Upstream = primary.URL() + "," + secondary.URL()
				c.Resilience.MaxAttempts = 2
				c.Resilience.BreakerFailures = 10
			})
			secondary.ResetCounts()
			if status, body, _ := comma.get(t, zip); status < 500 {
				t.Fatalf("',' chain moved past a failing primary: %d %q", status, body)
			}
			if secondary.Total() != 0 {
				t.Errorf("',' chain reached the secondary %d times", secondary.Total())
			}
		})
	}
}

// TestBreaker: after the configured failures the primary's breaker opens,
// requests skip it without waiting for its timeout, /readyz shows it, and
// a health probe closes it once the upstream recovers.
func TestBreaker(t *testing.T) {
	primary := upstreamtest.New(t, testMods(), upstreamtest.WithoutSumDB())
	secondary := upstreamtest.New(t, testMods(), upstreamtest.WithoutSumDB())
	primary.SetFault("ALL", upstreamtest.Fault{Kind: upstreamtest.Hang})
	h := start(t, func(c *config.Config) {
		c.Upstream = primary.URL() + "," + secondary.URL()
		c.Resilience.MaxAttempts = 1
		c.Resilience.BreakerFailures = 3
		c.Resilience.BreakerOpen = config.Duration(time.Hour)
		c.Resilience.ProbeInterval = config.Duration(100 * time.Millisecond)
		c.Resilience.ProbePath = "example.com/a/@v/list"
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	h.srv.RunBackground(ctx)
	// Three timeouts (the probe may count some of them) open the breaker.
	primaryIs := func(state string) bool {
		return strings.Contains(readyz(t, h), "upstream "+primary.URL()+": breaker "+state+"\n")
	}
	for i := 0; i < 3 && !primaryIs("open"); i++ {
		h.get(t, "/example.com/a/@v/v1.0.0.info")
	}
	waitFor(t, func() bool { return primaryIs("open") })
	start := time.Now()
	status, _, _ := h.get(t, "/example.com/a/@v/v1.1.0.info")
	if status != 200 {
		t.Fatalf("with the primary open: %d", status)
	}
	if d := time.Since(start); d >= 500*time.Millisecond {
		t.Errorf("a request with an open primary waited %v, as long as the primary's timeout", d)
	}
	primary.ClearFaults()
	waitFor(t, func() bool { return primaryIs("closed") })
	primary.ResetCounts()
	secondary.ResetCounts()
	if status, _, _ := h.get(t, "/example.com/a/@v/v1.1.0.mod"); status != 200 || primary.Requests("example.com/a/@v/v1.1.0.mod") != 1 {
		t.Errorf("after recovery the primary serves again: %d, primary log %q, secondary log %q\n%s", status, primary.Log(), secondary.Log(), readyz(t, h))
	}
}

func readyz(t *testing.T, h *harness) string {
	_, body, _ := h.get(t, "/readyz")
	return body
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 15s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestStaleWhileAllUpstreamsDown and cache-only modes.
func TestStaleAndCacheOnly(t *testing.T) {
	up := upstreamtest.New(t, testMods(), upstreamtest.WithoutSumDB())
	h := start(t, func(c *config.Config) {
		c.Upstream = up.URL()
		c.Cache.TTL = config.Duration(time.Nanosecond)
		c.Cache.StaleWhileRevalidate = config.Duration(time.Nanosecond)
		c.Resilience.BreakerFailures = 100 // not under test here
	})
	for _, p := range []string{"/example.com/a/@v/list", "/example.com/a/@latest", "/example.com/a/@v/v1.0.0.mod"} {
		if status, _, _ := h.get(t, p); status != 200 {
			t.Fatalf("GET %s: %d", p, status)
		}
	}
	up.Stop()
	for _, p := range []string{"/example.com/a/@v/list", "/example.com/a/@latest"} {
		status, body, hdr := h.get(t, p)
		if status != 200 || hdr.Get("Warning") == "" || hdr.Get("Age") == "" {
			t.Errorf("stale %s with upstream down: %d %q %v", p, status, body, hdr)
		}
	}
	up.Start()
	up.ResetCounts()
	// Per request: the /cached-only/ prefix and Cache-Control: only-if-cached.
	if status, body, _ := h.get(t, "/cached-only/example.com/a/@v/v1.1.0.mod"); status != 404 || !strings.Contains(body, "cache-only") {
		t.Errorf("cached-only miss: %d %q", status, body)
	}
	if status, _, _ := h.get(t, "/cached-only/example.com/a/@v/v1.0.0.mod"); status != 200 {
		t.Errorf("cached-only hit: %d", status)
	}
	if status, _, _ := h.get(t, "/example.com/a/@v/v1.1.0.zip", "Cache-Control", "only-if-cached"); status != 404 {
		t.Errorf("only-if-cached miss: %d", status)
	}
	if status, _, _ := h.get(t, "/cached-only/example.com/a/@v/list"); status != 200 {
		t.Errorf("cached-only stale list: %d", status)
	}
	// Global switch.
	h.srv.SetOffline(true)
	if status, _, _ := h.get(t, "/example.com/a/@v/v1.1.0.info"); status != 404 {
		t.Errorf("offline miss: %d", status)
	}
	if n := up.Total(); n != 0 {
		t.Errorf("cache-only requests reached the upstream %d times: %q", n, up.Log())
	}
	if body := readyz(t, h); !strings.Contains(body, "cache-only: true") {
		t.Errorf("readyz: %q", body)
	}
	h.srv.SetOffline(false)
	if status, _, _ := h.get(t, "/example.com/a/@v/v1.1.0.info"); status != 200 || up.Requests("example.com/a/@v/v1.1.0.info") != 1 {
		t.Errorf("back online: %d, %d upstream requests for the .info", status, up.Requests("example.com/a/@v/v1.1.0.info"))
	}
}

// TestDenyAndAllow: deny rules answer with the configured status and the
// reason; lists omit denied versions; an allow list locks the site down.
func TestDenyAndAllow(t *testing.T) {
	up := upstreamtest.New(t, testMods(), upstreamtest.WithoutSumDB())
	h := start(t, func(c *config.Config) {
		c.Upstream = up.URL()
		c.Deny = []config.DenyRule{
			{Match: "example.com/leaky", Versions: "<v1.3.0", Reason: "v1.2.x leaked a credential; use v1.3.0"},
			{Match: "example.com/evil", Reason: "malware", Status: 410},
		}
	})
	for _, tc := range []struct {
		path, want string
		status     int
	}{
		{"/example.com/leaky/@v/v1.2.0.zip", "leaked a credential", 403},
		{"/example.com/leaky/@v/v1.2.0.info", "leaked a credential", 403},
		{"/example.com/evil/@v/list", "malware", 410},
		{"/example.com/leaky/@v/list", "v1.3.0\n", 200},
		{"/example.com/leaky/@v/v1.3.0.mod", "module example.com/leaky\n", 200},
	} {
		status, body, _ := h.get(t, tc.path)
		if status != tc.status || !strings.Contains(body, tc.want) {
			t.Errorf("GET %s = %d %q, want %d with %q", tc.path, status, body, tc.status, tc.want)
		}
	}
	if _, body, _ := h.get(t, "/example.com/leaky/@v/list"); strings.Contains(body, "v1.2.0") {
		t.Errorf("list shows a denied version: %q", body)
	}
	if up.Requests("example.com/leaky/@v/v1.2.0.zip") != 0 {
		t.Error("a denied zip was fetched upstream")
	}
	locked := start(t, func(c *config.Config) {
		c.Upstream = up.URL()
		c.Allow = []string{"example.com/a"}
	})
	if status, body, _ := locked.get(t, "/example.com/leaky/@v/list"); status != 403 || !strings.Contains(body, "allow list") {
		t.Errorf("not allowed: %d %q", status, body)
	}
	if status, _, _ := locked.get(t, "/example.com/a/@v/list"); status != 200 {
		t.Errorf("allowed: %d", status)
	}
}

// TestNamespaces: /dev/ and /prod/ have their own upstreams, lists and
// deny rules, and share the immutable content of the store.
func TestNamespaces(t *testing.T) {
	devUp := upstreamtest.New(t, testMods(), upstreamtest.WithoutSumDB())
	prodMods := testMods()[:1] // prod's upstream only has example.com/a v1.0.0
	prodUp := upstreamtest.New(t, prodMods, upstreamtest.WithoutSumDB())
	h := start(t, func(c *config.Config) {
		c.Upstream = devUp.URL()
		c.Namespaces = []config.Namespace{
			{Name: "dev", Upstream: devUp.URL()},
			{Name: "prod", Upstream: prodUp.URL(), Deny: []config.DenyRule{{Match: "example.com/leaky", Reason: "not approved for prod"}}},
		}
	})
	if _, body, _ := h.get(t, "/dev/example.com/a/@v/list"); body != "v1.0.0\nv1.1.0\n" {
		t.Errorf("dev list %q", body)
	}
	if _, body, _ := h.get(t, "/prod/example.com/a/@v/list"); body != "v1.0.0\n" {
		t.Errorf("prod list %q (each namespace keeps its own list)", body)
	}
	if status, _, _ := h.get(t, "/dev/example.com/leaky/@v/v1.3.0.mod"); status != 200 {
		t.Errorf("dev leaky: %d", status)
	}
	if status, body, _ := h.get(t, "/prod/example.com/leaky/@v/v1.3.0.mod"); status != 403 || !strings.Contains(body, "not approved") {
		t.Errorf("prod leaky: %d %q", status, body)
	}
	// Immutable content is shared: fetched once through dev, then a hit in prod and at the root.
	for _, p := range []string{"/dev/example.com/a/@v/v1.0.0.zip", "/prod/example.com/a/@v/v1.0.0.zip", "/example.com/a/@v/v1.0.0.zip"} {
		if status, _, _ := h.get(t, p); status != 200 {
			t.Fatalf("GET %s: %d", p, status)
		}
	}
	if n := devUp.Requests("example.com/a/@v/v1.0.0.zip") + prodUp.Requests("example.com/a/@v/v1.0.0.zip"); n != 1 {
		t.Errorf("shared zip fetched %d times", n)
	}
	if status, _, _ := h.get(t, "/dev/sumdb/x.example/supported"); status != 404 {
		t.Errorf("namespaced sumdb endpoint: %d", status)
	}
}
