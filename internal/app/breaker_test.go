package app_test

import (
	"strings"
	"testing"

	"github.com/modproxy/modproxy/internal/config"
	"github.com/modproxy/modproxy/internal/upstream/upstreamtest"
)

// TestOneBadZipDoesNotOpenBreaker: with the default breaker settings and
// max_attempts = 3, a zip whose body resets on every attempt fails, and an
// unrelated .mod asked right after it is served from the same upstream
// (issue: the three failed attempts opened the upstream's breaker, and the
// .mod failed with "circuit breaker open").
func TestOneBadZipDoesNotOpenBreaker(t *testing.T) {
	up := upstreamtest.New(t, testMods(), upstreamtest.WithoutSumDB())
	const zip = "example.com/a/@v/v1.0.0.zip"
	up.SetFault(zip, upstreamtest.Fault{Kind: upstreamtest.Reset})
	h := start(t, func(c *config.Config) { // the default breaker settings
		c.Upstream = up.URL()
		c.Resilience.MaxAttempts = 3
	})
	if status, body, _ := h.get(t, "/"+zip); status < 500 {
		t.Fatalf("zip resetting on every attempt: %d %q, want a failure", status, body)
	}
	if n := up.Requests(zip); n != 3 {
		t.Errorf("upstream saw %d requests for the zip, want 3 attempts", n)
	}
	status, body, _ := h.get(t, "/example.com/a/@v/v1.1.0.mod")
	if status != 200 || body != "module example.com/a\n" {
		t.Fatalf("unrelated .mod after one bad zip: %d %q", status, body)
	}
	if r := readyz(t, h); !strings.Contains(r, "breaker closed") {
		t.Errorf("readyz after one bad zip:\n%s", r)
	}
}
