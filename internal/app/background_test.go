package app_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/modproxy/modproxy/internal/admin"
	"github.com/modproxy/modproxy/internal/config"
	"github.com/modproxy/modproxy/internal/coord/coordtest"
	"github.com/modproxy/modproxy/internal/upstream/upstreamtest"
)

// ours returns the stacks of goroutines running modproxy code, other than
// the tests' own and the test kits' (fake upstreams).
func ours() []string {
	buf := make([]byte, 4<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for g := range strings.SplitSeq(string(buf), "\n\n") {
		if strings.Contains(g, "modproxy/internal/") && !strings.Contains(g, "app_test.") && !strings.Contains(g, "upstreamtest.") {
			out = append(out, g)
		}
	}
	return out
}

// TestCloseJoinsBackground: after Close returns, nothing the server
// started in the background runs any more: scrub and GC schedules, health
// probes, store gauges, the index's batcher and, with Redis, the state
// subscription and lock renewals.
func TestCloseJoinsBackground(t *testing.T) {
	for _, withRedis := range []bool{false, true} {
		name := "alone"
		if withRedis {
			name = "with Redis"
		}
		t.Run(name, func(t *testing.T) {
			redisAddr := ""
			if withRedis {
				redisAddr = coordtest.Start(t).Addr
			}
			up := upstreamtest.New(t, testMods(), upstreamtest.WithoutSumDB())
			h := start(t, func(c *config.Config) {
				c.Upstream = up.URL()
				c.Verify.ScrubInterval = config.Duration(5 * time.Millisecond)
				c.Resilience.ProbeInterval = config.Duration(5 * time.Millisecond)
				c.Resilience.ProbePath = "example.com/a/@v/list"
				c.GC.Interval = config.Duration(5 * time.Millisecond)
				c.Cluster.Redis = redisAddr
			})
			if status, _, _ := h.get(t, "/example.com/a/@v/v1.0.0.zip"); status != 200 {
				t.Fatalf("GET: %d", status)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel() // only after Close: Close alone must stop everything
			h.srv.RunBackground(ctx)
			waitFor(t, func() bool {
				_, m, _ := h.get(t, "/metrics")
				return up.Requests("example.com/a/@v/list") > 1 && !strings.Contains(m, `modproxy_gc_runs_total{mode="run",result="ok"} 0`)
			})
			h.http.Close()
			if err := h.srv.Close(); err != nil {
				t.Fatal(err)
			}
			if g := ours(); len(g) > 0 {
				t.Fatalf("%d goroutines still run after Close:\n%s", len(g), strings.Join(g, "\n\n"))
			}
		})
	}
}

// TestNamespacesKeepBlocksAcrossRestarts: a block added by a purge applies
// to every namespace, also after a restart (before, namespaces started
// without the persisted blocks and served purged versions again).
func TestNamespacesKeepBlocksAcrossRestarts(t *testing.T) {
	up := upstreamtest.New(t, testMods(), upstreamtest.WithoutSumDB())
	dir := t.TempDir()
	cfg := func(c *config.Config) {
		c.Upstream = up.URL()
		c.CacheDir = dir
		c.Namespaces = []config.Namespace{{Name: "prod"}}
	}
	h := start(t, cfg)
	const zip = "/example.com/leaky/@v/v1.2.0.zip"
	for _, p := range []string{zip, "/prod" + zip} {
		if status, _, _ := h.get(t, p); status != 200 {
			t.Fatalf("GET %s: %d", p, status)
		}
	}
	if _, err := h.srv.Admin().Purge(context.Background(), "test", admin.PurgeRequest{Module: "example.com/leaky", Versions: "v1.2.0", Reason: "secret", Block: true}); err != nil {
		t.Fatal(err)
	}
	check := func(h *harness, when string) {
		t.Helper()
		for _, p := range []string{zip, "/prod" + zip} {
			if status, body, _ := h.get(t, p); status != 403 || !strings.Contains(body, "secret") {
				t.Errorf("%s: GET %s: %d %q, want 403 naming the reason", when, p, status, body)
			}
		}
	}
	check(h, "after the purge")
	h.http.Close()
	if err := h.srv.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "state", "blocked.json")); err != nil {
		t.Fatal(err)
	}
	check(start(t, cfg), "after a restart")
}

// TestPurgeInUseIsConflict: a purge that meets a version being filled
// answers 409 and says to retry (it was a 500 "internal error").
func TestPurgeInUseIsConflict(t *testing.T) {
	up := upstreamtest.New(t, testMods(), upstreamtest.WithoutSumDB())
	h := start(t, func(c *config.Config) {
		c.Upstream = up.URL()
		c.Warm.Zips = false // the zip's fill is the client's, below
	})
	if status, _, _ := h.get(t, "/example.com/leaky/@v/v1.2.0.mod"); status != 200 {
		t.Fatalf("GET mod: %d", status)
	}
	const zip = "example.com/leaky/@v/v1.2.0.zip"
	up.SetFault(zip, upstreamtest.Fault{Kind: upstreamtest.Delay, Delay: 300 * time.Millisecond}) // within the header timeout
	done := make(chan int)
	go func() {
		resp, err := http.Get(h.http.URL + "/" + zip)
		if err != nil {
			done <- 0
			return
		}
		resp.Body.Close()
		done <- resp.StatusCode
	}()
	waitFor(t, func() bool { return up.Requests(zip) == 1 }) // the fill holds the version
	req := httptest.NewRequest("POST", "http://127.0.0.1/api/purge", strings.NewReader(`{"module":"example.com/leaky","versions":"v1.2.0","reason":"x"}`))
	req.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	h.srv.AdminHandler().ServeHTTP(w, req)
	if w.Code != http.StatusConflict || !strings.Contains(w.Body.String(), "purge again") {
		t.Errorf("purge of a version being filled: %d %s, want 409 saying to purge again", w.Code, w.Body)
	}
	if status := <-done; status != 200 {
		t.Errorf("the fill: %d", status)
	}
}
