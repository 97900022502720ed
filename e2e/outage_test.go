package e2e

import (
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/modproxy/modproxy/internal/upstream/upstreamtest"
)

// TestGoGetLatestWhileUpstreamDown: `go get M@latest` keeps working from
// modproxy's stale copies of @v/list and @latest when the upstream goes
// down, also once its circuit breaker is open and the chain's next link
// (here an upstream that knows no module, as "direct" is on a host that
// cannot reach the origin) answers "not found". Every mutable answer is
// stale at once (cache.ttl = 0), so no waiting is needed.
func TestGoGetLatestWhileUpstreamDown(t *testing.T) {
	up := upstreamtest.New(t, testModules())
	empty := upstreamtest.New(t, nil, upstreamtest.WithoutSumDB())
	_, sumKey := up.SumDB()
	env := []string{
		"MODPROXY_CACHE_TTL=0s", "MODPROXY_CACHE_STALE_WHILE_REVALIDATE=0s", "MODPROXY_CACHE_STALE_IF_ERROR=1h",
		"MODPROXY_RESILIENCE_BREAKER_OPEN=1h", "MODPROXY_RESILIENCE_PROBE_INTERVAL=0s", "MODPROXY_ADMIN_LISTEN=",
	}
	srv := startServer(t, env, "--cache-dir", t.TempDir(), "--upstream", up.URL()+","+empty.URL(), "--sumdb", sumKey)
	g := newGoEnv(t, srv.URL, sumKey)
	const emptyMod = "module example.com/proj\n\ngo 1.21\n"
	g.write(t, "go.mod", emptyMod)
	// example.com/a has tagged versions (@v/list); example.com/pseudo has
	// none (@latest).
	targets := []string{"example.com/a@latest", "example.com/pseudo@latest"}
	for _, m := range targets {
		g.run(t, "get", m)
	}

	up.Stop()
	// Open the upstream's breaker: one request retried until it opens.
	if code, body := srv.get(t, "/example.com/unrelated/@v/list"); code != http.StatusBadGateway {
		t.Fatalf("with the upstream down, a miss answered %d %s; want 502", code, body)
	}
	g.freshModCache(t)
	g.write(t, "go.mod", emptyMod)
	for _, m := range targets {
		g.run(t, "get", m)
	}
	resp, err := http.Get(srv.URL + "/example.com/pseudo/@latest")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	age, err := strconv.Atoi(resp.Header.Get("Age"))
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Warning"), "111 ") || err != nil || age < 0 {
		t.Errorf("stale @latest: %s, Warning %q, Age %q; want 200, 111, an age", resp.Status, resp.Header.Get("Warning"), resp.Header.Get("Age"))
	}
}
