package app

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/modproxy/modproxy/internal/admin"
	"github.com/modproxy/modproxy/internal/audit"
	"github.com/modproxy/modproxy/internal/config"
	"github.com/modproxy/modproxy/internal/upstream"
)

// adminBackend is admin.Backend over the server: thin adapters that ask
// the cache administration (cacheadmin) and map its answers with the
// admin package's mappers, plus the server's own state (version,
// configuration, upstreams, traffic, audit log, cache-only mode).
type adminBackend struct{ s *Server }

var _ admin.Backend = adminBackend{}

func (b adminBackend) Status(ctx context.Context) (admin.Status, error) {
	s := b.s
	sum := s.cache.Summary(ctx)
	cfg := s.cfg
	return admin.Status{
		Version: s.info.Version, Started: s.started, Offline: s.svc.Offline(), Verify: cfg.Verify.Enabled,
		Listen: cfg.Listen, CacheDir: cfg.CacheDir,
		Store: admin.StoreStatsOf(sum), Config: redactedConfig(cfg), GCPolicy: admin.GCPolicyOf(sum),
		LastGC: admin.LastGCOf(sum), TrashSize: sum.TrashBytes,
	}, nil
}

// redactedConfig is the configuration as JSON-able values without secrets.
func redactedConfig(cfg config.Config) map[string]any {
	cfg = redactConfig(cfg)
	data, _ := json.Marshal(cfg)
	var m map[string]any
	_ = json.Unmarshal(data, &m)
	return m
}

// redactConfig returns cfg with every secret replaced: tokens, passwords,
// keys, and the credentials of every URL (upstream lists of the root,
// routes and namespaces; checksum database URLs). The slices are copied:
// cfg itself is not changed.
func redactConfig(cfg config.Config) config.Config {
	const hidden = "REDACTED"
	secret := func(s *string) {
		if *s != "" {
			*s = hidden
		}
	}
	secret(&cfg.Admin.Token)
	secret(&cfg.Storage.S3.AccessKey)
	secret(&cfg.Storage.S3.SecretKey)
	secret(&cfg.Cluster.RedisPassword)
	cfg.Webhooks = redactWebhooks(cfg.Webhooks, hidden)
	cfg.Upstream = upstream.RedactList(cfg.Upstream)
	if cfg.DL.Source != "" {
		cfg.DL.Source = upstream.RedactURL(cfg.DL.Source)
	}
	redactRoutes := func(rs []config.Route) []config.Route {
		rs = slices.Clone(rs)
		for i := range rs {
			rs[i].Upstream = upstream.RedactList(rs[i].Upstream)
		}
		return rs
	}
	cfg.Routes = redactRoutes(cfg.Routes)
	cfg.Namespaces = slices.Clone(cfg.Namespaces)
	for i := range cfg.Namespaces {
		cfg.Namespaces[i].Upstream = upstream.RedactList(cfg.Namespaces[i].Upstream)
		cfg.Namespaces[i].Routes = redactRoutes(cfg.Namespaces[i].Routes)
	}
	cfg.SumDB = slices.Clone(cfg.SumDB)
	for i, spec := range cfg.SumDB {
		// NAME[+KEY] [URL]: the URL may carry credentials.
		if name, u, ok := strings.Cut(spec, " "); ok {
			cfg.SumDB[i] = name + " " + upstream.RedactURL(strings.TrimSpace(u))
		}
	}
	return cfg
}

func (b adminBackend) Upstreams(ctx context.Context) ([]admin.Upstream, error) {
	var out []admin.Upstream
	for _, f := range b.s.upstreams.order {
		out = append(out, admin.Upstream{Name: f.Name(), Breaker: f.State()})
	}
	if b.s.upstreams.direct != nil {
		out = append(out, admin.Upstream{Name: "direct", Breaker: "available"})
	}
	return out, nil
}

func (b adminBackend) Stats(ctx context.Context) (admin.Stats, error) {
	tr := b.s.traffic
	st := admin.Stats{HitRatio: map[string]float64{
		"5m": tr.HitRatio(5 * time.Minute), "1h": tr.HitRatio(time.Hour), "24h": tr.HitRatio(24 * time.Hour),
	}}
	for _, b := range tr.Since(b.s.started, 6*time.Hour) { // the chart starts at the server's start
		st.Series = append(st.Series, admin.Bucket{Start: b.Start, Requests: b.Requests, Hits: b.Hits, Misses: b.Misses, Bytes: b.Bytes,
			Errors: b.Errors, UpstreamFetches: b.UpstreamFetches, UpstreamErrors: b.UpstreamErrors,
			UpstreamSeconds: b.UpstreamTime.Seconds(), UpstreamMaxSeconds: b.UpstreamMax.Seconds()})
		st.TotalHits += b.Hits
		st.TotalMiss += b.Misses
		st.TotalBytes += b.Bytes
	}
	bySize, byHits, err := b.s.cache.TopModules(ctx, 10)
	if err != nil {
		return st, err
	}
	st.TopBySize, st.TopByHits = admin.ModuleStatsOf(bySize), admin.ModuleStatsOf(byHits)
	return st, nil
}

func (b adminBackend) Modules(ctx context.Context, query string, limit int) ([]admin.Module, error) {
	ms, err := b.s.cache.Modules(ctx, query, limit)
	return admin.ModulesOf(ms), err
}

func (b adminBackend) GCPlan(ctx context.Context) (admin.GCPlan, error) {
	p, err := b.s.cache.Plan(ctx)
	if err != nil {
		return admin.GCPlan{}, err
	}
	return admin.GCPlanOf(p), nil
}

func (b adminBackend) GCRun(ctx context.Context, actor string) (admin.GCResult, error) {
	r, err := b.s.cache.RunGC(ctx, actor)
	return admin.GCResultOf(r), err
}

func (b adminBackend) Purge(ctx context.Context, actor string, req admin.PurgeRequest) (admin.PurgeResult, error) {
	r, err := b.s.cache.Purge(ctx, actor, req.Domain())
	return admin.PurgeResultOf(r), err
}

func (b adminBackend) Trash(ctx context.Context) ([]admin.TrashEntry, error) {
	ms, err := b.s.cache.Trash(ctx)
	if err != nil {
		return nil, err
	}
	return admin.TrashOf(ms), nil
}

func (b adminBackend) Restore(ctx context.Context, actor, id string) (admin.RestoreResult, error) {
	m, err := b.s.cache.Restore(ctx, actor, id)
	return admin.RestoreResultOf(m), err
}

func (b adminBackend) Pins(ctx context.Context) (admin.Pins, error) {
	return admin.PinsOf(b.s.cache.Pins(ctx)), nil
}

func (b adminBackend) AddPin(ctx context.Context, actor string, p admin.PinRequest) error {
	return b.s.cache.AddPin(ctx, actor, p.Domain())
}

func (b adminBackend) RemovePin(ctx context.Context, actor string, p admin.PinRequest) error {
	return b.s.cache.RemovePin(ctx, actor, p.Domain())
}

func (b adminBackend) Audit(ctx context.Context, q admin.AuditQuery) ([]audit.Event, error) {
	evs, err := b.s.audit.Query(audit.Filter{Action: q.Action, Actor: q.Actor, Identity: q.Identity, Target: q.Target, Since: q.Since, Until: q.Until, Limit: q.Limit})
	if evs == nil {
		evs = []audit.Event{}
	}
	return evs, err
}

func (b adminBackend) SetOffline(ctx context.Context, actor string, on bool) error {
	b.s.svc.SetOffline(on)
	return b.s.audit.RecordContext(ctx, audit.Event{Actor: actor, Action: "offline", Target: fmt.Sprint(on)})
}
