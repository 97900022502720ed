package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/modproxy/modproxy/internal/config"
	"github.com/modproxy/modproxy/internal/event"
	"github.com/modproxy/modproxy/internal/metrics"
	"github.com/modproxy/modproxy/internal/proxy"
	"github.com/modproxy/modproxy/internal/stats"
	"github.com/modproxy/modproxy/internal/upstream"
	"github.com/modproxy/modproxy/internal/upstream/direct"
	"github.com/modproxy/modproxy/internal/upstream/proxyclient"
	"github.com/modproxy/modproxy/internal/upstream/resilient"
)

// upstreams builds upstream chains from GOPROXY-syntax lists, sharing one
// resilient fetcher (one circuit breaker) per proxy URL and one direct
// fetcher, and runs their health probes.
type upstreams struct {
	cfg     config.Config
	copts   proxyclient.Options
	log     *slog.Logger
	metrics *metrics.Metrics
	tempDir string
	traffic *stats.Traffic // upstream fetches for the dashboard
	events  event.Sink     // breaker openings

	byURL  map[string]*resilient.Fetcher
	order  []*resilient.Fetcher
	direct *direct.Fetcher
}

// chain builds the chain for list, hedged as resilience.hedge_delay asks;
// key names the configuration key in errors.
func (u *upstreams) chain(key, list string) (upstream.Fetcher, error) {
	specs, err := upstream.ParseList(list)
	if err != nil {
		return nil, &config.Error{Key: key, Err: err}
	}
	c := &upstream.Chain{}
	for _, sp := range specs {
		switch sp.Target {
		case "off":
			// The go command stops at "off"; so does the chain: what follows
			// is never reached.
			c.Links = append(c.Links, upstream.Link{Fetcher: offFetcher{}})
			return resilient.Hedge(c, time.Duration(u.cfg.Resilience.HedgeDelay)), nil
		case "direct":
			if u.direct == nil {
				d, err := direct.New(direct.Options{
					Dir:         u.tempDir,
					Concurrency: u.cfg.Direct.Concurrency,
					Timeout:     time.Duration(u.cfg.Direct.Timeout),
				})
				if err != nil {
					return nil, &config.Error{Key: key, Err: err}
				}
				u.direct = d
			}
			c.Links = append(c.Links, upstream.Link{Fetcher: timed{u.direct, u.traffic}, AnyError: sp.AnyError})
			continue
		}
		f, ok := u.byURL[sp.Target]
		if !ok {
			pc, err := proxyclient.New(sp.Target, u.copts)
			if err != nil {
				return nil, &config.Error{Key: key, Err: err}
			}
			r := u.cfg.Resilience
			rate, minRequests := r.Breaker()
			if r.BreakerFailures > 0 && len(u.order) == 0 {
				u.log.Warn("resilience.breaker_failures is deprecated: use breaker_failure_rate and breaker_min_requests",
					"breaker_failure_rate", rate, "breaker_min_requests", minRequests)
			}
			f = resilient.New(pc.String(), pc, resilient.Options{
				MaxAttempts:    r.MaxAttempts,
				BackoffBase:    time.Duration(r.BackoffBase),
				BackoffMax:     time.Duration(r.BackoffMax),
				RequestTimeout: time.Duration(r.RequestTimeout),
				FailureRate:    rate,
				MinRequests:    uint(minRequests),
				Window:         time.Duration(r.BreakerWindow),
				ProbeFailures:  uint(r.ProbeFailures),
				OpenDelay:      time.Duration(r.BreakerOpen),
				TempDir:        u.tempDir,
				Logger:         u.log,
				Metrics:        u.metrics,
				Events:         u.events,
			})
			u.metrics.PresetUpstream(f.Name())
			u.byURL[sp.Target] = f
			u.order = append(u.order, f)
		}
		c.Links = append(c.Links, upstream.Link{Fetcher: timed{f, u.traffic}, AnyError: sp.AnyError})
	}
	if len(c.Links) == 0 {
		return nil, &config.Error{Key: key, Err: fmt.Errorf("%q has no usable entry", list)}
	}
	return resilient.Hedge(c, time.Duration(u.cfg.Resilience.HedgeDelay)), nil
}

// timed records every fetch of f (retries and body included) in the
// dashboard's traffic statistics: its time, and whether it failed (not
// found is an answer). A link skipped for its open breaker, or a fetch
// its caller abandoned (a hedge's loser), is not a fetch.
type timed struct {
	f       upstream.Fetcher
	traffic *stats.Traffic
}

func (t timed) Fetch(ctx context.Context, path string) (*upstream.Response, error) {
	start := time.Now()
	resp, err := t.f.Fetch(ctx, path)
	var ue *upstream.Error
	switch {
	case errors.As(err, &ue) && ue.BreakerOpen, errors.Is(err, context.Canceled):
	default:
		t.traffic.Upstream(time.Since(start), err != nil && (ue == nil || !ue.NotFound()))
	}
	return resp, err
}

// offFetcher ends a chain the way GOPROXY=off does.
type offFetcher struct{}

func (offFetcher) Fetch(ctx context.Context, path string) (*upstream.Response, error) {
	return nil, &upstream.Error{Upstream: "off", Path: path, NotExist: true, Msg: "module lookup disabled by \"off\" in the upstream list"}
}

// startProbes probes every upstream proxy every interval (backing off up
// to 8x while it fails) until ctx is done or stopProbes.
func (u *upstreams) startProbes(ctx context.Context, every time.Duration, path string) {
	for _, f := range u.order {
		f.StartProbes(ctx, every, path)
	}
}

// stopProbes stops the probes and waits for them.
func (u *upstreams) stopProbes() {
	for _, f := range u.order {
		f.Close()
	}
}

// ready reports readiness for /readyz: ready while cache-only mode is on
// or at least one upstream proxy's breaker is not open (direct entries
// count as available). The detail lists every upstream's breaker state.
func (u *upstreams) ready(svc *proxy.Service) func(ctx context.Context) (string, error) {
	return func(ctx context.Context) (string, error) {
		var b strings.Builder
		avail := u.direct != nil || svc.Offline()
		fmt.Fprintf(&b, "cache-only: %v\n", svc.Offline())
		for _, f := range u.order {
			st := f.State()
			fmt.Fprintf(&b, "upstream %s: breaker %s\n", f.Name(), st)
			avail = avail || st != "open"
		}
		if u.direct != nil {
			b.WriteString("upstream direct: available\n")
		}
		if !avail {
			return b.String(), errors.New("every upstream's circuit breaker is open")
		}
		return b.String(), nil
	}
}

// close stops the probes and releases the direct fetcher's private module
// cache.
func (u *upstreams) close() {
	u.stopProbes()
	if u.direct != nil {
		_ = u.direct.Close()
	}
}
