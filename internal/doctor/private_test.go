package doctor

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/modproxy/modproxy/internal/upstream/upstreamtest"
)

// publicEnv serves srv under the public proxy name mirror.test (testDialer
// sends it to loopback) and returns a go env using it the way the go
// command's defaults do, with the defaults themselves.
func publicEnv(t *testing.T, srv *upstreamtest.Server) (env, defaults map[string]string) {
	env = baseEnv(t)
	name, vkey := srv.SumDB()
	port := strings.TrimPrefix(srv.URL(), "http://127.0.0.1:")
	env["GOPROXY"] = "http://mirror.test:" + port + ",direct"
	env["GOSUMDB"] = vkey
	return env, map[string]string{"GOPROXY": "https://mirror.test,direct", "GOSUMDB": name}
}

// requested reports whether srv saw a request whose path contains s.
func requested(srv *upstreamtest.Server, s string) bool {
	for _, l := range srv.Log() {
		if strings.Contains(l, s) {
			return true
		}
	}
	return false
}

func privateOptions(t *testing.T, env, defaults map[string]string, mod string) Options {
	o := netOptions(t, env)
	o.DialContext = testDialer
	o.GoEnvWith = fakeGoEnvWith(defaults, env)
	o.LookupIP = fakeResolver(map[string][]string{"corp.example.com": nil, "git.example.com": {"10.1.2.3", "fd00::1"}})
	var err error
	if o.Module, err = ParseModule(mod); err != nil {
		t.Fatal(err)
	}
	return o
}

// TestPrivateModuleNeverSentToPublicServices is the reported case: with
// GOPRIVATE unset, --module corp.example.com/team/lib@v1.2.3 found nothing
// and doctor's own probe sent the path to the public proxy.
func TestPrivateModuleNeverSentToPublicServices(t *testing.T) {
	srv := upstreamtest.New(t, testModules())
	env, defaults := publicEnv(t, srv)
	rep := mustRun(t, privateOptions(t, env, defaults, "corp.example.com/team/lib@v1.2.3"))
	if requested(srv, "corp.example.com") {
		t.Errorf("the private path was sent to the public proxy: %v", srv.Log())
	}
	checkExpect(t, rep, []expect{
		{IDPrivateModule, Problem, "does not resolve here"},
		{IDPrivateModule, Problem, "the public proxy http://mirror.test:"},
		{IDPrivateModule, Problem, "public checksum database sum.test.example"},
		{IDPrivateModule, Problem, "go env -w GOPRIVATE=corp.example.com"},
		{IDModuleRoute, OK, "never sends such a path to a public proxy"},
		{IDPublic, OK, "proxies mirror.test and checksum database sum.test.example"},
	})
	if !rep.HasProblems() {
		t.Error("no problem reported")
	}

	// Private addresses, and names that are never public, look private too.
	for mod, why := range map[string]string{
		"git.example.com/team/lib@v1.0.0": "resolves only to private addresses (10.1.2.3)",
		"git.corp.internal/lib@v1.0.0":    "under .internal",
		"192.168.1.10/team/lib@v1.0.0":    "address of a private network",
	} {
		srv.ResetCounts()
		rep := mustRun(t, privateOptions(t, env, defaults, mod))
		checkExpect(t, rep, []expect{{IDPrivateModule, Problem, why}})
		if p, _, _ := strings.Cut(mod, "@"); requested(srv, p) {
			t.Errorf("%s sent to the public proxy", mod)
		}
	}

	// GOPRIVATE covers it: nothing goes to the public services, no problem.
	env["GOPRIVATE"], env["GONOPROXY"], env["GONOSUMDB"] = "corp.example.com", "corp.example.com", "corp.example.com"
	rep = mustRun(t, privateOptions(t, env, defaults, "corp.example.com/team/lib@v1.2.3"))
	checkExpect(t, rep, []expect{{IDPrivateModule, OK, `matches the GOPRIVATE pattern "corp.example.com"`}})
	absent(t, rep, IDPrivateModule, Problem)
	if requested(srv, "corp.example.com") {
		t.Errorf("the private path was sent: %v", srv.Log())
	}

	// GONOSUMDB alone: still requested from the public proxy, a leak; and
	// doctor does not send it either.
	env["GOPRIVATE"], env["GONOPROXY"], env["GONOSUMDB"] = "", "", "corp.example.com"
	rep = mustRun(t, privateOptions(t, env, defaults, "corp.example.com/team/lib@v1.2.3"))
	checkExpect(t, rep, []expect{
		{IDPrivateModule, Problem, "the go command requests it from the public proxy"},
		{IDPrivateProxyLeak, Problem, "the public proxy"},
	})
	for _, f := range find(rep, IDPrivateModule) {
		if strings.Contains(f.Seen, "checksum database") {
			t.Errorf("GONOSUMDB covers it, yet a checksum database leak is reported: %s", f.Seen)
		}
	}
	if requested(srv, "corp.example.com") {
		t.Errorf("the private path was sent: %v", srv.Log())
	}
}

// A public module is still probed through the public proxy.
func TestPublicModuleProbed(t *testing.T) {
	srv := upstreamtest.New(t, testModules())
	env, defaults := publicEnv(t, srv)
	rep := mustRun(t, privateOptions(t, env, defaults, "example.com/Upper/mod@v0.1.0"))
	checkExpect(t, rep, []expect{{IDModuleRoute, OK, "200, served from here"}})
	if len(find(rep, IDPrivateModule)) != 0 {
		t.Errorf("a public module judged private:\n%s", dump(rep))
	}
}

// With --probe-private, proxies that are not public are asked; the public
// one never is.
func TestProbePrivateAsksOnlyNonPublicProxies(t *testing.T) {
	public := upstreamtest.New(t, testModules())
	corp := upstreamtest.New(t, nil, upstreamtest.WithoutSumDB())
	env, defaults := publicEnv(t, public)
	env["GOPROXY"] = corp.URL() + "," + strings.TrimSuffix(env["GOPROXY"], ",direct")

	o := privateOptions(t, env, defaults, "corp.example.com/team/lib@v1.2.3")
	rep := mustRun(t, o)
	if requested(corp, "corp.example.com") || requested(public, "corp.example.com") {
		t.Errorf("asked without --probe-private: corp %v, public %v", corp.Log(), public.Log())
	}
	checkExpect(t, rep, []expect{
		{IDModuleRoute, OK, "--probe-private asks the proxies that are not public"},
		{IDPrivateModule, Problem, "when " + corp.URL() + " does not serve it"},
	})

	o.ProbePrivate = true
	rep = mustRun(t, o)
	if !requested(corp, "corp.example.com/team/lib/@v/v1.2.3.info") {
		t.Errorf("--probe-private: the corporate proxy was not asked: %v", corp.Log())
	}
	if requested(public, "corp.example.com") {
		t.Errorf("--probe-private: the public proxy was asked: %v", public.Log())
	}
	checkExpect(t, rep, []expect{{IDModuleRoute, OK, corp.URL() + ": 404 Not Found"}})
}

// A canary that looks private is not sent to the public proxy either.
func TestPrivateCanary(t *testing.T) {
	srv := upstreamtest.New(t, testModules())
	env, defaults := publicEnv(t, srv)
	o := privateOptions(t, env, defaults, "example.com/Upper/mod")
	o.Canary = "corp.example.com/canary"
	rep := mustRun(t, o)
	if requested(srv, "corp.example.com") {
		t.Errorf("the private canary was sent to the public proxy: %v", srv.Log())
	}
	if !requested(srv, "golang.org/x/mod/@v/list") {
		t.Errorf("the public proxy was not probed with the default canary: %v", srv.Log())
	}
	checkExpect(t, rep, []expect{{IDPrivateCanary, Warning, "asks those for " + DefaultCanary}})
}

func TestJudgePrivacy(t *testing.T) {
	env := baseEnv(t)
	env["GONOSUMDB"] = "hinted.example.com"
	dir := env["GOMODCACHE"]
	writeFile(t, filepath.Join(dir, "cache", "download", "sumdb", "sum.test.example", "lookup", "known.example.com", "!lib@v1.0.0"), "record", 0o644)
	o := testOptions(t, env)
	o.Offline = false
	o.Timeout = time.Second
	o.PrivateHints = "*.corp.example.net"
	o.LookupIP = fakeResolver(map[string][]string{
		"gone.example.com": nil, "known.example.com": nil, "lan.example.com": {"10.0.0.1", "192.168.0.2"},
		"mixed.example.com": {"10.0.0.1", "192.0.2.1"},
	})
	failing := func(context.Context, string) ([]netip.Addr, error) {
		return nil, &net.DNSError{Err: "server misbehaving", Name: "x", IsTemporary: true}
	}
	for _, tc := range []struct {
		path     string
		private  bool
		reason   string
		pattern  string
		offline  bool
		viaProxy bool
		lookup   func(context.Context, string) ([]netip.Addr, error)
	}{
		{path: "hinted.example.com/a", private: true, reason: "GONOSUMDB pattern", pattern: "hinted.example.com"},
		{path: "x.corp.example.net/a", private: true, reason: "given to doctor", pattern: "*.corp.example.net"},
		{path: "known.example.com/Lib", reason: "record of the public checksum database"},
		{path: "gone.example.com/a", private: true, reason: "does not resolve", pattern: "gone.example.com"},
		{path: "lan.example.com/a", private: true, reason: "only to private addresses", pattern: "lan.example.com"},
		{path: "mixed.example.com/a"},
		{path: "public.example.com/a"},
		{path: "gone.example.com/a", offline: true},
		{path: "a.b.test/x", private: true, reason: "under .test", offline: true, pattern: "a.b.test"},
		{path: "dev.home.arpa/x", private: true, reason: "home.arpa", offline: true},
		{path: "127.0.0.1/x", private: true, reason: "private network", offline: true},
		{path: "192.0.2.1/x", offline: true},
		{path: "temporary.example.com/a", lookup: failing},
		{path: "gitlab.com/acme/private/x", private: true, reason: "does not resolve", pattern: "gitlab.com/acme", lookup: fakeResolver(map[string][]string{"gitlab.com": nil})},
		// Behind an HTTP proxy, this machine's resolver proves nothing.
		{path: "gone.example.com/a", viaProxy: true},
		{path: "lan.example.com/a", private: true, reason: "only to private addresses", viaProxy: true},
	} {
		oo := o
		oo.Offline = tc.offline
		if tc.lookup != nil {
			oo.LookupIP = tc.lookup
		}
		if tc.viaProxy {
			oo.Proxy = func(*http.Request) (*url.URL, error) { return &url.URL{Scheme: "http", Host: "10.0.0.3:3128"}, nil }
		}
		c := newChecker(oo.withDefaults(), env)
		c.public = publicServices{proxyHosts: []string{"mirror.test"}, sumdb: "sum.test.example"}
		got := c.judgePrivacy(context.Background(), tc.path)
		if got.private != tc.private || !strings.Contains(got.reason, tc.reason) || (tc.pattern != "" && got.pattern != tc.pattern) {
			t.Errorf("judgePrivacy(%s, offline %v) = %+v, want private %v, reason with %q, pattern %q", tc.path, tc.offline, got, tc.private, tc.reason, tc.pattern)
		}
	}
}

func TestPublicServicesUnknown(t *testing.T) {
	env := baseEnv(t)
	o := testOptions(t, env)
	o.GoEnvWith = fakeGoEnvWith(nil, env)
	checkExpect(t, mustRun(t, o), []expect{{IDPublic, Warning, "takes none as public"}})
	o.GoEnvWith = func(context.Context, map[string]string, ...string) (map[string]string, error) {
		return nil, errors.New("boom")
	}
	checkExpect(t, mustRun(t, o), []expect{{IDPublic, Warning, "boom"}})
}

// TestLookalikeHosts: a GOPROXY or GOSUMDB host one edit away from the
// public proxy's or checksum database's host is a typo or a squatter.
func TestLookalikeHosts(t *testing.T) {
	defaults := map[string]string{"GOPROXY": "https://mirror.example.com,direct", "GOSUMDB": "sum.example.com"}
	key := testKey(t, "sum.example.com")
	for _, tc := range []struct {
		env  map[string]string
		want string // "" for none
	}{
		{map[string]string{"GOPROXY": "https://mirr.example.com,direct"}, ""},                     // two edits
		{map[string]string{"GOPROXY": "https://mirorr.example.com,direct"}, "mirror.example.com"}, // a swap
		{map[string]string{"GOPROXY": "https://mirro.example.com,direct"}, "mirror.example.com"},
		{map[string]string{"GOPROXY": "https://mirror.exmaple.com,direct"}, "mirror.example.com"},
		{map[string]string{"GOPROXY": "https://mirror.example.com.,direct"}, ""}, // the same host
		{map[string]string{"GOPROXY": "https://mirror.example.com,direct"}, ""},
		{map[string]string{"GOPROXY": "https://proxy.example.com,direct"}, ""},
		{map[string]string{"GOSUMDB": key + " https://sun.example.com"}, "sum.example.com"},
	} {
		env := baseEnv(t)
		for k, v := range tc.env {
			env[k] = v
		}
		o := testOptions(t, env)
		o.GoEnvWith = fakeGoEnvWith(defaults, env)
		rep := mustRun(t, o)
		if tc.want == "" {
			absent(t, rep, IDGoProxyLookalike, Problem)
			continue
		}
		checkExpect(t, rep, []expect{{IDGoProxyLookalike, Problem, "one edit away from " + tc.want}})
	}
}

// TestGoToolchainSwitchFails: a toolchain that cannot be downloaded fails
// every go command, go env included; doctor reads go env with
// GOTOOLCHAIN=local and reports the switch.
func TestGoToolchainSwitchFails(t *testing.T) {
	failure := errors.New("go env: exit status 1: go: downloading go1.99.0 (linux/amd64)\ngo: download go1.99.0 for linux/amd64: toolchain not available")
	env := baseEnv(t)
	env["GOTOOLCHAIN"] = "local"
	o := testOptions(t, env)
	o.GoEnv = func(context.Context, ...string) (map[string]string, error) { return nil, failure }
	o.GoEnvWith = fakeGoEnvWith(nil, env)
	o.LookupEnv = mapLookup(map[string]string{"HOME": t.TempDir(), "GOTOOLCHAIN": "go1.99.0"})
	rep := mustRun(t, o)
	checkExpect(t, rep, []expect{
		{IDGoToolchain, Problem, "GOTOOLCHAIN go1.99.0"},
		{IDGoToolchain, Problem, "toolchain not available"},
		{IDGoToolchain, Problem, "set in the environment"},
		{IDGoToolchain, Problem, "toolchain-not-available"},
		{IDGoToolchain, Problem, "unset GOTOOLCHAIN"},
	})

	// From go.mod, with GOTOOLCHAIN=auto in the go env file.
	goenvFile := filepath.Join(t.TempDir(), "env")
	writeFile(t, goenvFile, "GOTOOLCHAIN=auto\n", 0o644)
	env["GOENV"] = goenvFile
	env["GOMOD"] = writeModule(t, "module example.com/app\n\ngo 1.99.0\n", "")
	o.LookupEnv = mapLookup(map[string]string{"HOME": t.TempDir()})
	rep = mustRun(t, o)
	checkExpect(t, rep, []expect{
		{IDGoToolchain, Problem, "GOTOOLCHAIN auto"},
		{IDGoToolchain, Problem, "asked for by " + env["GOMOD"] + " (go 1.99.0)"},
		{IDGoToolchain, Problem, "go mod edit -toolchain=none"},
	})

	// Without GOTOOLCHAIN=local either, go env stays an error.
	o.GoEnvWith = fakeGoEnvWith(nil, nil)
	if _, err := Run(context.Background(), o); err == nil || !strings.Contains(err.Error(), "toolchain not available") {
		t.Errorf("Run = %v, want the go env error", err)
	}
}

// TestEditedTree: an extracted tree that no longer hashes to its .ziphash
// (go mod verify's "dir has been modified").
func TestEditedTree(t *testing.T) {
	srv := upstreamtest.New(t, testModules())
	env := baseEnv(t)
	dir := t.TempDir()
	env["GOMODCACHE"] = dir
	cacheModule(t, dir, srv, "example.com/Upper/mod", "example.com/!upper/mod", "v0.1.0")
	cacheModule(t, dir, srv, "example.com/canary", "example.com/canary", "v1.0.0")
	cacheModule(t, dir, srv, "example.com/canary", "example.com/canary", "v1.1.0")
	rep := mustRun(t, testOptions(t, env))
	absent(t, rep, IDCacheEdited, Problem)
	absent(t, rep, IDCacheEdited, Warning)

	// Made writable and edited.
	f := filepath.Join(dir, "example.com", "!upper", "mod@v0.1.0", "m.go")
	if err := os.Chmod(f, 0o644); err != nil {
		t.Fatal(err)
	}
	writeFile(t, f, "package mod // edited\n", 0o644)
	// Edited in place as root would, left read-only, changed later.
	g := filepath.Join(dir, "example.com", "canary@v1.0.0", "c.go")
	if err := os.Chmod(g, 0o644); err != nil {
		t.Fatal(err)
	}
	writeFile(t, g, "package canary // edited\n", 0o444)
	if err := os.Chmod(g, 0o444); err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(time.Hour)
	if err := os.Chtimes(g, later, later); err != nil {
		t.Fatal(err)
	}
	rep = mustRun(t, testOptions(t, env))
	checkExpect(t, rep, []expect{
		{IDCacheEdited, Problem, "2 extracted trees edited"},
		{IDCacheEdited, Problem, "example.com/!upper/mod@v0.1.0: hashes to"},
		{IDCacheEdited, Problem, "writable file m.go"},
		{IDCacheEdited, Problem, "example.com/canary@v1.0.0: hashes to"},
		{IDCacheEdited, Problem, "after extraction"},
	})
	for _, f := range find(rep, IDCacheEdited) {
		if strings.Contains(f.Seen, "canary@v1.1.0") {
			t.Errorf("untouched tree reported: %s", f.Seen)
		}
	}

	// --module re-hashes its tree whatever it looks like.
	o := testOptions(t, env)
	o.Module, _ = ParseModule("example.com/canary@v1.0.0")
	checkExpect(t, mustRun(t, o), []expect{{IDModuleCached, Problem, "files in it were edited after extraction"}})
	if err := os.Chtimes(g, time.Now(), time.Now()); err != nil {
		t.Fatal(err)
	}
	o.Module, _ = ParseModule("example.com/canary@v1.0.0")
	checkExpect(t, mustRun(t, o), []expect{{IDModuleCached, Problem, `go mod verify reports "dir has been modified"`}})
}
