package goproxy

import (
	"net/http"
	"strings"
	"testing"

	"github.com/modproxy/modproxy/internal/proxy"
)

// TestPolicyHeaders: warnings become headers, with a retraction's
// rationale (any text of a go.mod comment) made a safe, bounded value.
func TestPolicyHeaders(t *testing.T) {
	h := http.Header{}
	policyHeaders(h, &proxy.PolicyNote{Advisories: "GO-2026-0001,GO-2026-0002", Retracted: "broken \x00build – see ☃" + strings.Repeat("x", 300)})
	if got := h.Get(AdvisoryHeader); got != "GO-2026-0001,GO-2026-0002" {
		t.Errorf("%s = %q", AdvisoryHeader, got)
	}
	got := h.Get(RetractedHeader)
	if !strings.HasPrefix(got, "broken ?build ? see ?x") || len(got) != 256 {
		t.Errorf("%s = %q (%d bytes)", RetractedHeader, got, len(got))
	}
	h = http.Header{}
	policyHeaders(h, &proxy.PolicyNote{Advisories: "GO-2026-0001"})
	if _, ok := h[RetractedHeader]; ok {
		t.Error("a retraction header without a retraction")
	}
}
