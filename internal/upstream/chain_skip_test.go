package upstream_test

import (
	"context"
	"errors"
	iofs "io/fs"
	"testing"

	"github.com/modproxy/modproxy/internal/upstream"
)

// failWith is a Fetcher whose every fetch fails with err.
type failWith struct{ err error }

func (f failWith) Fetch(ctx context.Context, path string) (*upstream.Response, error) {
	return nil, f.err
}

// TestChainSkippedLinkIsNotAbsence: a link skipped because its breaker is
// open could not be asked; a later link's "not found" must not turn the
// answer into "not found" (which would drop a stale copy and be
// remembered as missing while the upstream is down). A real failure still
// beats the skip, and a chain whose links all say "not found" says so.
func TestChainSkippedLinkIsNotAbsence(t *testing.T) {
	skipped := &upstream.Error{Upstream: "https://primary", Path: "p", Msg: "circuit breaker open", BreakerOpen: true}
	notFound := &upstream.Error{Upstream: "direct", Path: "p", NotExist: true, Msg: "unrecognized import path"}
	failed := &upstream.Error{Upstream: "https://secondary", Path: "p", Status: 502}
	for _, tc := range []struct {
		name  string
		links []upstream.Link
		want  error
	}{
		// Before: the "not found" of the fallback.
		{"skipped, then not found", []upstream.Link{{Fetcher: failWith{skipped}}, {Fetcher: failWith{notFound}}}, skipped},
		{"skipped, then not found (|)", []upstream.Link{{Fetcher: failWith{skipped}, AnyError: true}, {Fetcher: failWith{notFound}}}, skipped},
		{"not found, then skipped", []upstream.Link{{Fetcher: failWith{notFound}}, {Fetcher: failWith{skipped}}}, skipped},
		{"skipped, then failed", []upstream.Link{{Fetcher: failWith{skipped}}, {Fetcher: failWith{failed}}}, failed},
		{"not found everywhere", []upstream.Link{{Fetcher: failWith{notFound}}, {Fetcher: failWith{notFound}}}, notFound},
	} {
		c := &upstream.Chain{Links: tc.links}
		_, err := c.Fetch(context.Background(), "p")
		if err != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
		if errors.Is(err, iofs.ErrNotExist) != (tc.want == notFound) {
			t.Errorf("%s: errors.Is(err, fs.ErrNotExist) = %v", tc.name, errors.Is(err, iofs.ErrNotExist))
		}
	}
}
