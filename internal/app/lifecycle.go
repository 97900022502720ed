package app

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/mod/module"

	"github.com/modproxy/modproxy/internal/admin"
	"github.com/modproxy/modproxy/internal/audit"
	"github.com/modproxy/modproxy/internal/config"
	"github.com/modproxy/modproxy/internal/coord"
	"github.com/modproxy/modproxy/internal/gc"
	"github.com/modproxy/modproxy/internal/index"
	"github.com/modproxy/modproxy/internal/routing"
	"github.com/modproxy/modproxy/internal/stats"
	"github.com/modproxy/modproxy/internal/storage"
	"github.com/modproxy/modproxy/internal/trash"
	"github.com/modproxy/modproxy/internal/upstream"
)

// lifecycle owns the metadata index, the trash, GC, purge, pins and the
// state persisted under CACHE_DIR/state (pins.json, blocked.json).
type lifecycle struct {
	s       *Server
	idx     *index.Index
	trash   *trash.Trash
	traffic *stats.Traffic
	started time.Time

	access  *touched   // accesses not yet shared with the cluster; nil alone
	mu      sync.Mutex // guards pins, blocked, lastGC; serializes GC runs and purges
	pins    admin.Pins
	blocked []config.DenyRule
	lastGC  *admin.GCResult
}

// ErrIndexLocked is returned when another process (a running server) has
// the cache directory's metadata index open.
var ErrIndexLocked = index.ErrLocked

// RebuildIndex rebuilds the metadata index of cfg's cache directory from
// its store and returns its totals.
func RebuildIndex(ctx context.Context, cfg config.Config, log *slog.Logger) (bytes, objects int64, err error) {
	store, _, err := openStore(ctx, cfg)
	if err != nil {
		return 0, 0, err
	}
	idx, err := openIndex(ctx, cfg.CacheDir, store, log)
	if err != nil {
		return 0, 0, err
	}
	defer idx.Close()
	if err := idx.Rebuild(ctx, store); err != nil {
		return 0, 0, err
	}
	bytes, objects = idx.Totals()
	return bytes, objects, nil
}

// openIndex opens the metadata index, rebuilding it from the store when
// it is missing or corrupt.
func openIndex(ctx context.Context, dir string, store index.Walker, log *slog.Logger) (*index.Index, error) {
	path := filepath.Join(dir, "index.db")
	idx, created, err := index.Open(path, index.Options{})
	if errors.Is(err, index.ErrCorrupt) {
		log.Warn("metadata index unusable; rebuilding it from the store", "path", path, "err", err)
		_ = os.Rename(path, path+".corrupt")
		idx, created, err = index.Open(path, index.Options{})
	}
	if err != nil {
		return nil, err
	}
	if created {
		start := time.Now()
		if err := idx.Rebuild(ctx, store); err != nil {
			idx.Close()
			return nil, err
		}
		b, n := idx.Totals()
		log.Info("metadata index rebuilt from the store", "objects", n, "bytes", b, "took", time.Since(start).Round(time.Millisecond))
	}
	return idx, nil
}

func (l *lifecycle) statePath(name string) string {
	return filepath.Join(l.s.cfg.CacheDir, "state", name)
}

// shared reports whether state lives in the shared store (several
// replicas on one bucket) rather than in CACHE_DIR/state.
func (l *lifecycle) shared() bool { return l.s.cfg.Storage.Type == "s3" }

func (l *lifecycle) readState(name string) ([]byte, error) {
	if l.shared() {
		o, err := l.s.store.Open(context.Background(), "_state/"+name)
		if err != nil {
			return nil, err
		}
		defer o.Close()
		return io.ReadAll(o)
	}
	return os.ReadFile(l.statePath(name))
}

// loadState reads pins and blocks (persisted by the admin API).
func (l *lifecycle) loadState() error {
	l.pins, l.blocked = admin.Pins{}, nil
	for name, v := range map[string]any{"pins.json": &l.pins, "blocked.json": &l.blocked} {
		data, err := l.readState(name)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		if err := json.Unmarshal(data, v); err != nil {
			return fmt.Errorf("state %s: %w", name, err)
		}
	}
	return nil
}

// saveState writes state atomically and tells the other replicas.
func (l *lifecycle) saveState(name string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	if l.shared() {
		if _, err := l.s.store.Put(context.Background(), "_state/"+name, bytes.NewReader(data)); err != nil {
			return err
		}
	} else {
		p := l.statePath(name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		tmp := p + ".tmp"
		if err := os.WriteFile(tmp, data, 0o644); err != nil {
			return err
		}
		if err := os.Rename(tmp, p); err != nil {
			return err
		}
	}
	if c := l.s.coord; c != nil {
		if err := c.Publish(context.Background(), "state"); err != nil {
			l.s.log.Warn("could not tell other replicas of a state change", "err", err)
		}
	}
	return nil
}

// subscribe reloads pins and blocks when another replica changes them.
func (l *lifecycle) subscribe(ctx context.Context) {
	if l.s.coord == nil {
		return
	}
	l.s.coord.Subscribe(ctx, func(msg string) {
		if msg != "state" {
			return
		}
		l.mu.Lock()
		defer l.mu.Unlock()
		if err := l.loadState(); err != nil {
			l.s.log.Error("reloading shared state", "err", err)
			return
		}
		if rules, err := l.rules(); err == nil {
			l.s.setBlocked(rules, l.blocked)
		}
	})
}

// rules builds the routing rules: configured deny rules plus the blocks
// added by purges. Called with mu held.
func (l *lifecycle) rules() (*routing.Rules, error) {
	var deny []routing.Deny
	for _, d := range append(slices.Clone(l.s.cfg.Deny), l.blocked...) {
		rg, err := routing.ParseRange(d.Versions)
		if err != nil {
			return nil, err
		}
		deny = append(deny, routing.Deny{Match: d.Match, Versions: rg, Reason: d.Reason, Status: d.Status})
	}
	return routing.New(l.s.routes, deny, l.s.cfg.Allow, 0), nil
}

func (l *lifecycle) policy() gc.Policy {
	g := l.s.cfg.GC
	return gc.Policy{
		MaxBytes:   int64(g.MaxSize),
		MaxIdle:    time.Duration(g.MaxIdle),
		KeepNewest: g.KeepNewest,
		Pins:       append(slices.Clone(g.Pins), l.pins.Patterns...),
		PinSets:    append(slices.Clone(g.PinSets), l.pins.Sets...),
	}
}

func (l *lifecycle) runner() *gc.Runner {
	return &gc.Runner{Store: l.s.store, Index: l.idx, Trash: l.trash, Gate: l.s.svc, Audit: l.s.audit, Metrics: l.s.metrics}
}

// plan makes a GC plan from the current index.
func (l *lifecycle) plan() (gc.Plan, error) {
	l.mu.Lock()
	pol := l.policy()
	l.mu.Unlock()
	view, err := l.planIndex(context.Background())
	if err != nil {
		return gc.Plan{}, err
	}
	return gc.MakePlan(view, pol, time.Now())
}

// planIndex is the index GC plans from. Alone, it is the local index. On
// a shared store with a coordinator, the local index is first rebuilt from
// the store (other replicas fill it too) and the access statistics of
// every replica are merged in, so that eviction sees the cluster's use.
func (l *lifecycle) planIndex(ctx context.Context) (gc.Index, error) {
	l.pushAccess(ctx)
	l.idx.Flush()
	c := l.s.coord
	if c == nil || !l.shared() {
		return l.idx, nil
	}
	if err := l.idx.Rebuild(ctx, l.s.store); err != nil {
		return nil, err
	}
	remote, err := c.PullAccess(ctx)
	if err != nil {
		l.s.log.Warn("cluster access statistics unavailable: planning GC from this replica's alone", "err", err)
		return l.idx, nil
	}
	return mergedIndex{Index: l.idx, remote: remote}, nil
}

// mergedIndex overlays the cluster's access statistics on the local index.
type mergedIndex struct {
	*index.Index
	remote map[string]coord.Access
}

func (m mergedIndex) All(fn func(key string, r index.Record) error) error {
	return m.Index.All(func(key string, r index.Record) error {
		if a, ok := m.remote[key]; ok {
			if a.Last.After(r.LastAccess) {
				r.LastAccess = a.Last
			}
			if a.Hits > r.Hits {
				r.Hits = a.Hits
			}
		}
		return fn(key, r)
	})
}

// touched collects this replica's accesses for the cluster.
type touched struct {
	mu sync.Mutex
	m  map[string]coord.Access
}

func (t *touched) add(key string, at time.Time) {
	t.mu.Lock()
	a := t.m[key]
	a.Hits++
	if at.After(a.Last) {
		a.Last = at
	}
	t.m[key] = a
	t.mu.Unlock()
}

func (t *touched) take() map[string]coord.Access {
	t.mu.Lock()
	defer t.mu.Unlock()
	m := t.m
	t.m = map[string]coord.Access{}
	return m
}

// pushAccess sends what this replica served since the last push.
func (l *lifecycle) pushAccess(ctx context.Context) {
	if l.s.coord == nil || l.access == nil {
		return
	}
	m := l.access.take()
	if len(m) == 0 {
		return
	}
	if err := l.s.coord.PushAccess(ctx, m); err != nil {
		l.s.log.Warn("could not share access statistics with the cluster", "err", err)
	}
}

// clusterIndex passes index events on and records accesses for the cluster.
type clusterIndex struct {
	*index.Index
	access *touched
}

func (c clusterIndex) Touch(key string, t time.Time) {
	c.Index.Touch(key, t)
	c.access.add(key, t)
}

// gcOnce plans and runs GC, then purges the trash by age and size.
func (l *lifecycle) gcOnce(ctx context.Context, actor string) (gc.Result, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	view, err := l.planIndex(ctx)
	if err != nil {
		l.s.metrics.GCRun(false, false)
		return gc.Result{}, err
	}
	plan, err := gc.MakePlan(view, l.policy(), time.Now())
	if err != nil {
		l.s.metrics.GCRun(false, false)
		return gc.Result{}, err
	}
	res, err := l.runner().Run(ctx, plan, actor, "gc")
	l.s.metrics.GCRun(err == nil, false)
	if removed, size, perr := l.trash.Purge(); perr == nil {
		for _, m := range removed {
			_ = l.s.audit.Record(audit.Event{Actor: actor, Action: "trash-purge", Target: m.ID, Reason: "retention or size bound", Bytes: m.Bytes})
		}
		l.s.metrics.Trash(size)
	}
	r := toGCResult(res)
	l.lastGC = &r
	b, n := l.idx.Totals()
	l.s.metrics.Store(b, n, int64(l.s.cfg.GC.MaxSize))
	if err == nil {
		l.s.log.Info("gc done", "actor", actor, "evicted", len(res.Evicted), "bytes", res.Bytes, "skipped_in_use", len(res.Skipped), "trash", res.TrashID)
	}
	return res, err
}

func toGCResult(r gc.Result) admin.GCResult {
	return admin.GCResult{Started: r.Started, Finished: r.Finished, Evicted: len(r.Evicted), Bytes: r.Bytes, Skipped: len(r.Skipped), TrashID: r.TrashID}
}

// gcLoop runs GC every interval until ctx is done. With a coordinator,
// only the GC leader runs it: the replica holding the "gc-leader" lock,
// which keeps it (renewed) while it lives; the others try to take over at
// every tick. If the coordinator is unreachable, every replica runs GC on
// its own (safe: evicting what is gone is a no-op).
func (l *lifecycle) gcLoop(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	var leader coord.Lock
	defer func() {
		if leader != nil {
			_ = leader.Release(context.WithoutCancel(ctx))
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if c := l.s.coord; c != nil {
			if leader != nil {
				select {
				case <-leader.Lost():
					l.s.log.Warn("lost GC leadership")
					leader = nil
				default:
				}
			}
			if leader == nil {
				lock, ok, err := c.TryLock(ctx, "gc-leader", max(3*every, 30*time.Second))
				switch {
				case ctx.Err() != nil:
					return
				case err != nil:
					l.s.log.Warn("cluster coordination unavailable: running gc without leader election", "err", err)
				case !ok:
					continue // another replica leads
				default:
					leader = lock
					l.s.log.Info("this replica is the GC leader")
				}
			}
		}
		l.runScheduledGC(ctx)
	}
}

func (l *lifecycle) runScheduledGC(ctx context.Context) {
	if _, err := l.gcOnce(ctx, "gc:schedule"); err != nil {
		l.s.log.Error("scheduled gc failed", "err", err)
	}
}

// ---- admin.Backend ----

var _ admin.Backend = (*lifecycle)(nil)

func (l *lifecycle) Status(ctx context.Context) (admin.Status, error) {
	b, n := l.idx.Totals()
	vers, _ := gc.Versions(l.idx)
	l.mu.Lock()
	last := l.lastGC
	pol := l.policy()
	l.mu.Unlock()
	cfg := l.s.cfg
	return admin.Status{
		Version: l.s.info.Version, Started: l.started, Offline: l.s.svc.Offline(), Verify: cfg.Verify.Enabled,
		Listen: cfg.Listen, CacheDir: cfg.CacheDir,
		Store:  admin.StoreStats{Bytes: b, Objects: n, Versions: int64(len(vers)), CapBytes: int64(cfg.GC.MaxSize)},
		Config: redactedConfig(cfg),
		GCPolicy: map[string]any{"interval": time.Duration(cfg.GC.Interval).String(), "max_size": pol.MaxBytes,
			"max_idle": pol.MaxIdle.String(), "keep_newest": pol.KeepNewest, "pins": pol.Pins, "pin_sets": pol.PinSets},
		LastGC: last, TrashSize: l.trash.Size(),
	}, nil
}

// redactedConfig is the configuration as JSON-able values without secrets.
func redactedConfig(cfg config.Config) map[string]any {
	data, _ := json.Marshal(cfg)
	var m map[string]any
	_ = json.Unmarshal(data, &m)
	if a, ok := m["Admin"].(map[string]any); ok && a["Token"] != "" {
		a["Token"] = "REDACTED"
	}
	// Credentials in URLs.
	for _, k := range []string{"Upstream"} {
		if s, ok := m[k].(string); ok {
			m[k] = upstream.RedactList(s)
		}
	}
	return m
}

func (l *lifecycle) Upstreams(ctx context.Context) ([]admin.Upstream, error) {
	var out []admin.Upstream
	for _, f := range l.s.upstreams.order {
		out = append(out, admin.Upstream{Name: f.Name(), Breaker: f.State()})
	}
	if l.s.upstreams.direct != nil {
		out = append(out, admin.Upstream{Name: "direct", Breaker: "available"})
	}
	return out, nil
}

func (l *lifecycle) Stats(ctx context.Context) (admin.Stats, error) {
	st := admin.Stats{HitRatio: map[string]float64{
		"5m": l.traffic.HitRatio(5 * time.Minute), "1h": l.traffic.HitRatio(time.Hour), "24h": l.traffic.HitRatio(24 * time.Hour),
	}}
	for _, b := range l.traffic.Series(6 * time.Hour) {
		st.Series = append(st.Series, admin.Bucket{Start: b.Start, Requests: b.Requests, Hits: b.Hits, Misses: b.Misses, Bytes: b.Bytes})
		st.TotalHits += b.Hits
		st.TotalMiss += b.Misses
		st.TotalBytes += b.Bytes
	}
	l.idx.Flush()
	vers, err := gc.Versions(l.idx)
	if err != nil {
		return st, err
	}
	byMod := map[string]*admin.ModuleStat{}
	for _, v := range vers {
		m := byMod[v.Module]
		if m == nil {
			m = &admin.ModuleStat{Module: v.Module}
			byMod[v.Module] = m
		}
		m.Bytes += v.Bytes
		m.Hits += v.Hits
		m.Versions++
	}
	var all []admin.ModuleStat
	for _, m := range byMod {
		all = append(all, *m)
	}
	top := func(less func(a, b admin.ModuleStat) int) []admin.ModuleStat {
		s := slices.Clone(all)
		slices.SortFunc(s, less)
		return s[:min(10, len(s))]
	}
	st.TopBySize = top(func(a, b admin.ModuleStat) int { return cmpDesc(a.Bytes, b.Bytes, a.Module, b.Module) })
	st.TopByHits = top(func(a, b admin.ModuleStat) int { return cmpDesc(a.Hits, b.Hits, a.Module, b.Module) })
	return st, nil
}

func cmpDesc(a, b int64, ma, mb string) int {
	switch {
	case a > b:
		return -1
	case a < b:
		return 1
	}
	return strings.Compare(ma, mb)
}

func (l *lifecycle) Modules(ctx context.Context, query string, limit int) ([]admin.Module, error) {
	if limit <= 0 || limit > 500 {
		limit = 50
	}
	l.idx.Flush()
	vers, err := gc.Versions(l.idx)
	if err != nil {
		return nil, err
	}
	pn, _ := gc.NewPinner(l.policy())
	var out []admin.Module
	for _, v := range vers {
		if query != "" && !strings.Contains(v.Module, query) {
			continue
		}
		if len(out) == 0 || out[len(out)-1].Path != v.Module {
			if len(out) == limit {
				break
			}
			out = append(out, admin.Module{Path: v.Module})
		}
		av := admin.Version{Version: v.Version, Bytes: v.Bytes, Stored: v.Stored, LastAccess: v.LastAccess, Hits: v.Hits}
		if pn != nil {
			av.Pinned = pn.Pinned(v.Module, v.Version)
		}
		for _, k := range v.Keys {
			switch {
			case strings.HasSuffix(k, ".zip.h1"):
				av.ZipHash = smallString(ctx, l.s.store, k)
			case strings.HasSuffix(k, ".mod.h1"):
				av.ModHash = smallString(ctx, l.s.store, k)
			case strings.HasSuffix(k, ".h1"):
			default:
				av.Files = append(av.Files, k[strings.LastIndex(k, ".")+1:])
			}
		}
		m := &out[len(out)-1]
		m.Versions = append(m.Versions, av)
	}
	return out, nil
}

func (l *lifecycle) GCPlan(ctx context.Context) (admin.GCPlan, error) {
	plan, err := l.plan()
	l.s.metrics.GCRun(err == nil, true)
	if err != nil {
		return admin.GCPlan{}, err
	}
	out := admin.GCPlan{Created: plan.Created, Bytes: plan.Bytes, StoreBytes: plan.StoreBytes,
		AfterBytes: plan.StoreBytes - plan.Bytes, PinnedKept: plan.PinnedKept, Items: []admin.GCPlanItem{}}
	for _, it := range plan.Items {
		out.Items = append(out.Items, admin.GCPlanItem{Module: it.Module, Version: it.Version, Bytes: it.Bytes, Reason: it.Reason})
	}
	return out, nil
}

func (l *lifecycle) GCRun(ctx context.Context, actor string) (admin.GCResult, error) {
	res, err := l.gcOnce(ctx, actor)
	return toGCResult(res), err
}

func (l *lifecycle) Purge(ctx context.Context, actor string, req admin.PurgeRequest) (admin.PurgeResult, error) {
	if strings.TrimSpace(req.Reason) == "" {
		return admin.PurgeResult{}, fmt.Errorf("%w: a reason is required", admin.ErrBadRequest)
	}
	if err := module.CheckPath(req.Module); err != nil {
		return admin.PurgeResult{}, fmt.Errorf("%w: %v", admin.ErrBadRequest, err)
	}
	rg, err := routing.ParseRange(req.Versions)
	if err != nil {
		return admin.PurgeResult{}, fmt.Errorf("%w: versions: %v", admin.ErrBadRequest, err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.idx.Flush()
	vers, err := gc.Versions(l.idx)
	if err != nil {
		return admin.PurgeResult{}, err
	}
	plan := gc.Plan{Created: time.Now()}
	for _, v := range vers {
		if v.Module == req.Module && (rg.Empty() || rg.Contains(v.Version)) {
			plan.Items = append(plan.Items, gc.Item{Entry: v, Reason: "purge"})
		}
	}
	out := admin.PurgeResult{Versions: []string{}}
	if req.Block {
		l.blocked = append(l.blocked, config.DenyRule{Match: req.Module, Versions: req.Versions, Reason: "purged: " + req.Reason, Status: 403})
		if err := l.saveState("blocked.json", l.blocked); err != nil {
			return out, err
		}
		rules, err := l.rules()
		if err != nil {
			return out, err
		}
		l.s.setBlocked(rules, l.blocked)
		out.Blocked = true
	}
	res, err := l.runner().Run(ctx, plan, actor, "purge: "+req.Reason)
	for _, it := range res.Evicted {
		out.Versions = append(out.Versions, it.Version)
	}
	out.Bytes = res.Bytes
	out.TrashID = res.TrashID
	if err != nil {
		return out, err
	}
	if len(res.Skipped) > 0 {
		return out, fmt.Errorf("%d versions are being served or filled; purge again", len(res.Skipped))
	}
	if req.Hard && res.TrashID != "" {
		if err := l.trash.Remove(res.TrashID); err != nil {
			return out, err
		}
		out.TrashID = ""
	}
	_ = l.s.audit.Record(audit.Event{Actor: actor, Action: "purge", Target: req.Module + "@" + req.Versions,
		Reason: req.Reason, Bytes: res.Bytes})
	return out, nil
}

func (l *lifecycle) Trash(ctx context.Context) ([]admin.TrashEntry, error) {
	ms, err := l.trash.List()
	if err != nil {
		return nil, err
	}
	out := []admin.TrashEntry{}
	for _, m := range ms {
		out = append(out, admin.TrashEntry{ID: m.ID, Created: m.Created, Reason: m.Reason, Versions: m.Versions, Bytes: m.Bytes, Expires: m.Expires})
	}
	return out, nil
}

func (l *lifecycle) Restore(ctx context.Context, actor, id string) (admin.RestoreResult, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	m, err := l.trash.Restore(ctx, id, l.s.store)
	if errors.Is(err, fs.ErrNotExist) {
		return admin.RestoreResult{}, fmt.Errorf("%w: %v", admin.ErrNotFound, err)
	}
	for _, k := range m.Keys {
		if info, serr := l.s.store.Stat(ctx, k); serr == nil {
			l.idx.Stored(k, info.Size, info.ModTime)
		}
	}
	l.idx.Flush()
	_ = l.s.audit.Record(audit.Event{Actor: actor, Action: "restore", Target: id, Reason: strings.Join(m.Versions, " "), Bytes: m.Bytes})
	return admin.RestoreResult{Restored: m.Versions, Bytes: m.Bytes}, err
}

func (l *lifecycle) Pins(ctx context.Context) (admin.Pins, error) {
	pol := l.policy()
	return admin.Pins{Patterns: pol.Pins, Sets: pol.PinSets}, nil
}

func (l *lifecycle) AddPin(ctx context.Context, actor string, p admin.PinRequest) error {
	return l.changePin(actor, p, true)
}

func (l *lifecycle) RemovePin(ctx context.Context, actor string, p admin.PinRequest) error {
	return l.changePin(actor, p, false)
}

func (l *lifecycle) changePin(actor string, p admin.PinRequest, add bool) error {
	if (p.Pattern == "") == (p.Set == "") {
		return fmt.Errorf("%w: give exactly one of pattern and set", admin.ErrBadRequest)
	}
	if p.Set != "" {
		if _, err := gc.NewPinner(gc.Policy{PinSets: []string{p.Set}}); err != nil && add {
			return fmt.Errorf("%w: %v", admin.ErrBadRequest, err)
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	edit := func(list []string, v string) ([]string, error) {
		i := slices.Index(list, v)
		switch {
		case add && i < 0:
			return append(list, v), nil
		case !add && i >= 0:
			return slices.Delete(list, i, i+1), nil
		case !add:
			return list, fmt.Errorf("%w: %q is not pinned through the admin API", admin.ErrNotFound, v)
		}
		return list, nil
	}
	var err error
	target := p.Pattern
	if p.Pattern != "" {
		l.pins.Patterns, err = edit(l.pins.Patterns, p.Pattern)
	} else {
		target = p.Set
		l.pins.Sets, err = edit(l.pins.Sets, p.Set)
	}
	if err != nil {
		return err
	}
	if err := l.saveState("pins.json", l.pins); err != nil {
		return err
	}
	action := "pin"
	if !add {
		action = "unpin"
	}
	return l.s.audit.Record(audit.Event{Actor: actor, Action: action, Target: target})
}

func (l *lifecycle) Audit(ctx context.Context, q admin.AuditQuery) ([]audit.Event, error) {
	evs, err := l.s.audit.Query(audit.Filter{Action: q.Action, Actor: q.Actor, Target: q.Target, Since: q.Since, Until: q.Until, Limit: q.Limit})
	if evs == nil {
		evs = []audit.Event{}
	}
	return evs, err
}

func (l *lifecycle) SetOffline(ctx context.Context, actor string, on bool) error {
	l.s.svc.SetOffline(on)
	return l.s.audit.Record(audit.Event{Actor: actor, Action: "offline", Target: fmt.Sprint(on)})
}

// smallString is a recorded hash or "" when there is none.
func smallString(ctx context.Context, s storage.Opener, key string) string {
	b, _ := storage.ReadSmall(ctx, s, key, 4096)
	return strings.TrimSpace(string(b))
}
