package doctor

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/mod/module"
	"golang.org/x/mod/sumdb/note"
)

// fakeGoEnv returns a goenv.Reader answering from m ("" for unknown keys).
func fakeGoEnv(m map[string]string) func(context.Context, ...string) (map[string]string, error) {
	return func(_ context.Context, keys ...string) (map[string]string, error) {
		out := map[string]string{}
		for _, k := range keys {
			out[k] = m[k]
		}
		return out, nil
	}
}

// testKey returns a fresh verifier key for a checksum database name.
func testKey(t *testing.T, name string) string {
	t.Helper()
	_, vkey, err := note.GenerateKey(rand.Reader, name)
	if err != nil {
		t.Fatal(err)
	}
	return vkey
}

// baseEnv is a sane go env: a proxy, a checksum database with its key, an
// empty module cache and no main module.
func baseEnv(t *testing.T) map[string]string {
	return map[string]string{
		"GOPROXY":     "https://proxy.example.com,direct",
		"GOSUMDB":     testKey(t, "sum.example.com"),
		"GOMODCACHE":  t.TempDir(),
		"GOVERSION":   "go1.26.0",
		"GOTOOLCHAIN": "local",
		"GOAUTH":      "netrc",
		"GOMOD":       os.DevNull,
	}
}

// refuseDialer keeps tests on loopback: anything else fails as an unknown
// host would.
func refuseDialer(ctx context.Context, network, addr string) (net.Conn, error) {
	host, _, _ := net.SplitHostPort(addr)
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return nil, &net.OpError{Op: "dial", Net: network, Err: &net.DNSError{Err: "no such host (test)", Name: host, IsNotFound: true}}
	}
	return (&net.Dialer{}).DialContext(ctx, network, addr)
}

// testOptions are offline options over env with a HOME without netrc.
func testOptions(t *testing.T, env map[string]string) Options {
	home := t.TempDir()
	return Options{
		GoEnv:       fakeGoEnv(env),
		LookupEnv:   mapLookup(map[string]string{"HOME": home}),
		Offline:     true,
		DialContext: refuseDialer,
		Proxy:       noProxy,
		LookPath:    func(string) (string, error) { return "", errors.New("not found (test)") },
		LookupIP:    fakeResolver(nil),
	}
}

// fakeResolver answers from names (host -> addresses; a host mapped to nil
// does not exist) and gives every other host a public address.
func fakeResolver(names map[string][]string) func(context.Context, string) ([]netip.Addr, error) {
	return func(_ context.Context, host string) ([]netip.Addr, error) {
		addrs, ok := names[host]
		if !ok {
			addrs = []string{"192.0.2.10"}
		}
		if addrs == nil {
			return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
		}
		var out []netip.Addr
		for _, a := range addrs {
			out = append(out, netip.MustParseAddr(a))
		}
		return out, nil
	}
}

// fakeGoEnvWith answers go env with variables changed: defaults (when
// set["GOENV"] is "off") or, with GOTOOLCHAIN=local, env.
func fakeGoEnvWith(defaults, env map[string]string) func(context.Context, map[string]string, ...string) (map[string]string, error) {
	return func(ctx context.Context, set map[string]string, keys ...string) (map[string]string, error) {
		src := env
		if set["GOENV"] == "off" {
			src = defaults
		}
		if src == nil {
			return nil, errors.New("go env: exit status 1 (test)")
		}
		m, err := fakeGoEnv(src)(ctx, keys...)
		if set["GOTOOLCHAIN"] != "" {
			m["GOTOOLCHAIN"] = set["GOTOOLCHAIN"]
		}
		return m, err
	}
}

func noProxy(*http.Request) (*url.URL, error) { return nil, nil }

func mapLookup(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func mustRun(t *testing.T, o Options) Report {
	t.Helper()
	rep, err := Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// find returns the findings with id.
func find(rep Report, id string) []Finding {
	var out []Finding
	for _, f := range rep.Findings {
		if f.ID == id {
			out = append(out, f)
		}
	}
	return out
}

func dump(rep Report) string {
	var b strings.Builder
	for _, f := range rep.Findings {
		fmt.Fprintf(&b, "  %s %s %q: %s | %s\n", f.Status, f.ID, f.Title, f.Seen, f.Fix)
	}
	return b.String()
}

// expect is one expected finding: its ID, status and text found in its
// title, seen or fix.
type expect struct {
	id     string
	status Status
	text   string
}

func checkExpect(t *testing.T, rep Report, want []expect) {
	t.Helper()
	for _, w := range want {
		found := false
		for _, f := range find(rep, w.id) {
			if f.Status == w.status && strings.Contains(f.Title+"\n"+f.Seen+"\n"+f.Fix, w.text) {
				found = true
			}
		}
		if !found {
			t.Errorf("no %s finding %s containing %q; got:\n%s", w.status, w.id, w.text, dump(rep))
		}
	}
}

// absent fails if a finding with id and status exists.
func absent(t *testing.T, rep Report, id string, st Status) {
	t.Helper()
	for _, f := range find(rep, id) {
		if f.Status == st {
			t.Errorf("unexpected %s %s: %s: %s", st, id, f.Title, f.Seen)
		}
	}
}

func TestGoEnvChecks(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string // overrides of baseEnv; "-" deletes
		want []expect
		not  []expect // id and status that must not appear
	}{
		{name: "sane", want: []expect{{IDGoProxyList, OK, "direct: fetch from the version control"}, {IDGoProxyFallback, OK, "falls back to direct"}, {IDGoSumDB, OK, "custom key"}}},
		{name: "typo direct", env: map[string]string{"GOPROXY": "https://proxy.example.com,dirct"},
			want: []expect{{IDGoProxyList, Problem, `did you mean "direct"`}, {IDGoProxyList, Problem, "invalid proxy URL missing scheme: dirct"}}},
		{name: "upper case direct", env: map[string]string{"GOPROXY": "Direct"}, want: []expect{{IDGoProxyList, Problem, `did you mean "direct"`}}},
		{name: "typo off", env: map[string]string{"GOPROXY": "of"}, want: []expect{{IDGoProxyList, Problem, `did you mean "off"`}}},
		{name: "bad scheme", env: map[string]string{"GOPROXY": "htps://proxy.example.com"}, want: []expect{{IDGoProxyList, Problem, "did you mean https://?"}}},
		{name: "missing scheme", env: map[string]string{"GOPROXY": "proxy.example.com,direct"}, want: []expect{{IDGoProxyList, OK, "https:// added by the go command"}}},
		{name: "no host", env: map[string]string{"GOPROXY": "https:/proxy.example.com"}, want: []expect{{IDGoProxyList, Problem, "has no host"}}},
		{name: "quotes", env: map[string]string{"GOPROXY": `"https://proxy.example.com,direct"`}, want: []expect{{IDGoProxyList, Problem, "remove the quotes"}}},
		{name: "inner space", env: map[string]string{"GOPROXY": "https://proxy .example.com"}, want: []expect{{IDGoProxyList, Problem, "remove the white space"}}},
		{name: "white space", env: map[string]string{"GOPROXY": " https://proxy.example.com , direct"},
			want: []expect{{IDGoProxySpace, Warning, "white space around entries"}, {IDGoProxySpace, Warning, "GOPROXY=https://proxy.example.com,direct"}, {IDGoProxyList, OK, "proxy https://proxy.example.com"}}},
		{name: "empty entries", env: map[string]string{"GOPROXY": "https://proxy.example.com,,direct,"}, want: []expect{{IDGoProxySpace, Warning, "2 empty entries"}}},
		{name: "only separators", env: map[string]string{"GOPROXY": ","}, want: []expect{{IDGoProxyList, Problem, "contains no entries"}}},
		{name: "empty", env: map[string]string{"GOPROXY": ""}, want: []expect{{IDGoProxyList, Problem, "GOPROXY is empty"}}},
		{name: "after direct", env: map[string]string{"GOPROXY": "direct,https://proxy.example.com,dirct"},
			want: []expect{{IDGoProxyIgnored, Warning, "entry 2: https://proxy.example.com"}, {IDGoProxyIgnored, Warning, `did you mean "direct"`}, {IDGoProxyFallback, OK, "GOPROXY=direct"}},
			not:  []expect{{IDGoProxyList, Problem, ""}}},
		{name: "plain http", env: map[string]string{"GOPROXY": "http://proxy.example.com,direct"}, want: []expect{{IDGoProxyHTTP, Warning, "unencrypted"}}},
		{name: "plain http without sumdb", env: map[string]string{"GOPROXY": "http://proxy.example.com,direct", "GOSUMDB": "off"}, want: []expect{{IDGoProxyHTTP, Problem, "GOSUMDB=off"}}},
		{name: "plain http loopback", env: map[string]string{"GOPROXY": "http://127.0.0.1:3000,http://localhost:3000,direct"}, not: []expect{{IDGoProxyHTTP, Warning, ""}}},
		{name: "credentials in URL", env: map[string]string{"GOPROXY": "https://bob:s3cr3t@proxy.example.com,direct"}, want: []expect{{IDGoProxyCreds, Warning, "netrc"}, {IDGoProxyList, OK, "https://bob:xxxxx@proxy.example.com"}}},
		{name: "single proxy", env: map[string]string{"GOPROXY": "https://proxy.example.com"}, want: []expect{{IDGoProxyFallback, Warning, "only https://proxy.example.com is used"}, {IDGoProxyList, OK, "last entry"}}},
		{name: "two proxies comma", env: map[string]string{"GOPROXY": "https://a.example.com,https://b.example.com"},
			want: []expect{{IDGoProxyFallback, Warning, "a timeout or 5xx of the first one fails"}, {IDGoProxyList, OK, `only 404/410 fall through`}}},
		{name: "two proxies pipe", env: map[string]string{"GOPROXY": "https://a.example.com|https://b.example.com"}, want: []expect{{IDGoProxyList, OK, `on any error (404/410, 5xx, timeout`}}},
		{name: "off", env: map[string]string{"GOPROXY": "off"}, want: []expect{{IDGoProxyFallback, Warning, "downloads are disabled"}}},
		{name: "ends in off", env: map[string]string{"GOPROXY": "https://proxy.example.com,off"}, want: []expect{{IDGoProxyFallback, Warning, "module lookup disabled"}}},
		{name: "file proxy missing", env: map[string]string{"GOPROXY": "file:///nonexistent/modproxy-doctor-test,direct"}, want: []expect{{IDGoProxyEntry, Problem, "does not exist"}}},
		{name: "file proxy with host", env: map[string]string{"GOPROXY": "file://host/dir"}, want: []expect{{IDGoProxyList, Problem, "non-path elements"}}},

		{name: "sumdb off", env: map[string]string{"GOSUMDB": "off"}, want: []expect{{IDGoSumDB, Warning, "GOSUMDB=off"}}},
		{name: "sumdb bad key", env: map[string]string{"GOSUMDB": "sum.example.com+0000+AAAA"}, want: []expect{{IDGoSumDB, Problem, "invalid GOSUMDB"}}},
		{name: "sumdb too many fields", env: map[string]string{"GOSUMDB": "a b c"}, want: []expect{{IDGoSumDB, Problem, "too many fields"}}},
		{name: "sumdb empty", env: map[string]string{"GOSUMDB": ""}, want: []expect{{IDGoSumDB, Problem, "missing GOSUMDB"}}},
		{name: "sumdb name only", env: map[string]string{"GOSUMDB": "sum.example.com"}, want: []expect{{IDGoSumDB, OK, "not checked"}}},
		{name: "sumdb plain http url", env: map[string]string{"GOSUMDB": "KEY http://sumdb.example.com"}, want: []expect{{IDGoSumDB, Warning, "plain http"}}},

		{name: "private leaks to sumdb", env: map[string]string{"GONOPROXY": "corp.example.com"},
			want: []expect{{IDPrivateSumDBLeak, Problem, `GONOPROXY pattern "corp.example.com" not in GONOSUMDB`}, {IDPrivateSumDBLeak, Problem, "go env -w GOPRIVATE=corp.example.com"}}},
		{name: "GONOSUMDB overrides GOPRIVATE", env: map[string]string{"GOPRIVATE": "corp.example.com", "GONOPROXY": "corp.example.com", "GONOSUMDB": "none"},
			want: []expect{{IDPrivateSumDBLeak, Problem, "go env -u GONOSUMDB"}}},
		{name: "private ok", env: map[string]string{"GOPRIVATE": "corp.example.com,*.internal.example", "GONOPROXY": "corp.example.com,*.internal.example", "GONOSUMDB": "corp.example.com,*.internal.example"},
			not: []expect{{IDPrivateSumDBLeak, Problem, ""}, {IDPrivateProxyLeak, Warning, ""}, {IDPrivatePattern, Problem, ""}}},
		{name: "sub pattern covered", env: map[string]string{"GONOPROXY": "corp.example.com/team", "GONOSUMDB": "corp.example.com"},
			not: []expect{{IDPrivateSumDBLeak, Problem, ""}}},
		{name: "private leaks to proxy", env: map[string]string{"GOPRIVATE": "corp.example.com", "GONOPROXY": "none", "GONOSUMDB": "corp.example.com"},
			want: []expect{{IDPrivateProxyLeak, Warning, "requested from https://proxy.example.com first"}, {IDPrivateProxyLeak, Warning, "go env -u GONOPROXY"}}},
		{name: "no leak when sumdb off", env: map[string]string{"GONOPROXY": "corp.example.com", "GOSUMDB": "off"}, not: []expect{{IDPrivateSumDBLeak, Problem, ""}}},
		{name: "pattern mistakes", env: map[string]string{"GOPRIVATE": " corp.example.com,https://git.example.com,corp.example.com/...,x.example.com/[,y.example.com@v1", "GONOPROXY": "-", "GONOSUMDB": "-"},
			want: []expect{
				{IDPrivatePattern, Problem, "white space is part of the pattern"},
				{IDPrivatePattern, Problem, "e.g. git.example.com"},
				{IDPrivatePattern, Problem, "use corp.example.com"},
				{IDPrivatePattern, Problem, "malformed glob"},
				{IDPrivatePattern, Problem, "drop the @"},
			}},
		{name: "semicolon in GOPRIVATE", env: map[string]string{"GOPRIVATE": "corp.example.com;git.example.com", "GONOPROXY": "corp.example.com;git.example.com", "GONOSUMDB": "corp.example.com;git.example.com"},
			want: []expect{{IDPrivatePattern, Problem, `";" is not a separator`}, {IDPrivatePattern, Problem, "corp.example.com,git.example.com"}, {IDPrivatePattern, Problem, "GOPRIVATE, GONOPROXY, GONOSUMDB"}}},
		{name: "semicolon and space", env: map[string]string{"GONOSUMDB": "corp.example.com; git.example.com"},
			want: []expect{{IDPrivatePattern, Problem, "with commas: corp.example.com,git.example.com"}}},
		{name: "semicolon in GOPROXY", env: map[string]string{"GOPROXY": "https://a.example.com;https://b.example.com,direct"},
			want: []expect{{IDGoProxyEntry, Problem, `";" is not a GOPROXY separator`}, {IDGoProxyEntry, Problem, "go env -w GOPROXY=https://a.example.com,https://b.example.com,direct"}}},
		{name: "GONOSUMDB everything", env: map[string]string{"GONOSUMDB": "*"},
			want: []expect{{IDPrivateBroad, Warning, "checksum verification is off"}, {IDPrivateBroad, Warning, "every host matching *"}}},
		{name: "GOPRIVATE everything", env: map[string]string{"GOPRIVATE": "*.*", "GONOPROXY": "*.*", "GONOSUMDB": "*.*"},
			want: []expect{{IDPrivateBroad, Warning, `GONOSUMDB (from GOPRIVATE) pattern "*.*"`}}},
		{name: "GONOSUMDB top-level domain", env: map[string]string{"GONOSUMDB": "corp.example.com,*.com"}, want: []expect{{IDPrivateBroad, Warning, `"*.com"`}}},
		{name: "GONOSUMDB code host", env: map[string]string{"GONOSUMDB": "github.com"}, want: []expect{{IDPrivateBroad, Warning, "every module on github.com"}}},
		{name: "GONOSUMDB code host glob", env: map[string]string{"GONOSUMDB": "github.com/*"}, want: []expect{{IDPrivateBroad, Warning, "every module on github.com"}}},
		{name: "GONOSUMDB narrow", env: map[string]string{"GONOSUMDB": "*.corp.example.com,github.com/acme-corp,corp.example.com/*"},
			not: []expect{{IDPrivateBroad, Warning, ""}}},
		{name: "GONOSUMDB with sumdb off", env: map[string]string{"GONOSUMDB": "*", "GOSUMDB": "off"}, not: []expect{{IDPrivateBroad, Warning, ""}}},
		{name: "goinsecure", env: map[string]string{"GOINSECURE": "git.example.com"}, want: []expect{{IDGoInsecure, Warning, "plain http"}}},
		{name: "goinsecure on proxy", env: map[string]string{"GOINSECURE": "proxy.example.com"}, want: []expect{{IDGoInsecure, Problem, "applies only to module paths fetched directly"}}},

		{name: "goflags vendor", env: map[string]string{"GOFLAGS": "-mod=vendor"}, want: []expect{{IDGoFlags, Warning, "never downloads"}}},
		{name: "goflags modcacherw", env: map[string]string{"GOFLAGS": "-modcacherw"}, want: []expect{{IDGoFlags, Warning, "writable"}}},
		{name: "goflags insecure", env: map[string]string{"GOFLAGS": "-insecure"}, want: []expect{{IDGoFlags, Problem, "GOINSECURE"}}},
		{name: "goflags space value", env: map[string]string{"GOFLAGS": "-mod vendor"}, want: []expect{{IDGoFlags, Problem, `non-flag "vendor"`}, {IDGoFlags, Problem, "flag needs an argument"}}},
		{name: "goflags bad mod", env: map[string]string{"GOFLAGS": "-mod=bogus"}, want: []expect{{IDGoFlags, Problem, "not a valid mode"}}},
		{name: "goflags quoting", env: map[string]string{"GOFLAGS": `"-ldflags=-s -w" -trimpath`}, want: []expect{{IDGoFlags, OK, "nothing that affects"}}},
		{name: "goflags unterminated", env: map[string]string{"GOFLAGS": `"-ldflags=-s`}, want: []expect{{IDGoFlags, Problem, "unterminated"}}},

		{name: "toolchain invalid", env: map[string]string{"GOTOOLCHAIN": "bogus"}, want: []expect{{IDGoToolchain, Problem, "invalid GOTOOLCHAIN"}}},
		{name: "toolchain bad suffix", env: map[string]string{"GOTOOLCHAIN": "go1.22.0+always"}, want: []expect{{IDGoToolchain, Problem, "+auto and +path"}}},
		{name: "toolchain pinned", env: map[string]string{"GOTOOLCHAIN": "go1.99.1"}, want: []expect{{IDGoToolchain, OK, "instead of the installed go1.26.0"}}},
		{name: "toolchain auto", env: map[string]string{"GOTOOLCHAIN": "auto"}, want: []expect{{IDGoToolchain, OK, "switches to a newer toolchain"}}},
		{name: "go111module off", env: map[string]string{"GO111MODULE": "off"}, want: []expect{{IDGo111Module, Warning, "GOPATH mode"}}},
		{name: "go111module bad", env: map[string]string{"GO111MODULE": "yes"}, want: []expect{{IDGo111Module, Problem, "not a valid value"}}},

		{name: "goauth off combined", env: map[string]string{"GOAUTH": "off;netrc"}, want: []expect{{IDGoAuth, Problem, "cannot be combined"}}},
		{name: "goauth empty command", env: map[string]string{"GOAUTH": "netrc;;"}, want: []expect{{IDGoAuth, Problem, "empty command"}}},
		{name: "goauth git relative", env: map[string]string{"GOAUTH": "git relative/dir"}, want: []expect{{IDGoAuth, Problem, "absolute path"}}},
		{name: "goauth git missing", env: map[string]string{"GOAUTH": "git /nonexistent/modproxy-doctor-test"}, want: []expect{{IDGoAuth, Problem, "does not exist"}}},
		{name: "goauth command missing", env: map[string]string{"GOAUTH": "my-credential-helper --flag"}, want: []expect{{IDGoAuth, Problem, `command "my-credential-helper": not found`}}},
		{name: "goauth off with private", env: map[string]string{"GOAUTH": "off", "GOPRIVATE": "corp.example.com", "GONOPROXY": "corp.example.com", "GONOSUMDB": "corp.example.com"},
			want: []expect{{IDGoAuth, Warning, "no credentials are ever sent"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := baseEnv(t)
			for k, v := range tc.env {
				if v == "-" {
					delete(env, k)
				} else {
					env[k] = v
				}
			}
			if strings.HasPrefix(env["GOSUMDB"], "KEY ") {
				env["GOSUMDB"] = testKey(t, "sumdb.example.com") + strings.TrimPrefix(env["GOSUMDB"], "KEY")
			}
			rep := mustRun(t, testOptions(t, env))
			checkExpect(t, rep, tc.want)
			for _, n := range tc.not {
				absent(t, rep, n.id, n.status)
			}
		})
	}
}

func TestSumDBBuiltinKey(t *testing.T) {
	env := baseEnv(t)
	builtin := testKey(t, "sum.example.com")
	o := testOptions(t, env)
	o.SumDBKey = func(name string) (string, error) {
		if name == "sum.example.com" {
			return builtin, nil
		}
		return "", errors.New("no built-in key (test)")
	}
	env["GOSUMDB"] = "sum.example.com"
	checkExpect(t, mustRun(t, o), []expect{{IDGoSumDB, OK, "key built into the go command"}})
	env["GOSUMDB"] = "other.example.com"
	checkExpect(t, mustRun(t, o), []expect{{IDGoSumDB, Warning, "no built-in key"}})
	env["GOSUMDB"] = testKey(t, "sum.example.com")
	checkExpect(t, mustRun(t, o), []expect{{IDGoSumDB, Warning, "differs from the one built into the go command"}})
}

// writeModule writes a go.mod (and go.sum) in a temp dir and returns the
// go.mod path.
func writeModule(t *testing.T, gomod, gosum string) string {
	t.Helper()
	dir := t.TempDir()
	p := filepath.Join(dir, "go.mod")
	if err := os.WriteFile(p, []byte(gomod), 0o644); err != nil {
		t.Fatal(err)
	}
	if gosum != "" {
		if err := os.WriteFile(filepath.Join(dir, "go.sum"), []byte(gosum), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

func TestPatternsAgainstRequirements(t *testing.T) {
	env := baseEnv(t)
	env["GOMOD"] = writeModule(t, "module example.com/app\n\ngo 1.22\n\nrequire (\n\tgithub.com/corp/lib v1.0.0\n\tgit.example.com/team/tool v0.1.0\n)\n",
		"golang.org/x/text v0.3.0 h1:AAAA\ngolang.org/x/text v0.3.0/go.mod h1:BBBB\n")
	env["GOPRIVATE"] = "github.com/Corp,git.example.com,nothing.example.com,none"
	env["GONOPROXY"] = env["GOPRIVATE"]
	env["GONOSUMDB"] = env["GOPRIVATE"]
	rep := mustRun(t, testOptions(t, env))
	checkExpect(t, rep, []expect{
		{IDPrivateUnmatched, Warning, `"nothing.example.com"`},
		{IDPrivateUnmatched, Warning, "almost matches github.com/corp/lib"},
	})
	for _, f := range find(rep, IDPrivateUnmatched) {
		if strings.Contains(f.Title, `"git.example.com"`) || strings.Contains(f.Title, `"none"`) {
			t.Errorf("pattern reported unmatched: %s", f.Title)
		}
	}
}

func TestGoToolchainAgainstGoMod(t *testing.T) {
	gomod := writeModule(t, "module example.com/app\n\ngo 1.99\n", "")
	for _, tc := range []struct {
		env  map[string]string
		want expect
	}{
		{map[string]string{"GOTOOLCHAIN": "local"}, expect{IDGoToolchain, Problem, "requires go 1.99 but the toolchain is pinned"}},
		{map[string]string{"GOTOOLCHAIN": "auto"}, expect{IDGoToolchain, OK, "downloads it as module golang.org/toolchain"}},
		{map[string]string{"GOTOOLCHAIN": "auto", "GOSUMDB": "off"}, expect{IDGoToolchain, Problem, "GOSUMDB=off"}},
		{map[string]string{"GOTOOLCHAIN": "go1.20.1+auto", "GOPROXY": "off"}, expect{IDGoToolchain, Problem, "GOPROXY=off"}},
		{map[string]string{"GOTOOLCHAIN": "path"}, expect{IDGoToolchain, OK, "PATH only"}},
		{map[string]string{"GOTOOLCHAIN": "go1.99.2"}, expect{IDGoToolchain, OK, "instead of the installed"}},
	} {
		env := baseEnv(t)
		env["GOMOD"] = gomod
		for k, v := range tc.env {
			env[k] = v
		}
		checkExpect(t, mustRun(t, testOptions(t, env)), []expect{tc.want})
	}
}

func TestGoVersionOrder(t *testing.T) {
	order := []string{"1.20", "1.20.1", "1.21", "1.21beta1", "1.21rc1", "1.21rc2", "1.21.0", "1.21.3", "1.22", "2.0.0"}
	for i := 0; i+1 < len(order); i++ {
		a, ok1 := parseGoVersion(order[i])
		b, ok2 := parseGoVersion(order[i+1])
		if !ok1 || !ok2 || !a.less(b) || b.less(a) {
			t.Errorf("want %s < %s (parsed %v %v)", order[i], order[i+1], ok1, ok2)
		}
	}
	for _, bad := range []string{"", "1", "1.", "1.x", "01.2", "1.21.", "1.21rc", "go1.21"} {
		if _, ok := parseGoVersion(bad); ok {
			t.Errorf("parseGoVersion(%q) ok", bad)
		}
	}
	if v, ok := toolchainVersion("go1.22.1-custom"); !ok || v.String() != "1.22.1" {
		t.Errorf("toolchainVersion = %v %v", v, ok)
	}
}

func TestHTTPProxyEnvironment(t *testing.T) {
	env := baseEnv(t)
	o := testOptions(t, env)
	o.LookupEnv = mapLookup(map[string]string{"HOME": t.TempDir(), "ALL_PROXY": "http://bob:hunter2@proxy.corp.example:3128"})
	rep := mustRun(t, o)
	checkExpect(t, rep, []expect{{IDHTTPProxyEnv, Warning, "Go ignores ALL_PROXY"}, {IDHTTPProxyEnv, Warning, "bob:xxxxx@"}})

	o.LookupEnv = mapLookup(map[string]string{"HOME": t.TempDir(), "HTTPS_PROXY": "http://proxy.corp.example:3128", "NO_PROXY": "internal.example"})
	o.Proxy = func(r *http.Request) (*url.URL, error) { return url.Parse("http://proxy.corp.example:3128") }
	rep = mustRun(t, o)
	checkExpect(t, rep, []expect{{IDHTTPProxyEnv, OK, "HTTPS_PROXY=http://proxy.corp.example:3128, NO_PROXY=internal.example"},
		{IDHTTPProxyEnv, OK, "https://proxy.example.com: through HTTP proxy http://proxy.corp.example:3128"}})

	o.Proxy = func(r *http.Request) (*url.URL, error) { return nil, errors.New("invalid proxy address (test)") }
	checkExpect(t, mustRun(t, o), []expect{{IDHTTPProxyEnv, Problem, "invalid proxy setting"}})
}

func TestNoSecretsInReport(t *testing.T) {
	env := baseEnv(t)
	env["GOPROXY"] = "https://bob:s3cr3t-url@proxy.example.com,direct"
	home := t.TempDir()
	writeFile(t, filepath.Join(home, ".netrc"), "machine proxy.example.com login bob password s3cr3t-netrc\n", 0o644)
	o := testOptions(t, env)
	o.LookupEnv = mapLookup(map[string]string{"HOME": home, "HTTPS_PROXY": "http://bob:s3cr3t-proxy@proxy.corp.example:3128"})
	rep := mustRun(t, o)
	data, _ := json.Marshal(rep)
	if strings.Contains(string(data), "s3cr3t") {
		t.Errorf("report leaks a secret:\n%s", dump(rep))
	}
}

func TestParseModule(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want module.Version
		ok   bool
	}{
		{"example.com/a@v1.0.0", module.Version{Path: "example.com/a", Version: "v1.0.0"}, true},
		{"example.com/a", module.Version{Path: "example.com/a"}, true},
		{"example.com/a@v2.0.0+incompatible", module.Version{Path: "example.com/a", Version: "v2.0.0+incompatible"}, true},
		{"example.com/a/v2@v2.1.0", module.Version{Path: "example.com/a/v2", Version: "v2.1.0"}, true},
		{"example.com/a@v0.0.0-20240101000000-abcdefabcdef", module.Version{Path: "example.com/a", Version: "v0.0.0-20240101000000-abcdefabcdef"}, true},
		{"example.com/a@latest", module.Version{}, false},
		{"example.com/a@v1", module.Version{}, false},
		{"example.com/a@", module.Version{}, false},
		{"example.com/a@v2.0.0", module.Version{}, false},
		{"bad path@v1.0.0", module.Version{}, false},
		{"", module.Version{}, false},
	} {
		got, err := ParseModule(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseModule(%q) = %v, %v", tc.in, got, err)
		}
	}
}

func TestRunErrors(t *testing.T) {
	if _, err := Run(context.Background(), Options{}); err == nil {
		t.Error("Run without GoEnv: no error")
	}
	o := Options{GoEnv: func(context.Context, ...string) (map[string]string, error) { return nil, errors.New("go: not found") }}
	if _, err := Run(context.Background(), o); err == nil || !strings.Contains(err.Error(), "go: not found") {
		t.Errorf("go env failure: %v", err)
	}
	o = testOptions(t, baseEnv(t))
	o.Canary = "not a path"
	if _, err := Run(context.Background(), o); err == nil {
		t.Error("bad canary: no error")
	}
}

func TestReportJSON(t *testing.T) {
	env := baseEnv(t)
	env["GOFLAGS"] = "-insecure"
	rep := mustRun(t, testOptions(t, env))
	if !rep.HasProblems() {
		t.Fatal("no problem reported")
	}
	data, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var back struct {
		Findings []map[string]any `json:"findings"`
		Summary  map[string]int   `json:"summary"`
	}
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	if back.Summary["problems"] != rep.Summary.Problems || len(back.Findings) != len(rep.Findings) {
		t.Errorf("round trip: %+v", back.Summary)
	}
	for _, f := range back.Findings {
		for _, k := range []string{"id", "status", "title", "seen"} {
			if _, ok := f[k]; !ok {
				t.Errorf("finding lacks %q: %v", k, f)
			}
		}
	}
	n := rep.Summary.OK + rep.Summary.Warnings + rep.Summary.Problems
	if n != len(rep.Findings) {
		t.Errorf("summary counts %d of %d findings", n, len(rep.Findings))
	}
}

func writeFile(t *testing.T, p, data string, perm os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(data), perm); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, perm); err != nil { // umask
		t.Fatal(err)
	}
}
