package admin_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/modproxy/modproxy/internal/admin"
	"github.com/modproxy/modproxy/internal/audit"
)

// call records one mutating Backend call.
type call struct {
	Method string
	Actor  string
	Arg    any
}

// fakeBackend holds known numbers. Setting err makes every method fail
// with it.
type fakeBackend struct {
	mu      sync.Mutex
	now     time.Time
	err     error
	calls   []call
	offline bool
	pins    admin.Pins
	lastQ   string
	lastLim int
	lastAQ  admin.AuditQuery
}

func newFake() *fakeBackend {
	return &fakeBackend{
		now: time.Now().UTC().Truncate(time.Minute),
		pins: admin.Pins{
			Patterns: []string{"example.com/pinned/*", "example.com/lib@v1.2.3"},
			Sets:     []string{"/srv/app/go.sum"},
		},
	}
}

func (f *fakeBackend) fail() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}

func (f *fakeBackend) record(method, actor string, arg any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, call{method, actor, arg})
}

func (f *fakeBackend) Calls() []call {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]call(nil), f.calls...)
}

const (
	gib = int64(1) << 30
	mib = int64(1) << 20
)

func (f *fakeBackend) Status(ctx context.Context) (admin.Status, error) {
	if err := f.fail(); err != nil {
		return admin.Status{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return admin.Status{
		Version:  "v1.4.0-test",
		Started:  f.now.Add(-26 * time.Hour),
		Offline:  f.offline,
		Verify:   true,
		Listen:   "127.0.0.1:3000",
		CacheDir: "/var/cache/modproxy",
		Store: admin.StoreStats{
			Bytes:    3*gib + 512*mib, // 3.5 GiB
			Objects:  48213,
			Versions: 16071,
			CapBytes: 5 * gib,
		},
		Config:   map[string]any{"listen": "127.0.0.1:3000", "upstream": "https://proxy.example.test", "admin_token": "[redacted]"},
		GCPolicy: map[string]any{"max_bytes": 5 * gib, "max_idle": "720h", "keep_newest": 3},
		LastGC: &admin.GCResult{
			Started: f.now.Add(-2 * time.Hour), Finished: f.now.Add(-2*time.Hour + 3*time.Second),
			Evicted: 42, Bytes: 310 * mib, TrashID: "gc-20240501-1",
		},
		TrashSize: 310 * mib,
	}, nil
}

func (f *fakeBackend) Upstreams(ctx context.Context) ([]admin.Upstream, error) {
	if err := f.fail(); err != nil {
		return nil, err
	}
	return []admin.Upstream{
		{Name: "https://proxy.example.test", Breaker: "closed"},
		{Name: "https://mirror.example.test", Breaker: "open"},
		{Name: "https://backup.example.test", Breaker: "half-open"},
		{Name: "direct", Breaker: "available"},
	}, nil
}

// series is six hours of per-minute buckets with a deterministic shape.
func (f *fakeBackend) series() []admin.Bucket {
	const n = 360
	start := f.now.Add(-n * time.Minute)
	out := make([]admin.Bucket, n)
	for i := range out {
		req := int64(40 + (i*37)%53 + 30*((i/45)%3))
		miss := int64(1 + (i*7)%9)
		out[i] = admin.Bucket{
			Start:    start.Add(time.Duration(i) * time.Minute),
			Requests: req,
			Hits:     req - miss,
			Misses:   miss,
			Bytes:    req * (180*1024 + int64(i%17)*4096),
			// Errors and upstream fetches; times in quarter seconds, so that
			// sums are exact in any order.
			Errors:             int64(2 * boolInt(i%29 == 0)),
			UpstreamFetches:    miss,
			UpstreamErrors:     int64(boolInt(i%41 == 0)),
			UpstreamSeconds:    0.25 * float64(miss*int64(1+i%5)),
			UpstreamMaxSeconds: 0.25 * float64(1+i%13),
		}
	}
	return out
}

func (f *fakeBackend) Stats(ctx context.Context) (admin.Stats, error) {
	if err := f.fail(); err != nil {
		return admin.Stats{}, err
	}
	return admin.Stats{
		HitRatio: map[string]float64{"5m": 0.8125, "1h": 0.9, "24h": 0.9375},
		Series:   f.series(),
		TopBySize: []admin.ModuleStat{
			{Module: "github.com/aws/aws-sdk-go", Bytes: 1200 * mib, Hits: 310, Versions: 12},
			{Module: "k8s.io/client-go", Bytes: 640 * mib, Hits: 920, Versions: 8},
			{Module: "golang.org/x/tools", Bytes: 210 * mib, Hits: 1500, Versions: 6},
		},
		TopByHits: []admin.ModuleStat{
			{Module: "golang.org/x/tools", Bytes: 210 * mib, Hits: 1500, Versions: 6},
			{Module: "k8s.io/client-go", Bytes: 640 * mib, Hits: 920, Versions: 8},
			{Module: "github.com/<script>alert(1)</script>/x", Bytes: mib, Hits: 7, Versions: 1},
		},
		TotalHits:  1234567,
		TotalMiss:  89012,
		TotalBytes: 987 * gib,
	}, nil
}

func (f *fakeBackend) Modules(ctx context.Context, query string, limit int) ([]admin.Module, error) {
	if err := f.fail(); err != nil {
		return nil, err
	}
	f.mu.Lock()
	f.lastQ, f.lastLim = query, limit
	f.mu.Unlock()
	all := []admin.Module{
		{Path: "golang.org/x/tools", Versions: []admin.Version{
			{Version: "v0.21.0", Bytes: 4*mib + 12345, ZipHash: "h1:QW1rZ0l4T2hQaGFzaDEyMzQ1Njc4OTBhYmNkZWZnaGk=", ModHash: "h1:bW9kaGFzaDAxMjM0NTY3ODlhYmNkZWZnaGlqa2xtbm8=",
				Stored: f.now.Add(-72 * time.Hour), LastAccess: f.now.Add(-5 * time.Minute), Hits: 812, Pinned: true, Files: []string{"info", "mod", "zip"}},
			{Version: "v0.20.0", Bytes: 4*mib - 999, ZipHash: "h1:b2xkZXJ6aXBoYXNoMDEyMzQ1Njc4OWFiY2RlZmdoaWo=", ModHash: "h1:b2xkZXJtb2RoYXNoMDEyMzQ1Njc4OWFiY2RlZmdoaWo=",
				Stored: f.now.Add(-900 * time.Hour), LastAccess: f.now.Add(-200 * time.Hour), Hits: 17, Files: []string{"info", "mod", "zip"}},
		}},
		{Path: "github.com/BurntSushi/toml", Versions: []admin.Version{
			{Version: "v1.3.2", Bytes: 371 * 1024, ZipHash: "h1:dG9tbHppcGhhc2gwMTIzNDU2Nzg5YWJjZGVmZ2hpams=", ModHash: "h1:dG9tbG1vZGhhc2gwMTIzNDU2Nzg5YWJjZGVmZ2hpams=",
				Stored: f.now.Add(-30 * time.Hour), LastAccess: f.now.Add(-3 * time.Hour), Hits: 64, Files: []string{"info", "mod", "zip"}},
		}},
	}
	var out []admin.Module
	for _, m := range all {
		if strings.HasPrefix(m.Path, query) && len(out) < limit {
			out = append(out, m)
		}
	}
	return out, nil
}

func (f *fakeBackend) GCPlan(ctx context.Context) (admin.GCPlan, error) {
	if err := f.fail(); err != nil {
		return admin.GCPlan{}, err
	}
	return admin.GCPlan{
		Created: f.now,
		Items: []admin.GCPlanItem{
			{Module: "golang.org/x/tools", Version: "v0.20.0", Bytes: 4*mib - 999, Reason: "max-idle"},
			{Module: "github.com/aws/aws-sdk-go", Version: "v1.40.0", Bytes: 95 * mib, Reason: "size-cap"},
		},
		Bytes:       99*mib - 999,
		StoreBytes:  3*gib + 512*mib,
		AfterBytes:  3*gib + 413*mib + 999,
		PinnedKept:  5,
		PolicyNotes: []string{"size cap 5 GiB: under the cap", "max idle 720h"},
	}, nil
}

func (f *fakeBackend) GCRun(ctx context.Context, actor string) (admin.GCResult, error) {
	if err := f.fail(); err != nil {
		return admin.GCResult{}, err
	}
	f.record("GCRun", actor, nil)
	return admin.GCResult{Started: f.now, Finished: f.now.Add(time.Second), Evicted: 2, Bytes: 99*mib - 999, TrashID: "gc-1"}, nil
}

func (f *fakeBackend) Purge(ctx context.Context, actor string, req admin.PurgeRequest) (admin.PurgeResult, error) {
	if err := f.fail(); err != nil {
		return admin.PurgeResult{}, err
	}
	if req.Versions == "not-a-range" {
		return admin.PurgeResult{}, fmt.Errorf("%w: invalid version range %q", admin.ErrBadRequest, req.Versions)
	}
	if req.Module == "example.com/unknown" {
		return admin.PurgeResult{}, fmt.Errorf("%w: module %s is not cached", admin.ErrNotFound, req.Module)
	}
	f.record("Purge", actor, req)
	return admin.PurgeResult{Versions: []string{"v1.0.0"}, Bytes: 1234, TrashID: "purge-1", Blocked: req.Block}, nil
}

func (f *fakeBackend) Trash(ctx context.Context) ([]admin.TrashEntry, error) {
	if err := f.fail(); err != nil {
		return nil, err
	}
	return []admin.TrashEntry{{
		ID: "gc-20240501-1", Created: f.now.Add(-2 * time.Hour), Reason: "gc: size-cap",
		Versions: []string{"github.com/aws/aws-sdk-go@v1.39.0", "github.com/aws/aws-sdk-go@v1.38.0"},
		Bytes:    310 * mib, Expires: f.now.Add(7*24*time.Hour - 2*time.Hour),
	}}, nil
}

func (f *fakeBackend) Restore(ctx context.Context, actor, id string) (admin.RestoreResult, error) {
	if err := f.fail(); err != nil {
		return admin.RestoreResult{}, err
	}
	if id != "gc-20240501-1" {
		return admin.RestoreResult{}, fmt.Errorf("%w: trash batch %q", admin.ErrNotFound, id)
	}
	f.record("Restore", actor, id)
	return admin.RestoreResult{Restored: []string{"github.com/aws/aws-sdk-go@v1.39.0"}, Bytes: 310 * mib}, nil
}

func (f *fakeBackend) Pins(ctx context.Context) (admin.Pins, error) {
	if err := f.fail(); err != nil {
		return admin.Pins{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return admin.Pins{
		Patterns: append([]string(nil), f.pins.Patterns...),
		Sets:     append([]string(nil), f.pins.Sets...),
	}, nil
}

func (f *fakeBackend) AddPin(ctx context.Context, actor string, p admin.PinRequest) error {
	if err := f.fail(); err != nil {
		return err
	}
	f.record("AddPin", actor, p)
	return nil
}

func (f *fakeBackend) RemovePin(ctx context.Context, actor string, p admin.PinRequest) error {
	if err := f.fail(); err != nil {
		return err
	}
	if p.Pattern == "example.com/nope" {
		return fmt.Errorf("%w: no pin %q", admin.ErrNotFound, p.Pattern)
	}
	f.record("RemovePin", actor, p)
	return nil
}

func (f *fakeBackend) Audit(ctx context.Context, q admin.AuditQuery) ([]audit.Event, error) {
	if err := f.fail(); err != nil {
		return nil, err
	}
	f.mu.Lock()
	f.lastAQ = q
	f.mu.Unlock()
	return []audit.Event{
		{Time: f.now.Add(-10 * time.Minute), Actor: "admin@127.0.0.1", Action: "purge", Target: "example.com/leaky@v1.0.1", Reason: "leaked a secret <b>key</b>", Bytes: 52341},
		{Time: f.now.Add(-2 * time.Hour), Actor: "gc", Action: "evict", Target: "github.com/aws/aws-sdk-go@v1.39.0", Reason: "size-cap", Bytes: 155 * mib},
		{Time: f.now.Add(-3 * time.Hour), Actor: "verifier", Action: "reject", Target: "example.com/bad@v0.1.0", Reason: "checksum mismatch",
			Hashes: map[string]string{"got": "h1:AAAA", "want": "h1:BBBB"}},
	}, nil
}

func (f *fakeBackend) SetOffline(ctx context.Context, actor string, on bool) error {
	if err := f.fail(); err != nil {
		return err
	}
	f.mu.Lock()
	f.offline = on
	f.mu.Unlock()
	f.record("SetOffline", actor, on)
	return nil
}

var errBoom = errors.New("database is locked: /var/cache/modproxy/index.db (secret detail)")

var _ admin.Backend = (*fakeBackend)(nil)

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func (f *fakeBackend) Clients(ctx context.Context) ([]admin.ClientTraffic, error) {
	if err := f.fail(); err != nil {
		return nil, err
	}
	return []admin.ClientTraffic{
		{Identity: "ci", Requests: 1200, Bytes: 310 * mib, LastSeen: f.now.Add(-time.Minute), LastModule: "corp.example.com/team-a/lib"},
		{Identity: "anonymous", Requests: 3, Bytes: 2048, LastSeen: f.now.Add(-time.Hour), LastModule: "example.com/a"},
	}, nil
}
