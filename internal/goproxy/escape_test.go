package goproxy_test

import (
	"slices"
	"strings"
	"testing"
)

// TestQueryEscapesReachTheUpstreamSafely: a version query holding a percent
// escape reaches the upstream escaped again, so the upstream decodes the
// query modproxy decoded; a query that decodes into a path traversal is
// refused without going upstream.
func TestQueryEscapesReachTheUpstreamSafely(t *testing.T) {
	f := newFixture(t)
	f.up.ResetCounts()
	// net/http decodes the path once: the query is "feat%2fx".
	f.do(t, "GET", "/example.com/a/@v/feat%252fx.info", nil)
	if log := f.up.Log(); !slices.Contains(log, "example.com/a/@v/feat%2fx.info") {
		t.Errorf("the upstream did not read the query modproxy read; it saw %q", log)
	}
	f.up.ResetCounts()
	resp, body := f.do(t, "GET", "/example.com/a/@v/..%252f..%252fadmin%252fsecret.info", nil)
	if resp.StatusCode != 404 {
		t.Errorf("a query decoding to ../../admin/secret: %d %s, want 404", resp.StatusCode, body)
	}
	for _, p := range f.up.Log() {
		if strings.Contains(p, "admin") {
			t.Errorf("the upstream was asked for %q", p)
		}
	}
}
