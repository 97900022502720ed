package config

import (
	"context"
	"errors"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "modproxy.toml")
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPrecedence(t *testing.T) {
	c := Default()
	file := writeFile(t, `
listen = "127.0.0.1:4000"
upstream = "https://file.example"
[cache]
ttl = "2m"
stale_if_error = "1h"
[fetch]
max_zip_size = "100MiB"
`)
	if err := c.LoadFile(file); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"MODPROXY_LISTEN": "127.0.0.1:5000", "MODPROXY_CACHE_TTL": "3m", "MODPROXY_SUMDB": "sum.example.com, other.example+key https://db.example"}
	if err := c.ApplyEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok }); err != nil {
		t.Fatal(err)
	}
	if err := c.SetKey("listen", "127.0.0.1:6000"); err != nil {
		t.Fatal(err)
	}
	if c.Listen != "127.0.0.1:6000" {
		t.Errorf("flag did not win: %s", c.Listen)
	}
	if time.Duration(c.Cache.TTL) != 3*time.Minute {
		t.Errorf("env did not beat file: %v", c.Cache.TTL)
	}
	if time.Duration(c.Cache.StaleIfError) != time.Hour || c.Upstream != "https://file.example" {
		t.Errorf("file did not beat defaults: %+v", c)
	}
	if time.Duration(c.Cache.NegativeTTL) != time.Minute {
		t.Errorf("default lost: %v", c.Cache.NegativeTTL)
	}
	if c.Fetch.MaxZipSize != 100<<20 {
		t.Errorf("max_zip_size = %d", c.Fetch.MaxZipSize)
	}
	if len(c.SumDB) != 2 || c.SumDB[1] != "other.example+key https://db.example" {
		t.Errorf("sumdb = %q", c.SumDB)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestErrorsNameTheKey(t *testing.T) {
	for _, tc := range []struct {
		name, file string
		env        map[string]string
		set        [2]string
		wantKey    string
	}{
		{name: "unknown file key", file: "[cache]\nttll = \"1m\"\n", wantKey: "cache.ttll"},
		{name: "bad duration in file", file: "[cache]\nttl = \"soon\"\n", wantKey: "cache.ttl"},
		{name: "bad env", env: map[string]string{"MODPROXY_FETCH_TIMEOUT": "forever"}, wantKey: "MODPROXY_FETCH_TIMEOUT"},
		{name: "bad listen", set: [2]string{"listen", "nonsense"}, wantKey: "listen"},
		{name: "empty upstream", set: [2]string{"upstream", " "}, wantKey: "upstream"},
		{name: "bad deny status", file: "[[deny]]\nmatch = \"example.com/a\"\nreason = \"r\"\nstatus = 404\n", wantKey: "deny[0].status"},
		{name: "deny without reason", file: "[[deny]]\nmatch = \"example.com/a\"\n", wantKey: "deny[0].reason"},
		{name: "deny without match", file: "[[deny]]\nreason = \"r\"\n", wantKey: "deny[0].match"},
		{name: "route without match", file: "[[route]]\nupstream = \"direct\"\n", wantKey: "route[0].match"},
		{name: "namespace named api", file: "[[namespace]]\nname = \"api\"\n", wantKey: "namespace[0].name"},
		{name: "hosted without match", file: "[[hosted]]\nnamespace = \"\"\n", wantKey: "hosted[0].match"},
		{name: "hosted in an unknown namespace", file: "[[hosted]]\nmatch = \"corp.example.com\"\nnamespace = \"dev\"\n", wantKey: "hosted[0].namespace"},
		{name: "bad namespace name", file: "[[namespace]]\nname = \"sumdb\"\n", wantKey: "namespace[0].name"},
		{name: "namespace named vuln", file: "[[namespace]]\nname = \"vuln\"\n", wantKey: "namespace[0].name"},
		{name: "vuln source not a URL", env: map[string]string{"MODPROXY_VULN_SOURCE": "vuln.example"}, wantKey: "vuln.source"},
		{name: "zero vuln refresh", set: [2]string{"vuln.refresh", "0s"}, wantKey: "vuln.refresh"},
		{name: "namespace route without match", file: "[[namespace]]\nname = \"dev\"\n[[namespace.route]]\nupstream = \"direct\"\n", wantKey: "namespace[0].route[0]"},
		{name: "namespace deny without reason", file: "[[namespace]]\nname = \"dev\"\n[[namespace.deny]]\nmatch = \"example.com/a\"\n", wantKey: "namespace[0].deny[0]"},
		{name: "bad log level", set: [2]string{"log.level", "loud"}, wantKey: "log.level"},
		{name: "negative ttl", set: [2]string{"cache.ttl", "-1m"}, wantKey: "cache.ttl"},
		{name: "zero timeout", set: [2]string{"fetch.timeout", "0s"}, wantKey: "fetch.timeout"},
		{name: "bad size", set: [2]string{"fetch.max_zip_size", "big"}, wantKey: "fetch.max_zip_size"},
		{name: "bad sumdb", set: [2]string{"sumdb", "name+key ftp://x"}, wantKey: "sumdb"},
		{name: "unknown set key", set: [2]string{"nope", "x"}, wantKey: "nope"},
		{name: "breaker rate above 1", file: "[resilience]\nbreaker_failure_rate = 1.5\n", wantKey: "resilience.breaker_failure_rate"},
		{name: "breaker rate 0", set: [2]string{"resilience.breaker_failure_rate", "0"}, wantKey: "resilience.breaker_failure_rate"},
		{name: "bad breaker rate env", env: map[string]string{"MODPROXY_RESILIENCE_BREAKER_FAILURE_RATE": "half"}, wantKey: "MODPROXY_RESILIENCE_BREAKER_FAILURE_RATE"},
		{name: "no breaker minimum", set: [2]string{"resilience.breaker_min_requests", "0"}, wantKey: "resilience.breaker_min_requests"},
		{name: "zero breaker window", set: [2]string{"resilience.breaker_window", "0s"}, wantKey: "resilience.breaker_window"},
		{name: "zero request timeout", set: [2]string{"resilience.request_timeout", "0s"}, wantKey: "resilience.request_timeout"},
		{name: "no probe failures", set: [2]string{"resilience.probe_failures", "0"}, wantKey: "resilience.probe_failures"},
		{name: "negative breaker failures", set: [2]string{"resilience.breaker_failures", "-1"}, wantKey: "resilience.breaker_failures"},
		{name: "trash share not smaller than the cap", file: "[gc]\nmax_size = \"8MiB\"\ntrash_max_size = \"8MiB\"\n", wantKey: "gc.trash_max_size"},
		{name: "bad min_free", set: [2]string{"gc.min_free", "lots"}, wantKey: "gc.min_free"},
		{name: "bad admin listen", set: [2]string{"admin.listen", "3001"}, wantKey: "admin.listen"},
		{name: "zero read timeout", set: [2]string{"server.read_timeout", "0s"}, wantKey: "server.read_timeout"},
		{name: "zero send timeout", file: "[server]\nsend_timeout = \"0s\"\n", wantKey: "server.send_timeout"},
		{name: "tiny header limit", set: [2]string{"server.max_header_bytes", "100"}, wantKey: "server.max_header_bytes"},
		{name: "no connections", env: map[string]string{"MODPROXY_SERVER_MAX_CONNECTIONS": "0"}, wantKey: "server.max_connections"},
		{name: "no admin connections", set: [2]string{"admin.max_connections", "-1"}, wantKey: "admin.max_connections"},
		{name: "namespace named dl", file: "[[namespace]]\nname = \"dl\"\n", wantKey: "namespace[0].name"},
		{name: "dl source not a URL", set: [2]string{"dl.source", "dl.example.com"}, wantKey: "dl.source"},
		{name: "dl source with a query", env: map[string]string{"MODPROXY_DL_SOURCE": "https://dl.example/dl?mode=json"}, wantKey: "dl.source"},
		{name: "negative dl ttl", set: [2]string{"dl.ttl", "-1s"}, wantKey: "dl.ttl"},
		{name: "zero dl max size", file: "[dl]\nmax_size = \"0\"\n", wantKey: "dl.max_size"},
		{name: "dl max total below max size", file: "[dl]\nmax_total = \"100MiB\"\n", wantKey: "dl.max_total"},
		{name: "zero dl max fetches", set: [2]string{"dl.max_fetches", "0"}, wantKey: "dl.max_fetches"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Default()
			c.Upstream = "https://proxy.example"
			var err error
			if tc.file != "" {
				err = c.LoadFile(writeFile(t, tc.file))
			}
			if err == nil && tc.env != nil {
				err = c.ApplyEnv(func(k string) (string, bool) { v, ok := tc.env[k]; return v, ok })
			}
			if err == nil && tc.set[0] != "" {
				err = c.SetKey(tc.set[0], tc.set[1])
			}
			if err == nil {
				err = c.Validate()
			}
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("err = %v, want *config.Error", err)
			}
			if ce.Key != tc.wantKey || !strings.Contains(err.Error(), tc.wantKey) {
				t.Errorf("err = %v (key %q), want key %q", err, ce.Key, tc.wantKey)
			}
		})
	}
}

// TestAdminListen: the default is "auto"; an address, "off" and "" (also
// from an empty environment variable) are valid and say whether the admin
// listener is off.
func TestAdminListen(t *testing.T) {
	c := Default()
	if c.Admin.Listen != AdminAuto || c.Admin.Off() {
		t.Fatalf("default admin.listen = %q (off %v), want %q", c.Admin.Listen, c.Admin.Off(), AdminAuto)
	}
	for _, tc := range []struct {
		env string
		off bool
	}{{"127.0.0.1:4001", false}, {"auto", false}, {"off", true}, {"", true}} {
		c := Default()
		c.Upstream = "https://proxy.example"
		if err := c.ApplyEnv(func(k string) (string, bool) { return tc.env, k == "MODPROXY_ADMIN_LISTEN" }); err != nil {
			t.Fatal(err)
		}
		if err := c.Validate(); err != nil {
			t.Errorf("MODPROXY_ADMIN_LISTEN=%q: %v", tc.env, err)
		}
		if c.Admin.Off() != tc.off {
			t.Errorf("MODPROXY_ADMIN_LISTEN=%q: off = %v, want %v", tc.env, c.Admin.Off(), tc.off)
		}
	}
}

// TestSyntaxOnly: what only other packages understand (upstream lists,
// version ranges) is left to app: config accepts it as text.
func TestSyntaxOnly(t *testing.T) {
	c := Default()
	if err := c.LoadFile(writeFile(t, `
upstream = "ftp://a.example,,https://b.example"
[[route]]
match = "corp.example.com"
upstream = "gopher://x"
[[deny]]
match = "example.com/a"
versions = ">=banana"
reason = "r"
[[namespace]]
name = "dev"
upstream = "ftp://c.example"
`)); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("Validate = %v, want nil: lists and ranges are app's to validate", err)
	}
}

// TestLeaf: config imports no other package of modproxy.
func TestLeaf(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), name, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			if strings.HasPrefix(imp.Path.Value, `"github.com/modproxy/modproxy/`) {
				t.Errorf("%s imports %s", name, imp.Path.Value)
			}
		}
	}
}

func TestResolveFromGoEnv(t *testing.T) {
	c := Default()
	var asked []string
	env := func(ctx context.Context, keys ...string) (map[string]string, error) {
		asked = keys
		return map[string]string{"GOPROXY": "https://proxy.example,direct", "GOSUMDB": "sum.example.com", "GONOSUMDB": "", "GOPRIVATE": "corp.example.com/*, *.internal.example"}, nil
	}
	if err := c.Resolve(context.Background(), env); err != nil {
		t.Fatal(err)
	}
	if c.Upstream != "https://proxy.example,direct" || len(c.SumDB) != 1 || c.SumDB[0] != "sum.example.com" || len(asked) != 4 {
		t.Errorf("resolved %q %q (asked %q)", c.Upstream, c.SumDB, asked)
	}
	if strings.Join(c.Verify.Private, ",") != "corp.example.com/*,*.internal.example" {
		t.Errorf("private = %q, want GOPRIVATE's patterns when GONOSUMDB is empty", c.Verify.Private)
	}
	failing := func(ctx context.Context, keys ...string) (map[string]string, error) {
		return nil, errors.New("go: not found")
	}
	c = Default()
	if err := c.Resolve(context.Background(), failing); err == nil || !strings.Contains(err.Error(), "upstream") {
		t.Errorf("Resolve with failing go env = %v", err)
	}
}

func TestParseSumDB(t *testing.T) {
	for in, want := range map[string]SumDBSpec{
		"sum.example.com":                         {Name: "sum.example.com"},
		"sum.example.com+abcd+KEY":                {Name: "sum.example.com", Key: "sum.example.com+abcd+KEY"},
		"sum.example.com+abcd+KEY https://db.ex/": {Name: "sum.example.com", Key: "sum.example.com+abcd+KEY", URL: "https://db.ex"},
	} {
		got, err := ParseSumDB(in)
		if err != nil || got != want {
			t.Errorf("ParseSumDB(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "a b c", "+key", "name url"} {
		if _, err := ParseSumDB(bad); err == nil {
			t.Errorf("ParseSumDB(%q) succeeded", bad)
		}
	}
}

func TestKeysAndEnvNames(t *testing.T) {
	keys := Keys()
	seen := map[string]bool{}
	for _, k := range keys {
		seen[k.Key] = true
		if k.Env != EnvName(k.Key) || !strings.HasPrefix(k.Env, "MODPROXY_") {
			t.Errorf("key %s env %s", k.Key, k.Env)
		}
	}
	for _, want := range []string{"listen", "cache_dir", "upstream", "sumdb", "cache.ttl", "fetch.max_zip_size", "log.format"} {
		if !seen[want] {
			t.Errorf("Keys() lacks %s", want)
		}
	}
}

func TestExampleFile(t *testing.T) {
	c := Default()
	if err := c.LoadFile("../../deploy/modproxy.toml"); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	// Every key is documented in the example.
	data, err := os.ReadFile("../../deploy/modproxy.toml")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range Keys() {
		name := k.Key[strings.LastIndex(k.Key, ".")+1:]
		if !strings.Contains(string(data), name+" =") {
			t.Errorf("deploy/modproxy.toml does not show %s", k.Key)
		}
	}
}

// TestBreakerKeys: the failure-rate breaker's keys from the file (a rate
// written as an integer too) and the environment, and the deprecated
// breaker_failures, which still works: N requests in the window, all
// failed.
func TestBreakerKeys(t *testing.T) {
	c := Default()
	c.Upstream = "https://proxy.example"
	if rate, n := c.Resilience.Breaker(); rate != 0.5 || n != 10 {
		t.Errorf("default breaker: rate %v, minimum %d; want 0.5, 10", rate, n)
	}
	if err := c.LoadFile(writeFile(t, "[resilience]\nbreaker_failure_rate = 1\nbreaker_min_requests = 20\nbreaker_window = \"2m\"\nrequest_timeout = \"90s\"\nprobe_failures = 5\n")); err != nil {
		t.Fatal(err)
	}
	r := c.Resilience
	if rate, n := r.Breaker(); rate != 1 || n != 20 || time.Duration(r.BreakerWindow) != 2*time.Minute ||
		time.Duration(r.RequestTimeout) != 90*time.Second || r.ProbeFailures != 5 {
		t.Errorf("from the file: rate %v, minimum %d, %+v", rate, n, r)
	}
	env := map[string]string{"MODPROXY_RESILIENCE_BREAKER_FAILURE_RATE": "0.25"}
	if err := c.ApplyEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok }); err != nil {
		t.Fatal(err)
	}
	if rate, _ := c.Resilience.Breaker(); rate != 0.25 {
		t.Errorf("from the environment: rate %v, want 0.25", rate)
	}
	if err := c.LoadFile(writeFile(t, "[resilience]\nbreaker_failures = 4\n")); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if rate, n := c.Resilience.Breaker(); rate != 1 || n != 4 {
		t.Errorf("deprecated breaker_failures = 4: rate %v, minimum %d; want 1, 4", rate, n)
	}
}

// TestTrashLimit: with a size cap the trash gets a share of it (a tenth
// unless trash_max_size says), so that the cap bounds objects and trash
// together; without a cap it is bounded by trash_max_size alone.
func TestTrashLimit(t *testing.T) {
	for _, tc := range []struct {
		maxSize, trashMax ByteSize
		want              int64
	}{
		{0, 0, 0},
		{0, 10 << 30, 10 << 30},
		{80 << 20, 0, 8 << 20},
		{80 << 20, 1 << 20, 1 << 20},
	} {
		if got := (GC{MaxSize: tc.maxSize, TrashMaxSize: tc.trashMax}).TrashLimit(); got != tc.want {
			t.Errorf("max_size %d, trash_max_size %d: TrashLimit = %d, want %d", tc.maxSize, tc.trashMax, got, tc.want)
		}
	}
	if d := Default().GC; d.MinFree != 1<<30 || d.TrashLimit() != 0 {
		t.Errorf("defaults: min_free %d, trash limit %d; want 1GiB, unbounded", d.MinFree, d.TrashLimit())
	}
}

// TestAuthRefusal: beyond loopback, auth.mode = "off" is refused with an
// error naming both keys unless auth.allow_anonymous is set; loopback and
// auth.mode = "required" start.
func TestAuthRefusal(t *testing.T) {
	base := Default()
	base.Upstream = "https://proxy.example"
	for _, tc := range []struct {
		listen, mode string
		anonymous    bool
		refused      bool
	}{
		{"127.0.0.1:3000", "off", false, false},
		{"localhost:3000", "off", false, false},
		{"0.0.0.0:0", "off", false, true},
		{":3000", "off", false, true},
		{"0.0.0.0:0", "off", true, false},
		{"0.0.0.0:0", "required", false, false},
	} {
		c := base
		c.Listen, c.Auth.Mode, c.Auth.AllowAnonymous = tc.listen, tc.mode, tc.anonymous
		err := c.Validate()
		if !tc.refused {
			if err != nil {
				t.Errorf("%+v: %v", tc, err)
			}
			continue
		}
		var ce *Error
		if !errors.As(err, &ce) || ce.Key != "auth.mode" || !strings.Contains(err.Error(), "auth.allow_anonymous") {
			t.Errorf("%+v: got %v, want a config error on auth.mode naming auth.allow_anonymous", tc, err)
		}
	}
	c := base
	c.Auth.Mode = "sometimes"
	if err := c.Validate(); err == nil {
		t.Error("auth.mode = sometimes accepted")
	}
	c = base
	c.TLS.CertFile = "cert.pem"
	if err := c.Validate(); err == nil {
		t.Error("tls.cert_file without tls.key_file accepted")
	}
	if err := c.LoadFile(writeFile(t, "[auth]\nmode = \"required\"\n[[auth.certificate]]\nname = \"ci\"\nsubjects = [\"dns:ci.example\"]\nscopes = [\"read\"]\nmatch = [\"corp.example.com/ci/*\"]\n")); err != nil {
		t.Fatal(err)
	}
	if len(c.Auth.Certificates) != 1 || c.Auth.Certificates[0].Subjects[0] != "dns:ci.example" || c.Auth.Certificates[0].Match[0] != "corp.example.com/ci/*" {
		t.Errorf("certificate mappings: %+v", c.Auth.Certificates)
	}
}

// TestAdminAddr: "auto" is the port after listen's, on listen's host when
// it is loopback and on 127.0.0.1 otherwise; an explicit address is kept.
func TestAdminAddr(t *testing.T) {
	for _, tc := range []struct {
		listen, admin, want string
		derived             bool
	}{
		{"127.0.0.1:3000", "auto", "127.0.0.1:3001", true},
		{":3000", "auto", "127.0.0.1:3001", true},
		{"0.0.0.0:8080", "auto", "127.0.0.1:8081", true},
		{"192.0.2.1:8080", "auto", "127.0.0.1:8081", true},
		{"[::1]:3000", "auto", "[::1]:3001", true},
		{"localhost:3000", "auto", "localhost:3001", true},
		{"127.0.0.1:0", "auto", "127.0.0.1:0", true},
		{"127.0.0.1:65535", "auto", "", true},
		{"127.0.0.1:3000", "127.0.0.1:9000", "127.0.0.1:9000", false},
	} {
		cfg := Default()
		cfg.Listen, cfg.Admin.Listen = tc.listen, tc.admin
		got, derived := cfg.AdminAddr()
		if got != tc.want || derived != tc.derived {
			t.Errorf("listen %s, admin.listen %s: %q (derived %v), want %q (%v)", tc.listen, tc.admin, got, derived, tc.want, tc.derived)
		}
	}
}

func TestDLDefaults(t *testing.T) {
	c := Default()
	if c.DL.Source != "" || c.DL.MaxSize != 1<<30 || c.DL.MaxTotal != 10<<30 || c.DL.MaxFetches != 2 || c.ListingTTL() != time.Duration(c.Cache.TTL) {
		t.Errorf("dl defaults: %+v, listing TTL %v", c.DL, c.ListingTTL())
	}
	if err := c.ApplyEnv(func(k string) (string, bool) {
		v, ok := map[string]string{"MODPROXY_DL_SOURCE": "https://dl.example/dl", "MODPROXY_DL_TTL": "5m"}[k]
		return v, ok
	}); err != nil {
		t.Fatal(err)
	}
	c.Upstream = "https://proxy.example"
	if err := c.Validate(); err != nil || c.DL.Source != "https://dl.example/dl" || c.ListingTTL() != 5*time.Minute {
		t.Errorf("dl from the environment: %+v, %v", c.DL, err)
	}
}

// TestPolicyKeys: [policy] and [namespace.policy] from the file, the root
// keys from the environment, and validation naming the key.
func TestPolicyKeys(t *testing.T) {
	c := Default()
	c.Upstream = "https://proxy.example"
	if err := c.LoadFile(writeFile(t, "[policy]\nvulnerable = \"warn\"\nmin_age = \"24h\"\n[[policy.exempt]]\nid = \"GO-2026-0001\"\nreason = \"r\"\nexpires = \"2027-01-31\"\n[[namespace]]\nname = \"prod\"\n[namespace.policy]\nvulnerable = \"block\"\n[[namespace]]\nname = \"dev\"\n")); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"MODPROXY_POLICY_MIN_AGE": "72h", "MODPROXY_POLICY_RETRACTED": "block", "MODPROXY_POLICY_ALLOW_FIXES": "true"}
	if err := c.ApplyEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok }); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	p := c.Policy
	if p.Vulnerable != "warn" || time.Duration(p.MinAge) != 72*time.Hour || p.Retracted != "block" || !p.AllowFixes || len(p.Exempt) != 1 {
		t.Errorf("root policy %+v", p)
	}
	if exp, err := p.Exempt[0].ExpiryTime(); err != nil || !exp.Equal(time.Date(2027, 1, 31, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("expiry %v, %v", exp, err)
	}
	if np := c.Namespaces[0].Policy; np == nil || np.Vulnerable != "block" || np.MinAge != 0 {
		t.Errorf("namespace policy %+v", np)
	}
	if c.Namespaces[1].Policy != nil {
		t.Error("a namespace without [namespace.policy] has one")
	}
	for _, tt := range []struct{ file, key string }{
		{"[policy]\nvulnerable = \"deny\"\n", "policy.vulnerable"},
		{"[policy]\nretracted = \"yes\"\n", "policy.retracted"},
		{"[policy]\nmin_age = \"-1h\"\n", "policy.min_age"},
		{"[policy]\nhide_vulnerable = true\nvulnerable = \"warn\"\n", "policy.hide_vulnerable"},
		{"[policy]\nallow_fixes = true\n", "policy.allow_fixes"},
		{"[[policy.exempt]]\nreason = \"r\"\n", "policy.exempt[0]"},
		{"[[policy.exempt]]\nmatch = \"example.com/m\"\n", "policy.exempt[0].reason"},
		{"[[policy.exempt]]\nid = \"GO-2026-0001\"\nreason = \"r\"\nexpires = \"soon\"\n", "policy.exempt[0].expires"},
		{"[[namespace]]\nname = \"prod\"\n[namespace.policy]\nvulnerable = \"x\"\n", "namespace[0].policy.vulnerable"},
	} {
		c := Default()
		c.Upstream = "https://proxy.example"
		if err := c.LoadFile(writeFile(t, tt.file)); err != nil {
			t.Fatal(err)
		}
		var ce *Error
		if err := c.Validate(); !errors.As(err, &ce) || ce.Key != tt.key {
			t.Errorf("%q: Validate = %v, want an error for %s", tt.file, err, tt.key)
		}
	}
}

// TestDurationNumbersInTables: a duration written as a number is refused
// in arrays of tables and their sub-tables too ([[namespace]] ttl,
// [namespace.policy] min_age), as at the top level.
func TestDurationNumbersInTables(t *testing.T) {
	for file, key := range map[string]string{
		"[[namespace]]\nname = \"prod\"\nttl = 5\n":                          "namespace[0].ttl",
		"[[namespace]]\nname = \"prod\"\n[namespace.policy]\nmin_age = 72\n": "namespace[0].policy.min_age",
		"[policy]\nmin_age = 72\n":                                           "policy.min_age",
	} {
		c := Default()
		var ce *Error
		if err := c.LoadFile(writeFile(t, file)); !errors.As(err, &ce) || ce.Key != key {
			t.Errorf("%q: LoadFile = %v, want an error for %s", file, err, key)
		}
	}
}

// TestWarmZipsDefault: warming is on by default and the environment turns
// it off.
func TestWarmZipsDefault(t *testing.T) {
	c := Default()
	if !c.Warm.Zips {
		t.Fatal("warm.zips is off by default, want on")
	}
	if err := c.ApplyEnv(func(k string) (string, bool) { return "false", k == "MODPROXY_WARM_ZIPS" }); err != nil {
		t.Fatal(err)
	}
	if c.Warm.Zips {
		t.Fatal("MODPROXY_WARM_ZIPS=false left warming on")
	}
}
