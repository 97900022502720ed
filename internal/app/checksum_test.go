package app_test

import (
	"io"
	"net/http"
	"testing"

	"github.com/modproxy/modproxy/internal/config"
	"github.com/modproxy/modproxy/internal/upstream/upstreamtest"
)

// TestChecksumDatabaseRecovery: while the checksum database fails, a
// version's .mod gets 502; the first request after the database is back
// gets 200, for that version and for one that needs the tile that failed.
func TestChecksumDatabaseRecovery(t *testing.T) {
	up := upstreamtest.New(t, testMods())
	name, key := up.SumDB()
	// Record both versions in the database, so that their lookups are
	// proved against the same tree and need the same tiles.
	for _, mv := range []string{"example.com/a@v1.0.0", "example.com/leaky@v1.2.0"} {
		resp, err := http.Get(up.URL() + "/sumdb/" + name + "/lookup/" + mv)
		if err != nil {
			t.Fatal(err)
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("seeding %s: %d %v", mv, resp.StatusCode, err)
		}
	}
	h := start(t, func(c *config.Config) {
		c.Upstream = up.URL()
		c.SumDB = []string{key}
		// One attempt per fetch, and a breaker that never opens: this
		// test is about the verifier, not about upstream resilience.
		c.Resilience.MaxAttempts = 1
		c.Resilience.BreakerFailures = 1000
	})

	for _, p := range []string{"/tile/*/*/*", "/tile/*/*/*/*"} {
		up.SetFault("sumdb/"+name+p, upstreamtest.Fault{Kind: upstreamtest.ServerError})
	}
	if status, body, _ := h.get(t, "/example.com/a/@v/v1.0.0.mod"); status != http.StatusBadGateway {
		t.Fatalf("with the database's tiles failing: %d %s", status, body)
	}
	up.ClearFaults()
	if status, body, _ := h.get(t, "/example.com/leaky/@v/v1.2.0.mod"); status != 200 {
		t.Fatalf("another version needing the tile that failed, after recovery: %d %s", status, body)
	}
	if status, body, _ := h.get(t, "/example.com/a/@v/v1.0.0.mod"); status != 200 {
		t.Fatalf("the version that failed, after recovery: %d %s", status, body)
	}

	lookup := "sumdb/" + name + "/lookup/example.com/a@v1.1.0"
	up.SetFault(lookup, upstreamtest.Fault{Kind: upstreamtest.ServerError})
	if status, body, _ := h.get(t, "/example.com/a/@v/v1.1.0.mod"); status != http.StatusBadGateway {
		t.Fatalf("with the database's lookup failing: %d %s", status, body)
	}
	up.ClearFaults()
	if status, body, _ := h.get(t, "/example.com/a/@v/v1.1.0.mod"); status != 200 {
		t.Fatalf("right after the database recovered: %d %s", status, body)
	}
}

// TestChecksumDatabaseOwnURL: a database configured with its own URL
// (GOSUMDB syntax "NAME+KEY URL") is read there, with paths relative to it.
func TestChecksumDatabaseOwnURL(t *testing.T) {
	up := upstreamtest.New(t, testMods())
	name, key := up.SumDB()
	h := start(t, func(c *config.Config) {
		c.Upstream = up.URL()
		c.SumDB = []string{key + " " + up.URL() + "/sumdb/" + name}
	})
	if status, body, _ := h.get(t, "/example.com/a/@v/v1.0.0.mod"); status != 200 {
		t.Fatalf("verified through the database's own URL: %d %s", status, body)
	}
	if n := up.Requests("sumdb/" + name + "/lookup/example.com/a@v1.0.0"); n != 1 {
		t.Errorf("the database's own URL was asked for the lookup %d times, want 1; log %q", n, up.Log())
	}
}
