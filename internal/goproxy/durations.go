package goproxy

import (
	"slices"
	"time"

	"github.com/modproxy/modproxy/internal/artifact"
	"github.com/modproxy/modproxy/internal/metrics"
	"github.com/modproxy/modproxy/internal/proxy"
)

// Outcome classes of the request-duration histogram: the cost of a hit
// and of a fill differ by orders of magnitude, so they are apart.
const (
	classHit   = iota // served from the cache (hit, stale, negative)
	classFill         // fetched upstream by this or a concurrent request
	classError        // every other answer: failures, not found upstream, refusals
	numClasses
)

var classNames = [numClasses]string{classHit: "hit", classFill: "fill", classError: "error"}

// outcomes are the cache outcomes a protocol answer can have.
var outcomes = []proxy.Outcome{proxy.Hit, proxy.Miss, proxy.Coalesced, proxy.Stale, proxy.Negative}

func classOf(o proxy.Outcome) int {
	switch o {
	case proxy.Hit, proxy.Stale, proxy.Negative:
		return classHit
	case proxy.Miss, proxy.Coalesced:
		return classFill
	}
	return classError
}

// durationTimers are the request-duration series of every kind and
// class, resolved once so that a request looks nothing up.
type durationTimers [artifact.SumDB + 1][numClasses]metrics.Timer

// newDurationTimers resolves the timers and creates, at zero, every
// protocol series the alerts and dashboards use (each kind with each
// outcome and with each status this handler answers), so that they are
// exported from start.
func newDurationTimers(m *metrics.Metrics) durationTimers {
	var t durationTimers
	var kinds []string
	for k := artifact.List; k <= artifact.SumDB; k++ {
		kinds = append(kinds, k.String())
		for c := range numClasses {
			t[k][c] = m.RequestTimer(k.String(), classNames[c])
		}
	}
	var names []string
	for _, o := range outcomes {
		names = append(names, string(o))
	}
	codes := []int{200}
	for _, a := range answers {
		codes = append(codes, a.status)
	}
	for _, a := range sumdbAnswers {
		codes = append(codes, a.status)
	}
	slices.Sort(codes)
	m.PresetProtocol(kinds, names, slices.Compact(codes))
	return t
}

// observe records a served request's duration.
func (t *durationTimers) observe(k artifact.Kind, o proxy.Outcome, d time.Duration) {
	if k > 0 && int(k) < len(t) {
		t[k][classOf(o)].Observe(d)
	}
}
