package resilient

import (
	"context"
	"strings"
	"time"

	"github.com/failsafe-go/failsafe-go"
	"github.com/failsafe-go/failsafe-go/hedgepolicy"

	"github.com/modproxy/modproxy/internal/upstream"
)

// Hedge returns a Fetcher that hedges the mutable requests (@v/list,
// @latest, version queries) of chain: if its first link has not answered
// after delay, the rest of the chain is tried at the same time and the
// first success wins; the loser is cancelled and its answer discarded.
// Other requests, and every request when delay is not positive or the
// chain has a single link, go to chain as they are (then chain itself is
// returned). It is safe for concurrent use if chain is.
func Hedge(chain *upstream.Chain, delay time.Duration) upstream.Fetcher {
	if delay <= 0 || len(chain.Links) < 2 {
		return chain
	}
	hp := hedgepolicy.NewBuilderWithDelay[*upstream.Response](delay).WithMaxHedges(1).
		CancelIf(func(r *upstream.Response, err error) bool { return err == nil }).Build()
	return &hedged{chain: chain, rest: &upstream.Chain{Links: chain.Links[1:]}, policy: hp}
}

type hedged struct {
	chain  *upstream.Chain
	rest   *upstream.Chain // the links after the first
	policy hedgepolicy.HedgePolicy[*upstream.Response]
}

func (h *hedged) Fetch(ctx context.Context, path string) (*upstream.Response, error) {
	if !mutablePath(path) {
		return h.chain.Fetch(ctx, path)
	}
	return failsafe.With(h.policy).WithContext(ctx).GetWithExecution(func(exec failsafe.Execution[*upstream.Response]) (*upstream.Response, error) {
		if exec.IsHedge() {
			return h.rest.Fetch(exec.Context(), path)
		}
		return h.chain.Fetch(exec.Context(), path)
	})
}

// mutablePath reports whether a protocol path's answer changes over time.
func mutablePath(p string) bool {
	return strings.HasSuffix(p, "/@v/list") || strings.HasSuffix(p, "/@latest") ||
		(strings.HasSuffix(p, ".info") && !strings.HasPrefix(p, "sumdb/"))
}
