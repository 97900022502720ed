package doctor

import (
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/mod/sumdb/note"

	"github.com/modproxy/modproxy/internal/doctor/explain"
	"github.com/modproxy/modproxy/internal/upstream"
)

// sumdbConfig is GOSUMDB parsed as the go command parses it
// (cmd/go/internal/modfetch dbDial).
type sumdbConfig struct {
	Value    string
	Off      bool
	Name     string
	Key      string        // the verifier key, when known
	Verifier note.Verifier // nil when the key is unknown
	Builtin  bool          // the key comes from the go command
	KeyErr   string        // the go command's key for Name could not be found
	URL      *url.URL      // explicit URL: bypasses GOPROXY
	Err      string        // the go command rejects the value
	Differs  bool          // a key is given and the go command has another one for Name
}

func parseSumDB(value string, builtin func(string) (string, error)) sumdbConfig {
	s := sumdbConfig{Value: value}
	if value == "off" {
		s.Off = true
		return s
	}
	f := strings.Fields(value)
	switch {
	case len(f) == 0:
		s.Err = "missing GOSUMDB"
		return s
	case len(f) > 2:
		s.Err = "invalid GOSUMDB: too many fields"
		return s
	}
	key := f[0]
	if !strings.Contains(key, "+") {
		s.Name = key
		if builtin != nil {
			k, err := builtin(key)
			if err != nil {
				s.KeyErr = err.Error()
			} else {
				key = k
				s.Builtin = true
			}
		}
	}
	if strings.Contains(key, "+") {
		v, err := note.NewVerifier(key)
		if err != nil {
			s.Err = "invalid GOSUMDB: " + err.Error()
			return s
		}
		s.Name, s.Key, s.Verifier = v.Name(), key, v
		if !s.Builtin && builtin != nil {
			if k, err := builtin(s.Name); err == nil && k != key {
				s.Differs = true
			}
		}
	}
	direct, err := url.Parse("https://" + s.Name)
	if err != nil || strings.HasSuffix(s.Name, "/") || direct.Host == "" || direct.RawPath != "" ||
		*direct != (url.URL{Scheme: "https", Host: direct.Host, Path: direct.Path}) {
		s.Err = "invalid sumdb name (must be host[/path]): " + s.Name
		return s
	}
	if len(f) == 2 {
		u, err := url.Parse(f[1])
		if err != nil {
			s.Err = "invalid GOSUMDB URL: " + unwrapURLError(err).Error()
			return s
		}
		s.URL = u
	}
	return s
}

// DirectURL is where the go command reaches the database when no proxy
// serves it: https://NAME.
func (s sumdbConfig) DirectURL() string { return "https://" + s.Name }

func (c *checker) checkGoSumDB() {
	s := c.sumdb
	title := fmt.Sprintf("GOSUMDB %q", s.Value)
	switch {
	case s.Off:
		c.add(IDGoSumDB, Warning, "GOSUMDB=off",
			"no checksum database: a module version not yet in go.sum is trusted as the proxy or repository serves it",
			"go env -u GOSUMDB to verify public modules again; exclude only private paths with GOPRIVATE or GONOSUMDB")
	case s.Err != "":
		c.add(IDGoSumDB, Problem, title, "every download that needs verification fails with: "+s.Err,
			"set GOSUMDB to NAME, NAME+KEY or \"NAME+KEY URL\" (go env -u GOSUMDB restores the default)")
	case s.Verifier == nil && s.KeyErr != "":
		c.add(IDGoSumDB, Warning, title,
			"a database name without a key; the go command accepts it only if it has the key built in, and none was found: "+s.KeyErr,
			"give the key as GOSUMDB=NAME+KEY (from the database's operator), or go env -u GOSUMDB")
	case s.Verifier == nil:
		c.add(IDGoSumDB, OK, title, "checksum database "+s.Name+" (key built into the go command; not checked here)", "")
	case s.Differs:
		c.add(IDGoSumDB, Warning, title,
			"the key given for "+s.Name+" differs from the one built into the go command: signed tree heads will not verify unless the database really uses this key",
			"check the key with the database's operator; go env -u GOSUMDB restores the built-in one")
	case s.Builtin:
		c.add(IDGoSumDB, OK, title, "checksum database "+s.Name+" with the key built into the go command", "")
	default:
		c.add(IDGoSumDB, OK, title, "checksum database "+s.Name+" with a custom key (parsed: "+s.Key[:len(s.Name)+9]+"...)", "")
	}
	if s.URL != nil && s.Err == "" {
		st, seen := OK, "the database is reached at "+s.URL.Redacted()+" directly, bypassing every GOPROXY entry"
		if s.URL.Scheme == "http" && !isLoopbackHost(s.URL.Hostname()) {
			st = Warning
			seen += "; over plain http (answers are signed, but the path of every module looked up is visible on the network)"
		}
		c.add(IDGoSumDB, st, "GOSUMDB URL", seen, hintIf(st != OK, "use https://"))
	}
}

func hintIf(cond bool, s string) string {
	if cond {
		return s
	}
	return ""
}

// splitQuoted splits GOFLAGS as the go command does (cmd/internal/quoted):
// fields separated by white space, each optionally in single or double
// quotes.
func splitQuoted(s string) ([]string, error) {
	var f []string
	for {
		s = strings.TrimLeft(s, " \t\n\r")
		if s == "" {
			return f, nil
		}
		if q := s[0]; q == '"' || q == '\'' {
			i := strings.IndexByte(s[1:], q)
			if i < 0 {
				return nil, fmt.Errorf("unterminated %c string", q)
			}
			f = append(f, s[1:1+i])
			s = s[i+2:]
			continue
		}
		i := strings.IndexAny(s, " \t\n\r")
		if i < 0 {
			i = len(s)
		}
		f = append(f, s[:i])
		s = s[i:]
	}
}

func (c *checker) checkGoFlags() {
	v := c.env["GOFLAGS"]
	if strings.TrimSpace(v) == "" {
		c.add(IDGoFlags, OK, "GOFLAGS", "empty", "")
		return
	}
	flags, err := splitQuoted(v)
	if err != nil {
		c.add(IDGoFlags, Problem, "GOFLAGS", fmt.Sprintf("%q: every go command fails with: go: parsing $GOFLAGS: %v", v, err), "fix the quoting: go env -w GOFLAGS=...")
		return
	}
	before := len(c.findings)
	for _, f := range flags {
		if !strings.HasPrefix(f, "-") || f == "-" || f == "--" || strings.HasPrefix(f, "---") || strings.HasPrefix(f, "-=") || strings.HasPrefix(f, "--=") {
			c.add(IDGoFlags, Problem, "GOFLAGS "+f, fmt.Sprintf("every go command fails with: go: parsing $GOFLAGS: non-flag %q", f),
				"each GOFLAGS word must be a flag; give values with =, e.g. -mod=mod rather than -mod mod")
			continue
		}
		name, val, hasVal := strings.Cut(strings.TrimPrefix(strings.TrimPrefix(f, "-"), "-"), "=")
		switch name {
		case "mod":
			switch val {
			case "":
				c.add(IDGoFlags, Problem, "GOFLAGS "+f, "go commands that take -mod fail with: go: flag needs an argument: -mod (from $GOFLAGS)",
					"give the value with =: -mod=mod, -mod=readonly or -mod=vendor")
			case "vendor":
				c.add(IDGoFlags, Warning, "GOFLAGS "+f,
					"the go command builds from vendor/ and never downloads modules: GOPROXY and the module cache play no part, and a vendor/ that does not match go.mod fails with \"inconsistent vendoring\"",
					"run go mod vendor after changing requirements, or drop -mod=vendor from GOFLAGS (a vendor/ directory is used by default anyway when go.mod says go 1.14 or later)")
			case "mod":
				c.add(IDGoFlags, OK, "GOFLAGS "+f, "go.mod and go.sum are updated as needed, even by go build", "")
			case "readonly":
				c.add(IDGoFlags, OK, "GOFLAGS "+f, "the default: go.mod and go.sum are never updated implicitly", "")
			default:
				c.add(IDGoFlags, Problem, "GOFLAGS "+f, fmt.Sprintf("-mod=%s is not a valid mode: go commands that take -mod fail", val), "use -mod=mod, -mod=readonly or -mod=vendor")
			}
		case "modcacherw":
			if !hasVal || val == "true" {
				c.add(IDGoFlags, Warning, "GOFLAGS "+f,
					"extracted modules in the cache stay writable: an accidental edit of a dependency goes unnoticed until go mod verify",
					"fine if you need rm -rf on the cache; otherwise use go clean -modcache or modproxy clean, and drop the flag")
			}
		case "insecure":
			c.add(IDGoFlags, Problem, "GOFLAGS "+f,
				"go get fails with: go: -insecure flag is no longer supported; use GOINSECURE instead",
				"remove -insecure from GOFLAGS; set GOINSECURE=PATTERN for the module paths that must be fetched without TLS verification")
		}
	}
	if len(c.findings) == before {
		c.add(IDGoFlags, OK, "GOFLAGS", fmt.Sprintf("%q: nothing that affects module downloads", v), "")
	}
}

// goVersion is a parsed Go release or language version ("1.21",
// "1.21rc1", "1.21.3").
type goVersion struct {
	major, minor, patch int
	kind                int // 0 language version, 1 beta, 2 rc, 3 release
	pre                 int
}

func parseGoVersion(s string) (goVersion, bool) {
	var v goVersion
	num := func(t string) (int, string, bool) {
		i := 0
		for i < len(t) && t[i] >= '0' && t[i] <= '9' {
			i++
		}
		if i == 0 || (i > 1 && t[0] == '0') {
			return 0, t, false
		}
		n := 0
		for _, ch := range t[:i] {
			n = n*10 + int(ch-'0')
		}
		return n, t[i:], true
	}
	var ok bool
	if v.major, s, ok = num(s); !ok || !strings.HasPrefix(s, ".") {
		return v, false
	}
	if v.minor, s, ok = num(s[1:]); !ok {
		return v, false
	}
	switch {
	case s == "":
		v.kind = 0
		if v.major == 1 && v.minor < 21 {
			v.kind = 3 // before Go 1.21, "1.20" was the release itself
		}
	case strings.HasPrefix(s, "."):
		v.kind = 3
		if v.patch, s, ok = num(s[1:]); !ok || s != "" {
			return v, false
		}
	case strings.HasPrefix(s, "rc"), strings.HasPrefix(s, "beta"):
		v.kind = 2
		if s[0] == 'b' {
			v.kind = 1
		}
		if v.pre, s, ok = num(strings.TrimLeft(s, "betarc")); !ok || s != "" {
			return v, false
		}
	default:
		return v, false
	}
	return v, true
}

func (v goVersion) less(w goVersion) bool {
	a := [5]int{v.major, v.minor, v.kind, v.patch, v.pre}
	b := [5]int{w.major, w.minor, w.kind, w.patch, w.pre}
	for i := range a {
		if a[i] != b[i] {
			return a[i] < b[i]
		}
	}
	return false
}

// toolchainVersion extracts the Go version of a toolchain name
// ("go1.22.1", "go1.22.1-custom"), as gover.FromToolchain.
func toolchainVersion(name string) (goVersion, bool) {
	if !strings.HasPrefix(name, "go") || strings.ContainsAny(name, `\/`) {
		return goVersion{}, false
	}
	v := name[2:]
	if i := strings.IndexAny(v, " \t-"); i >= 0 {
		v = v[:i]
	}
	return parseGoVersion(v)
}

// configuredToolchain returns the GOTOOLCHAIN the go command uses and where
// it is set, when go env could only be read with GOTOOLCHAIN=local: the
// process environment, else the go env file; "" when neither sets it (the
// default of GOROOT/go.env applies).
func (c *checker) configuredToolchain() (value, from string) {
	if v, ok := c.o.LookupEnv("GOTOOLCHAIN"); ok && v != "" {
		return v, "the environment"
	}
	if f := c.env["GOENV"]; f != "" && f != "off" {
		if data, err := os.ReadFile(f); err == nil {
			for _, line := range strings.Split(string(data), "\n") {
				if v, ok := strings.CutPrefix(strings.TrimSpace(line), "GOTOOLCHAIN="); ok && v != "" {
					return v, "the go env file " + f
				}
			}
		}
	}
	return "", ""
}

// reportSwitchFailure explains a toolchain switch that fails every go
// command (go env worked only with GOTOOLCHAIN=local).
func (c *checker) reportSwitchFailure() {
	tc := c.env["GOTOOLCHAIN"]
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(c.switchErr.Error()), "\n") {
		if l = upstream.Sanitize(l, 300); l != "" && len(lines) < 6 {
			lines = append(lines, "  "+l)
		}
	}
	seen := []string{"every go command here fails before it starts; go env said:"}
	seen = append(seen, lines...)
	seen = append(seen, "with GOTOOLCHAIN=local it works: the failing step is the switch to another toolchain, which the go command downloads as the module golang.org/toolchain through GOPROXY and verifies in the checksum database (the other findings were read with GOTOOLCHAIN=local)")
	if fs, err := explain.Explain(strings.NewReader(c.switchErr.Error())); err == nil && len(fs) > 0 {
		seen = append(seen, fmt.Sprintf("modproxy doctor explain: %s (%s)", fs[0].Title, fs[0].ID))
	}
	need, needFrom := c.requiredGo()
	local, localOK := toolchainVersion(c.env["GOVERSION"])
	name, _, _ := strings.Cut(tc, "+")
	var fix string
	switch v, ok := toolchainVersion(name); {
	case ok:
		seen = append(seen, fmt.Sprintf("the toolchain %s is named by GOTOOLCHAIN=%s (set in %s)", name, tc, c.toolchainFrom))
		unset := "unset GOTOOLCHAIN"
		if c.toolchainFrom != "the environment" {
			unset = "go env -u GOTOOLCHAIN"
		}
		fix = fmt.Sprintf("check the name (releases look like go1.22.3; go%s may not exist or not be served by GOPROXY), or stop forcing it: %s (or GOTOOLCHAIN=local)", v, unset)
	case needFrom != "" && localOK && local.less(need):
		from := "the default"
		if tc != "" {
			from = "GOTOOLCHAIN=" + tc + " (set in " + c.toolchainFrom + ")"
		}
		seen = append(seen, fmt.Sprintf("the toolchain go%s is asked for by %s; %s lets the go command switch to it", need.String(), needFrom, from))
		fix = fmt.Sprintf("if the go or toolchain line is a typo, fix it in %s (go mod edit -toolchain=none drops a toolchain line); otherwise make the download work (GOPROXY must serve golang.org/toolchain and the checksum database must be reachable), or install go%s and use GOTOOLCHAIN=path; GOTOOLCHAIN=local runs the installed Go, which then refuses this go.mod", c.mod.File, need.String())
	default:
		fix = "run go version to see the error; GOTOOLCHAIN=local runs the installed Go"
	}
	title := "GOTOOLCHAIN"
	if tc != "" {
		title += " " + tc
	}
	c.add(IDGoToolchain, Problem, title, strings.Join(seen, "\n"), fix)
}

func (c *checker) checkGoToolchain() {
	if c.switchErr != nil {
		c.reportSwitchFailure()
		return
	}
	tc := c.env["GOTOOLCHAIN"]
	local, localOK := toolchainVersion(c.env["GOVERSION"])
	title := "GOTOOLCHAIN " + tc
	if tc == "" {
		c.add(IDGoToolchain, OK, "GOTOOLCHAIN", "not reported by go env (a go command older than 1.21?)", "")
		return
	}
	mode := ""
	var min goVersion
	minOK := false
	switch tc {
	case "auto", "path":
		mode = tc
	default:
		name, suffix, plus := strings.Cut(tc, "+")
		if name != "local" {
			v, ok := toolchainVersion(name)
			if !ok {
				c.add(IDGoToolchain, Problem, title, "every go command fails with: invalid GOTOOLCHAIN", "use local, auto, path, goVERSION, goVERSION+auto or goVERSION+path (go env -u GOTOOLCHAIN restores the default)")
				return
			}
			min, minOK = v, true
		}
		if plus && suffix != "auto" && suffix != "path" {
			c.add(IDGoToolchain, Problem, title, "every go command fails with: only version suffixes are +auto and +path", "use +auto or +path")
			return
		}
		mode = suffix
	}
	need, needFrom := c.requiredGo()
	var notes []string
	st := OK
	fix := ""
	if minOK && localOK && local.less(min) {
		notes = append(notes, fmt.Sprintf("every go command runs %s instead of the installed %s, downloading it as module golang.org/toolchain through GOPROXY the first time", strings.SplitN(tc, "+", 2)[0], c.env["GOVERSION"]))
	}
	switch mode {
	case "":
		if needFrom != "" && localOK && local.less(need) && (!minOK || min.less(need)) {
			st = Problem
			notes = append(notes, fmt.Sprintf("%s requires go %s but the toolchain is pinned to %s: the go command fails with \"requires go >= ...\" and will not switch", needFrom, need.String(), versionName(min, minOK, c.env["GOVERSION"])))
			fix = "install a newer Go, or allow switching with go env -w GOTOOLCHAIN=auto"
		} else if len(notes) == 0 {
			notes = append(notes, "no toolchain switching: the installed go command always runs")
		}
	case "auto", "path":
		if needFrom != "" && localOK && local.less(need) {
			how := "downloads it as module golang.org/toolchain through GOPROXY (and verifies it in the checksum database)"
			if mode == "path" {
				how = "looks for it in PATH only (mode path never downloads)"
			}
			notes = append(notes, fmt.Sprintf("%s requires go %s: the go command switches to a newer toolchain and %s", needFrom, need.String(), how))
			if mode == "auto" {
				if used := c.list.Used(); len(used) == 1 && used[0].Kind == kindOff {
					st, fix = Problem, "allow downloads (GOPROXY) or install the toolchain and use GOTOOLCHAIN=path"
					notes = append(notes, "GOPROXY=off: the download fails")
				} else if !c.sumdbOn() {
					st, fix = Problem, "toolchain downloads need the checksum database: go env -u GOSUMDB, or install the toolchain and use GOTOOLCHAIN=path"
					notes = append(notes, "GOSUMDB=off: toolchain downloads are always verified in the checksum database, so the switch fails")
				}
			}
		} else {
			notes = append(notes, "switches to a newer toolchain when go.mod or go.work asks for one")
		}
	}
	c.add(IDGoToolchain, st, title, strings.Join(notes, "; "), fix)
}

func versionName(v goVersion, ok bool, local string) string {
	if ok {
		return "go" + v.String()
	}
	return local
}

func (v goVersion) String() string {
	s := fmt.Sprintf("%d.%d", v.major, v.minor)
	switch v.kind {
	case 1:
		s += fmt.Sprintf("beta%d", v.pre)
	case 2:
		s += fmt.Sprintf("rc%d", v.pre)
	case 3:
		if v.major > 1 || v.minor >= 21 || v.patch > 0 {
			s += fmt.Sprintf(".%d", v.patch)
		}
	}
	return s
}

// requiredGo returns the highest of the go and toolchain lines of the main
// module's go.mod, and the file it came from ("" when none).
func (c *checker) requiredGo() (goVersion, string) {
	if c.mod == nil {
		return goVersion{}, ""
	}
	var best goVersion
	from := ""
	if v, ok := parseGoVersion(c.mod.Go); ok {
		best, from = v, c.mod.File+" (go "+c.mod.Go+")"
	}
	if v, ok := toolchainVersion(c.mod.Toolchain); ok && best.less(v) {
		best, from = v, c.mod.File+" (toolchain "+c.mod.Toolchain+")"
	}
	return best, from
}

func (c *checker) checkGo111Module() {
	switch v := c.env["GO111MODULE"]; v {
	case "", "on", "auto":
		return
	case "off":
		c.add(IDGo111Module, Warning, "GO111MODULE=off",
			"GOPATH mode: go.mod, GOPROXY, the checksum database and the module cache are not used; go get clones into GOPATH/src",
			"go env -u GO111MODULE")
	default:
		c.add(IDGo111Module, Problem, "GO111MODULE="+v, "not a valid value: the go command fails with \"unknown environment setting GO111MODULE\"", "use on, off or auto (go env -u GO111MODULE)")
	}
}

// authConfig is GOAUTH as the go command reads it
// (cmd/go/internal/auth): commands separated by ";".
type authConfig struct {
	Value string
	Netrc bool     // netrc credentials are used
	Off   bool     // GOAUTH=off
	Git   []string // directories of "git DIR" commands
	Cmds  []string // other commands
	Errs  []string // fatal to the go command
}

func parseGoAuth(v string) authConfig {
	a := authConfig{Value: v}
	if v == "" { // go commands before 1.24 have no GOAUTH and always read netrc
		a.Netrc = true
		return a
	}
	cmds := strings.Split(v, ";")
	for _, cmd := range cmds {
		w := strings.Fields(cmd)
		if len(w) == 0 {
			a.Errs = append(a.Errs, fmt.Sprintf("GOAUTH encountered an empty command (GOAUTH=%s)", v))
			continue
		}
		switch w[0] {
		case "off":
			if len(cmds) != 1 {
				a.Errs = append(a.Errs, fmt.Sprintf("GOAUTH=off cannot be combined with other authentication commands (GOAUTH=%s)", v))
			}
			a.Off = true
		case "netrc":
			a.Netrc = true
		case "git":
			if len(w) != 2 || !filepath.IsAbs(w[1]) {
				a.Errs = append(a.Errs, "GOAUTH=git dir method requires an absolute path to the git working directory")
				continue
			}
			a.Git = append(a.Git, w[1])
		default:
			a.Cmds = append(a.Cmds, strings.TrimSpace(cmd))
		}
	}
	return a
}

func (c *checker) checkGoAuth() {
	a := c.auth
	title := fmt.Sprintf("GOAUTH %q", a.Value)
	if len(a.Errs) > 0 {
		c.add(IDGoAuth, Problem, title, "go commands that download fail with: go: "+strings.Join(a.Errs, "; "),
			`use netrc (the default), off, "git /ABSOLUTE/DIR" or a command, separated by ";" (go env -u GOAUTH restores the default)`)
		return
	}
	if a.Value == "" {
		c.add(IDGoAuth, OK, "GOAUTH", "not reported by go env (a go command older than 1.24): credentials come from the netrc file", "")
		return
	}
	var seen []string
	st, fix := OK, ""
	if a.Off {
		seen = append(seen, "off: no credentials are ever sent (netrc included)")
		if c.hasPrivateConfig() {
			st, fix = Warning, "private modules usually need credentials: go env -u GOAUTH (netrc) or configure a GOAUTH command"
		}
	}
	if a.Netrc {
		seen = append(seen, "netrc: credentials from the netrc file, sent over https only")
	}
	for _, d := range a.Git {
		if fi, err := os.Stat(d); err != nil || !fi.IsDir() {
			st, fix = Problem, "point \"git DIR\" at an existing directory"
			seen = append(seen, fmt.Sprintf("git %s: the directory does not exist (the go command fails)", d))
		} else {
			seen = append(seen, "git "+d+": credentials from git credential helpers")
		}
	}
	for _, cmd := range a.Cmds {
		prog := strings.Fields(cmd)[0]
		if _, err := c.o.LookPath(prog); err != nil {
			st, fix = Problem, "install the GOAUTH command or fix its name"
			seen = append(seen, fmt.Sprintf("command %q: not found (%v); without its credentials, requests get 401/403/404", prog, err))
		} else {
			seen = append(seen, fmt.Sprintf("command %q (not run by doctor)", prog))
		}
	}
	c.add(IDGoAuth, st, title, strings.Join(seen, "; "), fix)
}

// hasPrivateConfig reports whether any private-module variable is set.
func (c *checker) hasPrivateConfig() bool {
	for _, k := range []string{"GOPRIVATE", "GONOPROXY", "GONOSUMDB"} {
		if strings.TrimSpace(c.env[k]) != "" {
			return true
		}
	}
	return false
}

// proxyEnvVars returns the variables http.ProxyFromEnvironment reads, and
// ALL_PROXY, which it does not.
func proxyEnvVars() []string {
	return []string{"HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy", "REQUEST_METHOD"}
}

func (c *checker) checkHTTPProxyEnv() {
	var set []string
	all := false
	others := false
	for _, k := range proxyEnvVars() {
		v, ok := c.o.LookupEnv(k)
		if !ok || v == "" {
			continue
		}
		switch k {
		case "ALL_PROXY", "all_proxy":
			all = true
		case "REQUEST_METHOD":
			// Set under CGI: http.ProxyFromEnvironment then ignores HTTP_PROXY.
			set = append(set, "REQUEST_METHOD is set (CGI): HTTP_PROXY is ignored")
			continue
		default:
			others = true
		}
		set = append(set, k+"="+redactProxyValue(v))
	}
	var routes []string
	st, fix := OK, ""
	for _, e := range c.list.Used() {
		if e.Kind != kindProxy {
			continue
		}
		p, err := c.o.Proxy(&http.Request{Method: http.MethodGet, URL: e.URL, Header: http.Header{}})
		switch {
		case err != nil:
			st, fix = Problem, "fix the proxy variable (HTTPS_PROXY=http://HOST:PORT)"
			routes = append(routes, fmt.Sprintf("%s: invalid proxy setting: %v", e.Name(), err))
		case p != nil:
			routes = append(routes, fmt.Sprintf("%s: through HTTP proxy %s", e.Name(), p.Redacted()))
		default:
			routes = append(routes, e.Name()+": connected directly (no proxy, NO_PROXY or loopback)")
		}
	}
	if all && !others {
		st, fix = Warning, "Go ignores ALL_PROXY: set HTTPS_PROXY (and HTTP_PROXY, NO_PROXY) to the same proxy if one is needed"
	}
	seen := "no proxy variable set"
	if len(set) > 0 {
		seen = strings.Join(set, ", ")
	}
	if len(routes) > 0 {
		seen += "\n" + strings.Join(routes, "\n")
	}
	c.add(IDHTTPProxyEnv, st, "HTTP proxy environment", seen, fix)
}

func redactProxyValue(v string) string {
	if u, err := url.Parse(v); err == nil && u.User != nil {
		return u.Redacted()
	}
	if i := strings.LastIndex(v, "@"); i >= 0 && !strings.Contains(v, "://") {
		return "xxxxx" + v[i:]
	}
	return v
}

func (c *checker) checkGoInsecure() {
	v := c.env["GOINSECURE"]
	if strings.TrimSpace(v) == "" {
		return
	}
	seen := "modules matching " + v + " may be fetched directly over plain http and with unverified certificates; checksums are still checked unless GONOSUMDB covers them"
	st, fix := Warning, "keep GOINSECURE as narrow as possible; prefer fixing the server's certificate"
	var hits []string
	for _, e := range c.list.Used() {
		if e.Kind == kindProxy && matchPatterns(v, e.URL.Host+strings.TrimSuffix(e.URL.Path, "/")) {
			hits = append(hits, e.Name())
		}
	}
	if len(hits) > 0 {
		st = Problem
		seen += "\nit matches the GOPROXY host of " + strings.Join(hits, ", ") + ", but GOINSECURE applies only to module paths fetched directly: proxy requests still verify TLS"
		fix = "make the proxy's certificate trusted (install its CA in the system store, or SSL_CERT_FILE=/path/ca.pem) and remove the proxy host from GOINSECURE"
	}
	c.add(IDGoInsecure, st, "GOINSECURE "+v, seen, fix)
}
