package app_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modproxy/modproxy/internal/app"
	"github.com/modproxy/modproxy/internal/config"
	"github.com/modproxy/modproxy/internal/event"
	"github.com/modproxy/modproxy/internal/policy"
	"github.com/modproxy/modproxy/internal/upstream/upstreamtest"
)

// advisories is a fake policy.Source.
type advisories map[string][]policy.Advisory

func (a advisories) Advisories(_ context.Context, mod string) ([]policy.Advisory, error) {
	return a[mod], nil
}

type eventLog struct {
	mu  sync.Mutex
	evs []event.Event
}

func (l *eventLog) Emit(e event.Event) { l.mu.Lock(); l.evs = append(l.evs, e); l.mu.Unlock() }

// vulnServer serves testMods with GO-2026-0001 affecting
// example.com/leaky below v1.3.0: the root warns, namespace prod blocks,
// reviewed blocks with an exemption of the advisory's alias, inherits has
// the root's policy.
func vulnServer(t *testing.T) (*harness, *eventLog) {
	t.Helper()
	up := upstreamtest.New(t, testMods(), upstreamtest.WithoutSumDB())
	src := advisories{"example.com/leaky": {{ID: "GO-2026-0001", Aliases: []string{"CVE-2026-0001"},
		Ranges: []policy.Range{{Events: []policy.Event{{Introduced: "0"}, {Fixed: "1.3.0"}}}}}}}
	cfg := config.Default()
	cfg.CacheDir = t.TempDir()
	cfg.SumDB = []string{"off"}
	cfg.Verify.Private = []string{}
	cfg.Resilience.ProbeInterval = 0
	cfg.Upstream = up.URL()
	cfg.Policy.Vulnerable = "warn"
	cfg.Namespaces = []config.Namespace{
		{Name: "prod", Policy: &config.Policy{Vulnerable: "block"}},
		{Name: "reviewed", Policy: &config.Policy{Vulnerable: "block", Exempt: []config.Exemption{{ID: "CVE-2026-0001", Reason: "not reachable from our code"}}}},
		{Name: "inherits"},
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	evs := &eventLog{}
	srv, err := app.New(cfg, slog.New(slog.DiscardHandler), app.Info{Version: "test"}, app.WithAdvisories(src), app.WithEvents(evs))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	return &harness{srv: srv, http: hs}, evs
}

// TestVulnerablePolicyPerNamespace: the root warns (header), a namespace
// blocks (403 naming the advisory and the fix), another blocks with an
// exemption (200); blocks are events and every decision is counted.
func TestVulnerablePolicyPerNamespace(t *testing.T) {
	h, evs := vulnServer(t)
	const zip = "/example.com/leaky/@v/v1.2.0.zip"
	for _, ns := range []string{"", "/inherits"} {
		code, _, hdr := h.get(t, ns+zip)
		if code != 200 || hdr.Get("X-Modproxy-Advisory") != "GO-2026-0001" {
			t.Errorf("%s (warn): %d, advisory header %q", ns+zip, code, hdr.Get("X-Modproxy-Advisory"))
		}
	}
	code, body, _ := h.get(t, "/prod"+zip)
	if code != 403 || body != "example.com/leaky@v1.2.0 is blocked by this proxy's policy: known vulnerabilities GO-2026-0001 (fixed in v1.3.0); upgrade to v1.3.0 or later\n" {
		t.Errorf("prod: %d %q", code, body)
	}
	if code, _, hdr := h.get(t, "/prod/example.com/leaky/@v/v1.3.0.zip"); code != 200 || hdr.Get("X-Modproxy-Advisory") != "" {
		t.Errorf("prod, the fixed version: %d %v", code, hdr)
	}
	if code, body, _ := h.get(t, "/prod/example.com/leaky/@v/list"); code != 200 || body != "v1.2.0\nv1.3.0\n" {
		t.Errorf("prod list: %d %q (vulnerable versions stay listed)", code, body)
	}
	if code, _, hdr := h.get(t, "/reviewed"+zip); code != 200 || hdr.Get("X-Modproxy-Advisory") != "" {
		t.Errorf("reviewed (exempt): %d %v", code, hdr)
	}
	evs.mu.Lock()
	if len(evs.evs) != 1 || evs.evs[0].Type != event.PolicyBlock || evs.evs[0].Namespace != "prod" || !strings.Contains(evs.evs[0].Reason, "GO-2026-0001") {
		t.Errorf("events %+v, want the prod block", evs.evs)
	}
	evs.mu.Unlock()
	_, scrape, _ := h.get(t, "/metrics")
	for name, want := range map[string]string{
		`modproxy_policy_decisions_total{action="warn",namespace="",reason="vulnerable"}`:           "1",
		`modproxy_policy_decisions_total{action="warn",namespace="inherits",reason="vulnerable"}`:   "1",
		`modproxy_policy_decisions_total{action="block",namespace="prod",reason="vulnerable"}`:      "1",
		`modproxy_policy_decisions_total{action="exempt",namespace="reviewed",reason="vulnerable"}`: "1",
		`modproxy_policy_decisions_total{action="block",namespace="prod",reason="cooldown"}`:        "0",
	} {
		if got, ok := sample(scrape, name); got != want {
			t.Errorf("%s = %q (present %v), want %s", name, got, ok, want)
		}
	}
}

// TestPolicyConfigErrors: app refuses what config cannot check alone.
func TestPolicyKeyErrors(t *testing.T) {
	cfg := config.Default()
	cfg.CacheDir = t.TempDir()
	cfg.Upstream = "off"
	cfg.SumDB = []string{"off"}
	cfg.Verify.Private = []string{}
	cfg.Policy.Exempt = []config.Exemption{{ID: "GO-2026-0001", Reason: "r", Expires: "never"}}
	_, err := app.New(cfg, slog.New(slog.DiscardHandler), app.Info{Version: "test"})
	if err == nil || !strings.Contains(err.Error(), "policy.exempt[0].expires") {
		t.Errorf("New = %v, want an error naming policy.exempt[0].expires", err)
	}
}

// TestVulnerableNeedsData: a policy that needs vulnerability data on a
// server that has none (no vuln.source, nothing imported) is refused at
// start, naming the key, instead of checking nothing.
func TestVulnerableNeedsData(t *testing.T) {
	for key, set := range map[string]func(*config.Config){
		"policy.vulnerable": func(c *config.Config) { c.Policy.Vulnerable = "block" },
		"namespace[0].policy.allow_fixes": func(c *config.Config) {
			c.Namespaces = []config.Namespace{{Name: "prod", Policy: &config.Policy{Vulnerable: "off", Retracted: "off", MinAge: config.Duration(time.Hour), AllowFixes: true}}}
		},
	} {
		cfg := config.Default()
		cfg.CacheDir = t.TempDir()
		cfg.Upstream = "off"
		cfg.SumDB = []string{"off"}
		cfg.Verify.Private = []string{}
		set(&cfg)
		srv, err := app.New(cfg, slog.New(slog.DiscardHandler), app.Info{Version: "test"})
		var ce *config.Error
		if !errors.As(err, &ce) || ce.Key != key || !strings.Contains(err.Error(), "vuln.source") {
			t.Errorf("New = %v, want an error for %s naming vuln.source", err, key)
		}
		if srv != nil {
			srv.Close()
		}
	}
}

// TestVulnerablePolicyGoCommand: the real go command downloads the
// vulnerable version through the warning root and the exempting
// namespace, and fails with the reason through the blocking one.
func TestVulnerablePolicyGoCommand(t *testing.T) {
	h, _ := vulnServer(t)
	gocache, err := exec.Command("go", "env", "GOCACHE").Output()
	if err != nil {
		t.Fatal(err)
	}
	download := func(ns string) (string, error) {
		dir := t.TempDir()
		cmd := exec.Command("go", "mod", "download", "example.com/leaky@v1.2.0")
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "HOME="+dir, "GOPATH="+filepath.Join(dir, "gopath"), "GOMODCACHE="+filepath.Join(dir, "modcache"),
			"GOCACHE="+strings.TrimSpace(string(gocache)), "GOPROXY="+h.http.URL+ns, "GOSUMDB=off", "GOFLAGS=-modcacherw",
			"GONOSUMDB=", "GOPRIVATE=", "GONOPROXY=", "GOTOOLCHAIN=local", "GOTELEMETRY=off", "GOENV=off", "GOWORK=off")
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	for _, ns := range []string{"", "/reviewed"} {
		if out, err := download(ns); err != nil {
			t.Errorf("GOPROXY=...%s: %v\n%s", ns, err, out)
		}
	}
	out, err := download("/prod")
	if err == nil || !strings.Contains(out, "403 Forbidden") || !strings.Contains(out, "known vulnerabilities GO-2026-0001 (fixed in v1.3.0); upgrade to v1.3.0 or later") {
		t.Errorf("GOPROXY=.../prod: %v\n%s", err, out)
	}
}
