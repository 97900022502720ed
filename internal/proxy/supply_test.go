package proxy_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/mod/semver"

	"github.com/modproxy/modproxy/internal/audit"
	"github.com/modproxy/modproxy/internal/cachepolicy"
	"github.com/modproxy/modproxy/internal/errclass"
	"github.com/modproxy/modproxy/internal/event"
	"github.com/modproxy/modproxy/internal/metrics"
	"github.com/modproxy/modproxy/internal/policy"
	"github.com/modproxy/modproxy/internal/proxy"
	storagefs "github.com/modproxy/modproxy/internal/storage/fs"
	"github.com/modproxy/modproxy/internal/upstream"
	"github.com/modproxy/modproxy/internal/upstream/proxyclient"
	"github.com/modproxy/modproxy/internal/upstream/upstreamtest"
)

// fakeSource is a policy.Source from a map; err fails every lookup.
type fakeSource struct {
	advs map[string][]policy.Advisory
	err  error
}

func (f fakeSource) Advisories(_ context.Context, mod string) ([]policy.Advisory, error) {
	return f.advs[mod], f.err
}

// sink records events.
type sink struct {
	mu  sync.Mutex
	evs []event.Event
}

func (s *sink) Emit(e event.Event) { s.mu.Lock(); s.evs = append(s.evs, e); s.mu.Unlock() }
func (s *sink) events() []event.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]event.Event(nil), s.evs...)
}

// noTime drops the Time of the .info files (and @latest) of module paths
// ending in "/notime".
type noTime struct{ f upstream.Fetcher }

func (n noTime) Fetch(ctx context.Context, path string) (*upstream.Response, error) {
	res, err := n.f.Fetch(ctx, path)
	if err != nil || !strings.Contains(path, "/notime/") || !(strings.HasSuffix(path, ".info") || strings.HasSuffix(path, "@latest")) {
		return res, err
	}
	data, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil {
		return nil, err
	}
	var v struct{ Version string }
	if err := json.Unmarshal(data, &v); err != nil {
		return nil, err
	}
	out := `{"Version":"` + v.Version + `"}`
	return &upstream.Response{Body: io.NopCloser(strings.NewReader(out)), Size: int64(len(out)), Source: res.Source}, nil
}

type supplyFixture struct {
	svc    *proxy.Service
	up     *upstreamtest.Server
	audit  *audit.Log
	sink   *sink
	now    time.Time
	store  *storagefs.Store
	client upstream.Fetcher
	later  *atomic.Int64 // nanoseconds the service's clock is ahead of now
	m      *metrics.Metrics
	warm   bool // Options.Warm of the services made after it is set
}

func gomod(path, extra string) map[string][]byte {
	return map[string][]byte{"go.mod": []byte("module " + path + "\n\ngo 1.21\n" + extra), "p.go": []byte("package p\n")}
}

func newSupplyFixture(t *testing.T, p policy.Policy, src policy.Source) *supplyFixture {
	t.Helper()
	now := time.Now()
	old, young := now.Add(-30*24*time.Hour), now.Add(-time.Hour)
	up := upstreamtest.New(t, []upstreamtest.Module{
		{Path: "example.com/m", Version: "v1.0.0", Time: old, Files: gomod("example.com/m", "")},
		{Path: "example.com/m", Version: "v1.1.0", Time: young, Files: gomod("example.com/m", "")},
		{Path: "example.com/notime", Version: "v1.0.0", Files: gomod("example.com/notime", "")},
		{Path: "example.com/pseudo", Version: "v0.0.0-20261204000000-abcdefabcdef", Time: young, Files: gomod("example.com/pseudo", "")},
		{Path: "example.com/r", Version: "v1.0.0", Time: old, Files: gomod("example.com/r", "")},
		{Path: "example.com/r", Version: "v1.1.0", Time: old, Files: gomod("example.com/r", "retract v1.0.0 // deletes the home directory\n")},
	})
	client, err := proxyclient.New(up.URL(), proxyclient.Options{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	store, err := storagefs.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	a, err := audit.Open(filepath.Join(t.TempDir(), "audit.log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	f := &supplyFixture{up: up, audit: a, sink: &sink{}, now: now, store: store, client: noTime{client}, later: new(atomic.Int64), m: metrics.New()}
	f.svc = f.service(t, p, src)
	return f
}

// service is a service of the fixture's upstream and store (another
// replica, or the same proxy restarted).
func (f *supplyFixture) service(t *testing.T, p policy.Policy, src policy.Source) *proxy.Service {
	svc := proxy.New(proxy.Options{
		Store: f.store, Upstream: f.client, TempDir: f.store.TempDir(), Policy: cachepolicy.Default(), Audit: f.audit, Metrics: f.m,
		Warm:   f.warm,
		Now:    func() time.Time { return f.now.Add(time.Duration(f.later.Load())) },
		Supply: &proxy.Supply{Policy: p, Advisories: src, Namespace: "prod", Events: f.sink, Identity: func(context.Context) string { return "ci-bot" }},
	})
	t.Cleanup(svc.Close)
	return svc
}

func (f *supplyFixture) get(t *testing.T, p string) (*proxy.Result, []byte, error) {
	t.Helper()
	res, err := f.svc.Get(context.Background(), mustParse(t, p))
	if err != nil {
		return nil, nil, err
	}
	return res, read(t, res), nil
}

func blocked(t *testing.T, err error, reason policy.Reason, text ...string) {
	t.Helper()
	var be *policy.BlockedError
	if !errors.As(err, &be) {
		t.Fatalf("err = %v, want a *policy.BlockedError", err)
	}
	if be.Reason() != reason || errclass.Of(err) != errclass.Denied {
		t.Errorf("reason %v, class %v; want %v, denied", be.Reason(), errclass.Of(err), reason)
	}
	for _, s := range text {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("%q does not say %q", err, s)
		}
	}
}

func TestCooldown(t *testing.T) {
	f := newSupplyFixture(t, policy.Policy{MinAge: 72 * time.Hour}, nil)
	if _, body, err := f.get(t, "example.com/m/@v/list"); err != nil || string(body) != "v1.0.0\n" {
		t.Errorf("list = %q, %v; want only the old version", body, err)
	}
	_, body, err := f.get(t, "example.com/m/@latest")
	if err != nil || !strings.Contains(string(body), `"Version":"v1.0.0"`) {
		t.Errorf("@latest = %s, %v; want the old version", body, err)
	}
	_, _, err = f.get(t, "example.com/pseudo/@latest")
	blocked(t, err, policy.Cooldown, "example.com/pseudo@latest", "every version is younger than the minimum age 72h0m0s")
	_, _, err = f.get(t, "example.com/m/@v/v1.1.0.zip")
	avail := f.now.Add(-time.Hour).Add(72 * time.Hour).UTC().Format(time.RFC3339)
	blocked(t, err, policy.Cooldown, "example.com/m@v1.1.0", "available from "+avail)
	if n := f.up.Requests("/example.com/m/@v/v1.1.0.zip"); n != 0 {
		t.Errorf("the refused zip was fetched upstream %d times", n)
	}
	if _, _, err := f.get(t, "example.com/m/@v/v1.1.0.mod"); err != nil {
		t.Errorf(".mod of a young version (block_mod off): %v", err)
	}
	if _, _, err := f.get(t, "example.com/m/@v/v1.0.0.zip"); err != nil {
		t.Errorf("old zip: %v", err)
	}
	if _, _, err := f.get(t, "example.com/m/@v/v1.1.0.info"); err != nil {
		t.Errorf(".info of a young version: %v", err)
	}
	evs := f.sink.events()
	if len(evs) != 1 || evs[0].Type != event.PolicyBlock || evs[0].Module != "example.com/m" || evs[0].Version != "v1.1.0" || evs[0].Namespace != "prod" || evs[0].Identity != "ci-bot" {
		t.Errorf("events = %+v, want one policy block of example.com/m@v1.1.0 in prod, by ci-bot", evs)
	}
}

// TestCooldownFirstSeen: a version that appears upstream with an old
// .info Time (a back-dated commit, an old commit tagged now) waits out
// the cooldown from when this proxy first saw it, also after a restart
// (the time is in the store); the versions of a module's first list are
// judged by their .info Time (bootstrap), also when the first request is
// a download.
func TestCooldownFirstSeen(t *testing.T) {
	p := policy.Policy{MinAge: 72 * time.Hour}
	f := newSupplyFixture(t, p, nil)
	if _, body, err := f.get(t, "example.com/m/@v/list"); err != nil || string(body) != "v1.0.0\n" {
		t.Fatalf("first list = %q, %v; want the old version", body, err)
	}
	f.up.Add(upstreamtest.Module{Path: "example.com/m", Version: "v1.2.0", Time: f.now.Add(-365 * 24 * time.Hour), Files: gomod("example.com/m", "")})
	if err := f.svc.Refresh("example.com/m"); err != nil {
		t.Fatal(err)
	}
	if _, body, err := f.get(t, "example.com/m/@v/list"); err != nil || string(body) != "v1.0.0\n" {
		t.Errorf("list = %q, %v; want the back-dated new version hidden", body, err)
	}
	_, body, err := f.get(t, "example.com/m/@latest")
	if err != nil || !strings.Contains(string(body), `"Version":"v1.0.0"`) {
		t.Errorf("@latest = %s, %v; want v1.0.0", body, err)
	}
	_, _, err = f.get(t, "example.com/m/@v/v1.2.0.zip")
	avail := f.now.Add(72 * time.Hour).UTC().Format(time.RFC3339)
	blocked(t, err, policy.Cooldown, "first seen by this proxy", "available from "+avail)

	restarted := f.service(t, p, nil)
	if _, err := restarted.Get(context.Background(), mustParse(t, "example.com/m/@v/v1.2.0.zip")); err == nil {
		t.Error("after a restart, the back-dated version is served at once")
	} else {
		blocked(t, err, policy.Cooldown, "available from "+avail)
	}

	// Bootstrap from the list when a module's first request is a download.
	if _, _, err := f.get(t, "example.com/r/@v/v1.0.0.zip"); err != nil {
		t.Errorf("an old version of a module not seen before: %v", err)
	}

	f.later.Store(int64(73 * time.Hour))
	if _, _, err := f.get(t, "example.com/m/@v/v1.2.0.zip"); err != nil {
		t.Errorf("after the cooldown from first seen: %v", err)
	}
}

// TestPolicyBlockEventsLimited: retries of a refused zip send one event
// per namespace, module@version and reason every 10 minutes; the metric
// counts every refusal.
func TestPolicyBlockEventsLimited(t *testing.T) {
	f := newSupplyFixture(t, policy.Policy{MinAge: 72 * time.Hour}, nil)
	for range 5 {
		_, _, err := f.get(t, "example.com/m/@v/v1.1.0.zip")
		blocked(t, err, policy.Cooldown)
	}
	_, _, err := f.get(t, "example.com/pseudo/@v/v0.0.0-20261204000000-abcdefabcdef.zip")
	blocked(t, err, policy.Cooldown)
	if evs := f.sink.events(); len(evs) != 2 || evs[0].Version != "v1.1.0" || evs[1].Module != "example.com/pseudo" {
		t.Errorf("events = %+v, want one for each refused version", evs)
	}
	f.later.Store(int64(10 * time.Minute))
	_, _, err = f.get(t, "example.com/m/@v/v1.1.0.zip")
	blocked(t, err, policy.Cooldown)
	if evs := f.sink.events(); len(evs) != 3 || evs[2].Version != "v1.1.0" {
		t.Errorf("events = %+v, want the block sent again after 10 minutes", evs)
	}
	families, err := f.m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	var blocks float64
	for _, fam := range families {
		if fam.GetName() == "modproxy_policy_decisions_total" {
			for _, mt := range fam.GetMetric() {
				blocks += mt.GetCounter().GetValue()
			}
		}
	}
	if blocks != 7 {
		t.Errorf("policy decisions counted: %v, want 7 (every refusal)", blocks)
	}
}

func TestCooldownBlockMod(t *testing.T) {
	f := newSupplyFixture(t, policy.Policy{MinAge: 72 * time.Hour, BlockMod: true}, nil)
	_, _, err := f.get(t, "example.com/m/@v/v1.1.0.mod")
	blocked(t, err, policy.Cooldown)
}

func TestUnknownTimeFailsClosed(t *testing.T) {
	f := newSupplyFixture(t, policy.Policy{MinAge: time.Hour}, nil)
	_, _, err := f.get(t, "example.com/notime/@v/v1.0.0.zip")
	blocked(t, err, policy.UnknownTime, "release time is unknown")
	if _, body, err := f.get(t, "example.com/notime/@v/list"); err != nil || string(body) != "" {
		t.Errorf("list = %q, %v; want empty", body, err)
	}
	_, _, err = f.get(t, "example.com/notime/@latest")
	blocked(t, err, policy.UnknownTime, "example.com/notime@latest")
}

func TestAllowFixes(t *testing.T) {
	src := fakeSource{advs: map[string][]policy.Advisory{"example.com/m": {{ID: "GO-2026-0001", Ranges: []policy.Range{{Events: []policy.Event{{Introduced: "0"}, {Fixed: "1.1.0"}}}}}}}}
	f := newSupplyFixture(t, policy.Policy{MinAge: 72 * time.Hour, AllowFixes: true}, src)
	if _, _, err := f.get(t, "example.com/m/@v/v1.1.0.zip"); err != nil {
		t.Errorf("a young fix with allow_fixes: %v", err)
	}
	if _, body, err := f.get(t, "example.com/m/@v/list"); err != nil || string(body) != "v1.0.0\nv1.1.0\n" {
		t.Errorf("list = %q, %v; want both", body, err)
	}
	evs, err := f.audit.Query(audit.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1 || evs[0].Action != "exempt" || evs[0].Target != "example.com/m@v1.1.0" || !strings.Contains(evs[0].Reason, "allow_fixes") || !strings.Contains(evs[0].Reason, "requested by ci-bot") {
		t.Errorf("audit = %+v, want the allow_fixes exemption", evs)
	}
}

func vulnSource() fakeSource {
	return fakeSource{advs: map[string][]policy.Advisory{"example.com/m": {
		{ID: "GO-2026-0001", Aliases: []string{"CVE-2026-1"}, Ranges: []policy.Range{{Events: []policy.Event{{Introduced: "0"}, {Fixed: "1.1.0"}}}}},
		{ID: "GO-2026-0002", Ranges: []policy.Range{{Events: []policy.Event{{Introduced: "1.0.0"}, {Fixed: "1.0.5"}}}}},
	}}}
}

func TestVulnerable(t *testing.T) {
	t.Run("warn", func(t *testing.T) {
		f := newSupplyFixture(t, policy.Policy{Vulnerable: policy.Warn}, vulnSource())
		res, _, err := f.get(t, "example.com/m/@v/v1.0.0.zip")
		if err != nil {
			t.Fatal(err)
		}
		if res.Policy == nil || res.Policy.Advisories != "GO-2026-0001,GO-2026-0002" {
			t.Errorf("note = %+v, want both IDs", res.Policy)
		}
		if res, _, err := f.get(t, "example.com/m/@v/v1.1.0.zip"); err != nil || res.Policy != nil {
			t.Errorf("fixed version: %+v, %v", res, err)
		}
	})
	t.Run("block", func(t *testing.T) {
		f := newSupplyFixture(t, policy.Policy{Vulnerable: policy.Block}, vulnSource())
		_, _, err := f.get(t, "example.com/m/@v/v1.0.0.zip")
		blocked(t, err, policy.Vulnerable, "GO-2026-0001 (fixed in v1.1.0)", "GO-2026-0002 (fixed in v1.0.5)", "upgrade to v1.1.0")
		if _, body, err := f.get(t, "example.com/m/@v/list"); err != nil || string(body) != "v1.0.0\nv1.1.0\n" {
			t.Errorf("list = %q, %v; want both (hide_vulnerable off)", body, err)
		}
	})
	t.Run("hide", func(t *testing.T) {
		f := newSupplyFixture(t, policy.Policy{Vulnerable: policy.Block, HideVulnerable: true}, vulnSource())
		if _, body, err := f.get(t, "example.com/m/@v/list"); err != nil || string(body) != "v1.1.0\n" {
			t.Errorf("list = %q, %v; want the fixed version only", body, err)
		}
	})
	t.Run("exempt", func(t *testing.T) {
		p := policy.Policy{Vulnerable: policy.Block, Exempt: []policy.Exemption{
			{ID: "CVE-2026-1", Reason: "not reachable"}, {Match: "example.com/m", ID: "GO-2026-0002", Reason: "mitigated"}}}
		f := newSupplyFixture(t, p, vulnSource())
		if _, _, err := f.get(t, "example.com/m/@v/v1.0.0.zip"); err != nil {
			t.Fatal(err)
		}
		evs, err := f.audit.Query(audit.Filter{})
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) != 1 || evs[0].Actor != "policy" || !strings.Contains(evs[0].Reason, "GO-2026-0001,GO-2026-0002") {
			t.Errorf("audit = %+v, want the exemptions", evs)
		}
	})
	t.Run("data unavailable", func(t *testing.T) {
		f := newSupplyFixture(t, policy.Policy{Vulnerable: policy.Block}, fakeSource{err: errors.New("database down")})
		_, _, err := f.get(t, "example.com/m/@v/v1.1.0.zip")
		var ae *proxy.AdvisoryError
		if !errors.As(err, &ae) || errclass.Of(err) != errclass.Unavailable {
			t.Errorf("err = %v (%v), want an AdvisoryError, unavailable", err, errclass.Of(err))
		}
		g := newSupplyFixture(t, policy.Policy{Vulnerable: policy.Warn}, fakeSource{err: errors.New("database down")})
		if _, _, err := g.get(t, "example.com/m/@v/v1.0.0.zip"); err != nil {
			t.Errorf("warn with data unavailable: %v", err)
		}
	})
}

func TestRetracted(t *testing.T) {
	f := newSupplyFixture(t, policy.Policy{Retracted: policy.Block}, nil)
	_, _, err := f.get(t, "example.com/r/@v/v1.0.0.zip")
	blocked(t, err, policy.Retracted, "deletes the home directory")
	if _, _, err := f.get(t, "example.com/r/@v/v1.1.0.zip"); err != nil {
		t.Errorf("not retracted: %v", err)
	}
	if _, body, err := f.get(t, "example.com/r/@v/list"); err != nil || string(body) != "v1.0.0\nv1.1.0\n" {
		t.Errorf("list = %q, %v; retracted versions stay listed", body, err)
	}
	g := newSupplyFixture(t, policy.Policy{Retracted: policy.Warn}, nil)
	res, _, err := g.get(t, "example.com/r/@v/v1.0.0.zip")
	if err != nil || res.Policy == nil || res.Policy.Retracted != "deletes the home directory" {
		t.Errorf("warn: %+v, %v", res, err)
	}
}

// TestRetractedByHiddenVersion: under a cooldown, the retractions are
// those of the highest version the list shows; a new release the
// cooldown hides does not retract the versions that are served.
func TestRetractedByHiddenVersion(t *testing.T) {
	f := newSupplyFixture(t, policy.Policy{Retracted: policy.Block, MinAge: 72 * time.Hour}, nil)
	f.up.Add(upstreamtest.Module{Path: "example.com/r", Version: "v1.2.0", Time: f.now.Add(-time.Hour),
		Files: gomod("example.com/r", "retract [v1.0.0, v1.1.0] // everything before is broken\n")})
	if _, _, err := f.get(t, "example.com/r/@v/v1.1.0.zip"); err != nil {
		t.Errorf("retracted only by a version the cooldown hides: %v", err)
	}
	_, _, err := f.get(t, "example.com/r/@v/v1.0.0.zip")
	blocked(t, err, policy.Retracted, "deletes the home directory")
}

// TestIncompatibleNotLatest: as the go command does, +incompatible
// versions are not the latest when the highest compatible version has a
// go.mod: neither for @latest's fallback nor as the holder of the
// retractions.
func TestIncompatibleNotLatest(t *testing.T) {
	f := newSupplyFixture(t, policy.Policy{Retracted: policy.Block, MinAge: 72 * time.Hour}, nil)
	old := f.now.Add(-30 * 24 * time.Hour)
	legacy := map[string][]byte{"p.go": []byte("package p\n")}
	for _, m := range []upstreamtest.Module{
		{Path: "example.com/inc", Version: "v1.0.0", Time: old, Files: gomod("example.com/inc", "")},
		{Path: "example.com/inc", Version: "v1.1.0", Time: old, Files: gomod("example.com/inc", "retract v1.0.0 // broken\n")},
		{Path: "example.com/inc", Version: "v2.0.0+incompatible", Time: old, Files: legacy},
		{Path: "example.com/inc", Version: "v3.0.0+incompatible", Time: f.now.Add(-time.Hour), Files: legacy},
	} {
		f.up.Add(m)
	}
	_, body, err := f.get(t, "example.com/inc/@latest")
	if err != nil || !strings.Contains(string(body), `"Version":"v1.1.0"`) {
		t.Errorf("@latest = %s, %v; want v1.1.0, not the +incompatible version", body, err)
	}
	_, _, err = f.get(t, "example.com/inc/@v/v1.0.0.zip")
	blocked(t, err, policy.Retracted, "broken")
}

// TestPolicyOffServesAsBefore: a policy that checks nothing changes
// nothing (no facts are read).
func TestPolicyOffServesAsBefore(t *testing.T) {
	f := newSupplyFixture(t, policy.Policy{Exempt: []policy.Exemption{{Match: "x", Reason: "r"}}}, fakeSource{err: errors.New("never asked")})
	if _, _, err := f.get(t, "example.com/m/@v/v1.1.0.zip"); err != nil {
		t.Fatal(err)
	}
	if n := f.up.Requests("/example.com/m/@v/v1.1.0.info"); n != 0 {
		t.Errorf(".info fetched %d times with the policy off", n)
	}
}

// counting records the most .info fetches in flight at once; the first
// 8 wait until all 8 are in flight (so a serial reader would stall, and
// fail the test, instead of passing slowly).
type counting struct {
	f        upstream.Fetcher
	mu       sync.Mutex
	now, max int
	total    int
	full     chan struct{} // closed when the 8th fetch arrives
}

func (c *counting) Fetch(ctx context.Context, path string) (*upstream.Response, error) {
	if !strings.HasSuffix(path, ".info") {
		return c.f.Fetch(ctx, path)
	}
	c.mu.Lock()
	c.now++
	c.total++
	c.max = max(c.max, c.now)
	first := c.total <= 8
	if c.total == 8 {
		close(c.full)
	}
	c.mu.Unlock()
	defer func() { c.mu.Lock(); c.now--; c.mu.Unlock() }()
	if first {
		select {
		case <-c.full:
		case <-time.After(10 * time.Second):
			return nil, errors.New("the first 8 .info reads were not in flight together")
		}
	}
	return c.f.Fetch(ctx, path)
}

// TestListTimesBounded: a list of many versions under a cooldown reads
// their .info files concurrently but at most 8 at a time, once each (a
// second list reads none).
func TestListTimesBounded(t *testing.T) {
	now := time.Now()
	var mods []upstreamtest.Module
	var want strings.Builder
	for i := range 40 {
		v := "v1." + strconv.Itoa(i) + ".0"
		tm := now.Add(-30 * 24 * time.Hour)
		if i%10 == 9 {
			tm = now.Add(-time.Minute)
		} else {
			want.WriteString(v + "\n")
		}
		mods = append(mods, upstreamtest.Module{Path: "example.com/many", Version: v, Time: tm, Files: gomod("example.com/many", "")})
	}
	up := upstreamtest.New(t, mods)
	client, err := proxyclient.New(up.URL(), proxyclient.Options{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	store, err := storagefs.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	c := &counting{f: client, full: make(chan struct{})}
	pre := newBlockingPrefetcher()
	pre.started = make(chan string, 64)
	close(pre.release)
	svc := proxy.New(proxy.Options{Store: store, Upstream: c, TempDir: store.TempDir(), Policy: cachepolicy.Default(), Verifier: pre,
		Now: func() time.Time { return now }, Supply: &proxy.Supply{Policy: policy.Policy{MinAge: time.Hour}}})
	t.Cleanup(svc.Close)
	for range 2 {
		res, err := svc.Get(context.Background(), mustParse(t, "example.com/many/@v/list"))
		if err != nil {
			t.Fatal(err)
		}
		if got := sortedLines(read(t, res)); got != sortedLines([]byte(want.String())) {
			t.Errorf("list = %q, want %q", got, want.String())
		}
	}
	if c.total != 40 || c.max != 8 {
		t.Errorf(".info fetches: %d in all, at most %d at once; want 40, 8", c.total, c.max)
	}
	// The times of a list's versions start no checksum database
	// prefetches; a download does.
	res, err := svc.Get(context.Background(), mustParse(t, "example.com/many/@v/v1.0.0.zip"))
	if err != nil {
		t.Fatal(err)
	}
	res.Close()
	if mv := waitStarted(t, pre); mv != "example.com/many@v1.0.0" {
		t.Errorf("prefetched %s first, want the downloaded example.com/many@v1.0.0", mv)
	}
}

func sortedLines(b []byte) string {
	l := strings.Fields(string(b))
	slices.SortFunc(l, semver.Compare)
	return strings.Join(l, "\n")
}

// TestCooldownCacheOnly: under a cooldown, a version not in the cache is
// answered as missing in cache-only mode (404, so that "," lists move
// on), not refused.
func TestCooldownCacheOnly(t *testing.T) {
	f := newSupplyFixture(t, policy.Policy{MinAge: time.Hour}, nil)
	_, err := f.svc.Get(proxy.CacheOnly(context.Background()), mustParse(t, "example.com/m/@v/v1.0.0.zip"))
	if errclass.Of(err) != errclass.NotExist {
		t.Errorf("cache-only miss: %v (%v), want not-exist", err, errclass.Of(err))
	}
	if _, _, err := f.get(t, "example.com/m/@v/v1.0.0.zip"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Get(proxy.CacheOnly(context.Background()), mustParse(t, "example.com/m/@v/v1.0.0.zip")); err != nil {
		t.Errorf("cache-only hit: %v", err)
	}
}

// TestRetractionsUnreadable: a list that cannot be read does not fail a
// download under retracted = "block" (the go command reads retractions
// itself); once it can be read, the retracted version is refused.
func TestRetractionsUnreadable(t *testing.T) {
	f := newSupplyFixture(t, policy.Policy{Retracted: policy.Block}, nil)
	f.up.SetFault("example.com/r/@v/list", upstreamtest.Fault{Kind: upstreamtest.ServerError, Times: 1})
	if _, _, err := f.get(t, "example.com/r/@v/v1.0.0.zip"); err != nil {
		t.Errorf("with the list unreadable: %v", err)
	}
	_, _, err := f.get(t, "example.com/r/@v/v1.0.0.zip")
	blocked(t, err, policy.Retracted)
}

// warmSupplyFixture is newSupplyFixture with warming on.
func warmSupplyFixture(t *testing.T, p policy.Policy) *supplyFixture {
	t.Helper()
	f := newSupplyFixture(t, p, nil)
	f.warm = true
	f.svc = f.service(t, p, nil)
	return f
}

// TestWarmRespectsPolicy: warming does not fetch a zip the policy would
// refuse a client (here a version inside the cooldown), and still warms
// the zip of a version that passes.
func TestWarmRespectsPolicy(t *testing.T) {
	f := warmSupplyFixture(t, policy.Policy{MinAge: 24 * time.Hour})
	for _, v := range []string{"v1.0.0", "v1.1.0"} {
		if _, _, err := f.get(t, "example.com/m/@v/"+v+".mod"); err != nil {
			t.Fatal(err)
		}
	}
	proxy.WaitWarmups(f.svc)
	if n := f.up.Requests("example.com/m/@v/v1.1.0.zip"); n != 0 {
		t.Errorf("the zip of a version inside the cooldown was fetched %d times by warming, want none", n)
	}
	if n := f.up.Requests("example.com/m/@v/v1.0.0.zip"); n != 1 {
		t.Errorf("the zip of an old version was fetched %d times by warming, want 1", n)
	}
	_, _, err := f.get(t, "example.com/m/@v/v1.1.0.zip")
	blocked(t, err, policy.Cooldown)
}

// TestWarmNotFromPolicyReads: the go.mod the policy reads for a module's
// retractions (its highest version's) does not warm that version's zip.
func TestWarmNotFromPolicyReads(t *testing.T) {
	f := warmSupplyFixture(t, policy.Policy{Retracted: policy.Warn})
	if _, _, err := f.get(t, "example.com/r/@v/v1.0.0.zip"); err != nil {
		t.Fatal(err)
	}
	proxy.WaitWarmups(f.svc)
	if n := f.up.Requests("example.com/r/@v/v1.1.0.mod"); n != 1 {
		t.Fatalf("the latest go.mod was read %d times, want 1 (the retractions)", n)
	}
	if n := f.up.Requests("example.com/r/@v/v1.1.0.zip"); n != 0 {
		t.Errorf("the policy's read of the latest go.mod warmed its zip (%d fetches), want none", n)
	}
}
