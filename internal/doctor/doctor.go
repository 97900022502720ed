// Package doctor diagnoses a developer's module download setup: the
// effective go environment, every proxy of the GOPROXY chain and the
// checksum database behind it, and the local module cache. It implements
// `modproxy doctor`; the explanation of pasted go error messages lives in
// the sibling package explain.
//
// Contract:
//
//   - Everything is read from the effective `go env` through Options.GoEnv;
//     no default of the go command (GOPROXY, GOSUMDB, GOMODCACHE, ...) is
//     guessed or written down here. The public services (the proxies of the
//     go command's default GOPROXY and its default checksum database) are
//     what go env reports without the go env file and without GOPROXY and
//     GOSUMDB (Options.GoEnvWith). When go env fails and succeeds with
//     GOTOOLCHAIN=local, the failed toolchain switch is a finding and the
//     rest is read with GOTOOLCHAIN=local. The only other inputs are the
//     process environment (Options.LookupEnv: NETRC, HOME, GOTOOLCHAIN,
//     HTTP proxy variables), the files named by go env (go.mod, go.sum, the
//     go env file, the netrc file, the module cache) and the network.
//   - A module path that looks private (see judgePrivacy: a private-module
//     pattern, a host that is never public, a host that does not resolve or
//     resolves only to private addresses) is never sent to a public proxy or
//     checksum database, and to the other proxies only with
//     Options.ProbePrivate; this holds for the project's modules as for
//     Options.Module. Doctor never looks a module up in a checksum
//     database at all. When the go command would send such a path to a
//     public service, that is a Problem with the GOPRIVATE fix.
//   - Run reports findings; it never changes anything. The one write is a
//     temporary file created and removed at once to learn whether the module
//     cache is writable.
//   - Each finding has a stable ID (see the constants), a Status, a one-line
//     Title naming its subject, what was Seen and, unless it is OK, the Fix.
//     A status is Problem only when the go command will fail, leak a private
//     module path or download without any integrity check because of what
//     was seen; Warning when it works but is risky, slow or surprising. A
//     failing GOPROXY entry that the go command only reaches when an earlier
//     one fails (and the earlier one did not, for the canary) is a Warning.
//   - Secrets never appear in findings: URLs are shown redacted, netrc
//     passwords are never printed.
//   - With Options.Offline no network connection is made. Otherwise every
//     HTTP(S) proxy of the chain gets at most three small GET requests (the
//     canary's @v/list, /sumdb/NAME/supported and /sumdb/NAME/latest) and,
//     with Options.Module, one for the module (.info, or @v/list without a
//     version), each bounded by Options.Timeout; plus /latest of the checksum
//     database when the go command would reach it directly. Without
//     Options.Module, every module version the current project (go env
//     GOWORK, else GOMOD and its go.sum, read by package modrefs)
//     references is asked for once (its .info, or its .mod when only its
//     go.mod is needed), along the chain as the go command would, at most
//     Options.Concurrency at once and MaxProjectVersions in all. Proxies are
//     probed concurrently; the findings are in a deterministic order. The
//     host of Options.Module (and of a --canary that is not the default) is
//     resolved with Options.LookupIP to judge whether it is public.
//   - HTTP proxies are honoured as the go command honours them
//     (Options.Proxy, http.ProxyFromEnvironment by default), and
//     credentials are added as the go command adds them: basic auth from
//     the URL's user information, complete netrc entries over https when
//     GOAUTH includes netrc, and else, when GOAUTH holds "modproxy auth",
//     the token Options.ModproxyAuth returns for the URL (https only).
//     Other GOAUTH commands are not run. A proxy that answers 401 gets a
//     finding saying which source supplies credentials and whether they
//     were accepted.
//
// The package has no mutable package-level state.
package doctor

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"time"

	"golang.org/x/mod/module"

	"github.com/modproxy/modproxy/internal/goenv"
)

// Status is how bad a finding is.
type Status string

// Statuses, from good to bad.
const (
	OK      Status = "ok"
	Warning Status = "warning"
	Problem Status = "problem"
)

// Finding is the result of one check.
type Finding struct {
	// ID names the check; it is stable and shared by every finding of the
	// same check (for example one proxy.tls finding per proxy).
	ID     string `json:"id"`
	Status Status `json:"status"`
	// Title names the subject, e.g. "GOPROXY entry 1: https://proxy.example".
	Title string `json:"title"`
	// Seen is what was observed; it may span several lines.
	Seen string `json:"seen"`
	// Fix is what to do about it; empty for most OK findings.
	Fix string `json:"fix,omitempty"`
}

// Report is the outcome of Run.
type Report struct {
	Findings []Finding `json:"findings"`
	Summary  Summary   `json:"summary"`
}

// Summary counts the findings per status.
type Summary struct {
	OK       int `json:"ok"`
	Warnings int `json:"warnings"`
	Problems int `json:"problems"`
}

// HasProblems reports whether any finding has status Problem.
func (r Report) HasProblems() bool { return r.Summary.Problems > 0 }

// Finding IDs.
const (
	IDGoProxyList      = "goproxy.list"
	IDGoProxyEntry     = "goproxy.entry"
	IDGoProxySpace     = "goproxy.whitespace"
	IDGoProxyIgnored   = "goproxy.ignored"
	IDGoProxyHTTP      = "goproxy.plain-http"
	IDGoProxyCreds     = "goproxy.credentials"
	IDGoProxyFallback  = "goproxy.fallback"
	IDGoSumDB          = "gosumdb.config"
	IDGoSumDBRoute     = "gosumdb.route"
	IDPrivatePattern   = "private.pattern"
	IDPrivateSumDBLeak = "private.sumdb-leak"
	IDPrivateProxyLeak = "private.proxy-leak"
	IDPrivateUnmatched = "private.unmatched"
	IDGoInsecure       = "goinsecure"
	IDGoFlags          = "goflags"
	IDGoToolchain      = "gotoolchain"
	IDGo111Module      = "go111module"
	IDGoAuth           = "goauth"
	IDNetrc            = "netrc.file"
	IDNetrcPerm        = "netrc.permissions"
	IDNetrcEntry       = "netrc.entry"
	IDNetrcProxy       = "netrc.proxy"
	IDHTTPProxyEnv     = "network.http-proxy"
	IDOffline          = "network.offline"
	IDProxyDNS         = "proxy.dns"
	IDProxyConnect     = "proxy.connect"
	IDProxyTLS         = "proxy.tls"
	IDProxyHTTP        = "proxy.http"
	IDProxyLatency     = "proxy.latency"
	IDProxyProtocol    = "proxy.protocol"
	IDProxySumDB       = "proxy.sumdb"
	IDProxyChain       = "proxy.chain"
	IDCache            = "cache.location"
	IDCacheWritable    = "cache.writable"
	IDCachePartial     = "cache.partial"
	IDCacheTmp         = "cache.tmp"
	IDCacheZiphash     = "cache.ziphash"
	IDCacheNoZiphash   = "cache.ziphash-missing"
	IDCacheEdited      = "cache.edited"
	IDModuleCached     = "module.cached"
	IDModuleRoute      = "module.route"
	IDPublic           = "public.services"
	IDPrivateModule    = "private.module-leak"
	IDPrivateCanary    = "private.canary"
	IDPrivateBroad     = "gonosumdb.broad"
	IDGoProxyLookalike = "goproxy.lookalike"
)

// Defaults of Options.
const (
	// DefaultCanary is a small, widely mirrored module: only its path is
	// fixed here; the proxies asked for it come from go env GOPROXY.
	DefaultCanary       = "golang.org/x/mod"
	DefaultTimeout      = 10 * time.Second
	DefaultSlowResponse = 2 * time.Second
)

// Options configure Run. Only GoEnv is required; the zero value of every
// other field means the documented default.
type Options struct {
	// GoEnv reads the effective go environment (goenv.Command in
	// production, a fixed map in tests).
	GoEnv goenv.Reader
	// GoEnvWith reads go env with variables of its environment changed:
	// each name of set gets its value, "" removing it (GoEnvCommand in
	// production). It reads the go command's defaults, and go env with
	// GOTOOLCHAIN=local when GoEnv fails. Nil: neither is done, and no
	// proxy is known to be public.
	GoEnvWith func(ctx context.Context, set map[string]string, keys ...string) (map[string]string, error)
	// LookupEnv reads the process environment: NETRC, HOME (USERPROFILE on
	// Windows) and the HTTP proxy variables, for reporting. Default
	// os.LookupEnv.
	LookupEnv func(string) (string, bool)

	// Offline skips every network probe.
	Offline bool
	// Timeout bounds each network request. Default DefaultTimeout.
	Timeout time.Duration
	// SlowResponse is the latency above which a proxy is reported as slow.
	// Default DefaultSlowResponse.
	SlowResponse time.Duration
	// Canary is the module path whose @v/list is requested from each proxy.
	// Default DefaultCanary. Validate it with CheckCanary.
	Canary string
	// Module, when its Path is set, is checked in the local cache (Version
	// set) and routed through GONOPROXY/GONOSUMDB. Build it with
	// ParseModule.
	Module module.Version
	// PrivateHints are module path patterns (GOPRIVATE syntax,
	// comma-separated) known to be private, besides those of GOPRIVATE,
	// GONOPROXY, GONOSUMDB and GOINSECURE.
	PrivateHints string
	// ProbePrivate lets doctor ask the GOPROXY entries that are not public
	// for a Module, or a project's module, that looks private (a proxy may
	// still forward a path it does not have to its own upstream). Public
	// proxies are never asked.
	ProbePrivate bool
	// Concurrency bounds the requests in flight when the project's versions
	// are checked. Default DefaultConcurrency.
	Concurrency int
	// LookupIP resolves a host name, to judge whether a module's host is
	// public. Default net.Resolver.LookupNetIP with network "ip".
	LookupIP func(ctx context.Context, host string) ([]netip.Addr, error)

	// DialContext dials TCP connections. Default (&net.Dialer{}).DialContext.
	DialContext func(ctx context.Context, network, addr string) (net.Conn, error)
	// Proxy chooses the HTTP proxy of a request, as http.Transport.Proxy.
	// Default http.ProxyFromEnvironment.
	Proxy func(*http.Request) (*url.URL, error)
	// RootCAs are the trusted roots for TLS; nil means the system's.
	RootCAs *x509.CertPool
	// Now is the clock, for latencies and certificate expiry. Default
	// time.Now.
	Now func() time.Time
	// SumDBKey returns the verifier key the go command has built in for a
	// checksum database name (goenv.SumDBKey in production). Nil means
	// unknown: a GOSUMDB without a key is then reported but not verified.
	SumDBKey func(name string) (string, error)
	// LookPath finds a GOAUTH command. Default exec.LookPath.
	LookPath func(string) (string, error)
	// ModproxyAuth returns the token that modproxy's GOAUTH helper
	// ("modproxy auth" in GOAUTH) would send with a request for rawURL,
	// "" when it has none; the CLI reads the credentials saved by
	// modproxy login. Nil: the helper's credentials are not consulted.
	// The token is sent to the proxy it is meant for, never shown.
	ModproxyAuth func(rawURL string) (string, error)
}

func (o Options) withDefaults() Options {
	if o.LookupEnv == nil {
		o.LookupEnv = os.LookupEnv
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.SlowResponse <= 0 {
		o.SlowResponse = DefaultSlowResponse
	}
	if o.Canary == "" {
		o.Canary = DefaultCanary
	}
	if o.Concurrency <= 0 {
		o.Concurrency = DefaultConcurrency
	}
	if o.DialContext == nil {
		o.DialContext = (&net.Dialer{}).DialContext
	}
	if o.Proxy == nil {
		o.Proxy = http.ProxyFromEnvironment
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.LookPath == nil {
		o.LookPath = exec.LookPath
	}
	if o.LookupIP == nil {
		o.LookupIP = func(ctx context.Context, host string) ([]netip.Addr, error) {
			return (&net.Resolver{}).LookupNetIP(ctx, "ip", host)
		}
	}
	return o
}

// ParseModule parses a --module argument: a module path, optionally
// followed by "@" and a canonical version (release, pre-release or
// pseudo-version, +incompatible allowed). Queries such as "latest" or a
// branch name are rejected: only canonical versions are cached.
func ParseModule(s string) (module.Version, error) {
	p, v, hasVersion := strings.Cut(s, "@")
	if err := module.CheckPath(p); err != nil {
		return module.Version{}, err
	}
	if !hasVersion {
		return module.Version{Path: p}, nil
	}
	if v == "" || module.CanonicalVersion(v) != v {
		return module.Version{}, fmt.Errorf("%s: version %q is not canonical (want vMAJOR.MINOR.PATCH[-pre][+incompatible])", p, v)
	}
	if err := module.Check(p, v); err != nil {
		return module.Version{}, err
	}
	return module.Version{Path: p, Version: v}, nil
}

// CheckCanary validates a canary module path.
func CheckCanary(path string) error { return module.CheckPath(path) }

// goEnvKeys returns the go env variables Run reads.
func goEnvKeys() []string {
	return []string{
		"GOPROXY", "GOSUMDB", "GOPRIVATE", "GONOPROXY", "GONOSUMDB", "GOINSECURE",
		"GOFLAGS", "GOTOOLCHAIN", "GOAUTH", "GOMODCACHE", "GOMOD", "GOWORK", "GOVERSION", "GO111MODULE", "GOENV",
	}
}

// Run performs every check and returns the findings in a fixed order:
// go environment, network probes, module cache, then the module given in
// Options.Module or, without one, the current project's versions
// (checkProject). It returns an error only when the go environment cannot
// be read (not even with GOTOOLCHAIN=local) or ctx is done; every other
// failure is a finding.
func Run(ctx context.Context, opts Options) (Report, error) {
	if opts.GoEnv == nil {
		return Report{}, errors.New("doctor: Options.GoEnv is required")
	}
	if opts.Canary != "" {
		if err := CheckCanary(opts.Canary); err != nil {
			return Report{}, fmt.Errorf("canary: %w", err)
		}
	}
	o := opts.withDefaults()
	env, err := o.GoEnv(ctx, goEnvKeys()...)
	var switchErr error
	if err != nil {
		// A toolchain that cannot be downloaded fails every go command,
		// go env included: without the switch, doctor can still look.
		if o.GoEnvWith == nil || ctx.Err() != nil {
			return Report{}, fmt.Errorf("reading go env: %w", err)
		}
		local, lerr := o.GoEnvWith(ctx, map[string]string{"GOTOOLCHAIN": "local"}, goEnvKeys()...)
		if lerr != nil {
			return Report{}, fmt.Errorf("reading go env: %w", err)
		}
		env, switchErr = local, err
	}
	c := newChecker(o, env)
	c.public = readPublic(ctx, o)
	if switchErr != nil {
		c.switchErr = switchErr
		c.env["GOTOOLCHAIN"], c.toolchainFrom = c.configuredToolchain()
	}
	c.checkPublic()
	c.checkGoEnv()
	var p *prober // nil when offline
	if o.Offline {
		c.add(IDOffline, OK, "network probes", "skipped (--offline)", "")
		c.describeSumDBRouteOffline()
	} else {
		var done func()
		p, done = c.newProber()
		defer done()
		c.probe(ctx, p)
	}
	c.checkCache(ctx)
	if o.Module.Path != "" {
		c.checkModule(ctx, p)
	} else {
		c.checkProject(ctx, p)
	}
	if err := ctx.Err(); err != nil {
		return Report{}, err
	}
	return c.report(), nil
}

// checker holds the state of one Run.
type checker struct {
	o        Options
	env      map[string]string
	findings []Finding

	list   proxyList
	sumdb  sumdbConfig
	public publicServices
	// switchErr is why go env failed when it worked with GOTOOLCHAIN=local;
	// toolchainFrom says where the GOTOOLCHAIN value then comes from.
	switchErr     error
	toolchainFrom string
	edited        map[string]editResult // extracted trees re-hashed by the cache scan, by relative path
	mod           *modInfo              // nil when there is no main module
	auth          authConfig
	netrc         netrcFile
	results       map[int]*proxyProbe // by entry index, after probe
}

func newChecker(o Options, env map[string]string) *checker {
	c := &checker{o: o, env: env}
	c.list = parseProxyList(env["GOPROXY"])
	c.sumdb = parseSumDB(env["GOSUMDB"], o.SumDBKey)
	c.mod = readModInfo(env["GOMOD"])
	c.auth = parseGoAuth(env["GOAUTH"])
	c.netrc = c.readNetrc()
	return c
}

func (c *checker) add(id string, st Status, title, seen, fix string) {
	c.findings = append(c.findings, Finding{ID: id, Status: st, Title: title, Seen: seen, Fix: fix})
}

func (c *checker) report() Report {
	r := Report{Findings: c.findings}
	if r.Findings == nil {
		r.Findings = []Finding{}
	}
	for _, f := range r.Findings {
		switch f.Status {
		case OK:
			r.Summary.OK++
		case Warning:
			r.Summary.Warnings++
		case Problem:
			r.Summary.Problems++
		}
	}
	return r
}

// checkGoEnv runs the checks that need no network.
func (c *checker) checkGoEnv() {
	c.checkGoProxy()
	c.checkGoSumDB()
	c.checkLookalikes()
	c.checkPrivate()
	c.checkGoInsecure()
	c.checkGoFlags()
	c.checkGoToolchain()
	c.checkGo111Module()
	c.checkGoAuth()
	c.checkNetrc()
	c.checkHTTPProxyEnv()
}

// sumdbOn reports whether a checksum database is configured at all.
func (c *checker) sumdbOn() bool { return !c.sumdb.Off }
