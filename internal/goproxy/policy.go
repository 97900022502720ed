package goproxy

import (
	"net/http"
	"strings"

	"github.com/modproxy/modproxy/internal/proxy"
)

// The response headers of the supply-chain policy's warnings.
const (
	// AdvisoryHeader names the advisories (comma-separated IDs) of a
	// version served under vulnerable = "warn".
	AdvisoryHeader = "X-Modproxy-Advisory"
	// RetractedHeader holds the retraction rationale of a version served
	// under retracted = "warn".
	RetractedHeader = "X-Modproxy-Retracted"
)

// policyHeaders sets the warning headers of n.
func policyHeaders(h http.Header, n *proxy.PolicyNote) {
	if n.Advisories != "" {
		h.Set(AdvisoryHeader, headerText(n.Advisories))
	}
	if n.Retracted != "" {
		h.Set(RetractedHeader, headerText(n.Retracted))
	}
}

// headerText makes s a safe header value: printable ASCII only (a go.mod
// comment may hold anything), at most 256 bytes.
func headerText(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e {
			return '?'
		}
		return r
	}, s)
	if len(s) > 256 {
		s = s[:256]
	}
	return s
}
