package doctor

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/mod/module"

	"github.com/modproxy/modproxy/internal/doctor/explain"
)

// publicServices are the module services everybody shares: the proxies of
// the go command's default GOPROXY and its default checksum database. They
// are learned from the go command (go env with GOENV=off and GOPROXY,
// GOSUMDB unset: the defaults of its GOROOT/go.env), never written down
// here. A module path that looks private is never sent to them.
type publicServices struct {
	proxyHosts []string // lower-case host names (no port) of the default GOPROXY's http(s) entries
	sumdb      string   // name of the default checksum database; "" when off or unknown
	err        string   // why the defaults are unknown; "" when known
}

// known reports whether the defaults could be read.
func (p publicServices) known() bool { return p.err == "" }

// proxy reports whether e is a public proxy.
func (p publicServices) proxy(e proxyEntry) bool {
	return e.Kind == kindProxy && slices.Contains(p.proxyHosts, strings.TrimSuffix(strings.ToLower(e.URL.Hostname()), "."))
}

// defaultEnv is the environment change under which go env reports the go
// command's own defaults: no go env file, no variable overriding them, and
// no toolchain switch.
func defaultEnv() map[string]string {
	return map[string]string{"GOENV": "off", "GOPROXY": "", "GOSUMDB": "", "GOFLAGS": "", "GOTOOLCHAIN": "local"}
}

// readPublic asks the go command for its defaults.
func readPublic(ctx context.Context, o Options) publicServices {
	if o.GoEnvWith == nil {
		return publicServices{err: "the go command's defaults were not read"}
	}
	def, err := o.GoEnvWith(ctx, defaultEnv(), "GOPROXY", "GOSUMDB")
	if err != nil {
		return publicServices{err: "reading the go command's defaults: " + err.Error()}
	}
	var p publicServices
	for _, e := range parseProxyList(def["GOPROXY"]).Used() {
		if e.Kind == kindProxy {
			p.proxyHosts = append(p.proxyHosts, strings.TrimSuffix(strings.ToLower(e.URL.Hostname()), "."))
		}
	}
	if s := parseSumDB(def["GOSUMDB"], nil); !s.Off && s.Err == "" {
		p.sumdb = s.Name
	}
	return p
}

// sumdbPublic reports whether the configured checksum database is the
// public one.
func (c *checker) sumdbPublic() bool {
	return c.sumdbOn() && c.sumdb.Err == "" && c.public.sumdb != "" && c.sumdb.Name == c.public.sumdb
}

// lookalike returns the public host that host is one edit away from
// (a letter added, dropped, changed or two letters swapped), or "".
func (p publicServices) lookalike(host string) string {
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	for _, h := range p.proxyHosts {
		if host != h && editDistance(host, h) == 1 {
			return h
		}
	}
	if h, _, _ := strings.Cut(p.sumdb, "/"); h != "" && host != h && editDistance(host, h) == 1 {
		return h
	}
	return ""
}

// privateTLDs are top-level names that never reach the public internet:
// special-use names (RFC 6761, 6762), the private-use .internal and the
// names commonly used on private networks (ICANN SAC113). A host under
// one of them cannot be fetched by a public proxy.
var privateTLDs = []string{"test", "example", "invalid", "localhost", "local", "internal", "lan", "home", "corp", "intranet", "private", "localdomain"}

// privateAddr reports whether an address is reachable only from a private
// network: loopback, RFC 1918 and unique-local, link-local, shared
// (100.64.0.0/10) or unspecified.
func privateAddr(a netip.Addr) bool {
	a = a.Unmap()
	return a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() || a.IsUnspecified() ||
		netip.MustParsePrefix("100.64.0.0/10").Contains(a)
}

// privacy is what doctor makes of a module path.
type privacy struct {
	private bool
	reason  string // why it looks private, or why it is taken as public
	pattern string // the GOPRIVATE pattern to suggest
}

// privatePatternVars are the go env variables whose patterns mark a path
// as private (each hints it, whatever else is set).
func privatePatternVars() []string {
	return []string{"GOPRIVATE", "GONOPROXY", "GONOSUMDB", "GOINSECURE"}
}

// judgePrivacy decides whether path looks private, without telling any
// proxy or checksum database about it:
//
//  1. it matches a pattern of GOPRIVATE, GONOPROXY, GONOSUMDB, GOINSECURE
//     or Options.PrivateHints: private;
//  2. the module cache holds a record of the public checksum database for
//     it: public;
//  3. its host is an IP address of a private network, or a name under a
//     top-level name that is never public (.internal, .corp, .test, ...):
//     private;
//  4. online, its host (only the host, as for any direct fetch) is
//     resolved with the system resolver: a name that resolves only to
//     private addresses is private, and so is a name that does not exist,
//     unless this machine reaches https hosts through an HTTP proxy (then
//     its own resolver may know no public names at all).
//
// Everything else is taken as public.
func (c *checker) judgePrivacy(ctx context.Context, path string) privacy {
	for _, k := range privatePatternVars() {
		if p := firstMatch(c.env[k], path); p != "" && !disabledPattern(p) {
			return privacy{true, fmt.Sprintf("it matches the %s pattern %q", k, p), p}
		}
	}
	if p := firstMatch(c.o.PrivateHints, path); p != "" {
		return privacy{true, fmt.Sprintf("it matches the private pattern %q given to doctor", p), p}
	}
	if c.public.sumdb != "" && c.sumdbRecord(path) {
		return privacy{false, "the module cache holds a record of the public checksum database " + c.public.sumdb + " for it", ""}
	}
	host, _, _ := strings.Cut(path, "/")
	host = strings.ToLower(host)
	pattern := explain.PrivatePattern(path)
	if a, err := netip.ParseAddr(host); err == nil {
		if privateAddr(a) {
			return privacy{true, "its host " + host + " is an address of a private network", pattern}
		}
		return privacy{false, "", ""}
	}
	for _, tld := range privateTLDs {
		if strings.HasSuffix(host, "."+tld) {
			return privacy{true, fmt.Sprintf("its host %s is under .%s, a name that is never public", host, tld), pattern}
		}
	}
	if strings.HasSuffix(host, ".home.arpa") {
		return privacy{true, "its host " + host + " is under .home.arpa, a name that is never public", pattern}
	}
	if c.o.Offline {
		return privacy{false, "", ""}
	}
	ctx, cancel := context.WithTimeout(ctx, c.o.Timeout)
	defer cancel()
	addrs, err := c.o.LookupIP(ctx, host)
	var dnsErr *net.DNSError
	switch {
	case errors.As(err, &dnsErr) && dnsErr.IsNotFound && !c.viaHTTPProxy(host):
		return privacy{true, "its host " + host + " does not resolve here (no such host): a name that exists only inside a private network, or a typo", pattern}
	case err != nil || len(addrs) == 0:
		return privacy{false, "", ""}
	case !slices.ContainsFunc(addrs, func(a netip.Addr) bool { return !privateAddr(a) }):
		return privacy{true, fmt.Sprintf("its host %s resolves only to private addresses (%s): it is reachable inside a private network only", host, addrs[0]), pattern}
	}
	return privacy{false, "", ""}
}

// sumdbRecord reports whether the module cache holds a lookup of the public
// checksum database for any version of path: the database knows it.
func (c *checker) sumdbRecord(path string) bool {
	dir := c.env["GOMODCACHE"]
	esc, err := module.EscapePath(path)
	if dir == "" || err != nil {
		return false
	}
	lookup := filepath.Join(dir, "cache", "download", "sumdb", filepath.FromSlash(c.public.sumdb), "lookup", filepath.FromSlash(esc))
	entries, err := os.ReadDir(filepath.Dir(lookup))
	if err != nil {
		return false
	}
	prefix := filepath.Base(lookup) + "@"
	return slices.ContainsFunc(entries, func(e os.DirEntry) bool { return strings.HasPrefix(e.Name(), prefix) })
}

// checkPublic reports which services doctor takes as public.
func (c *checker) checkPublic() {
	p := c.public
	switch {
	case c.o.GoEnvWith == nil:
		return
	case !p.known():
		c.add(IDPublic, Warning, "public module services", p.err+": doctor cannot tell which proxy is public, and takes none as public",
			"check that the go command runs (go env -json GOPROXY GOSUMDB)")
		return
	}
	proxies, db := "none", "none"
	if len(p.proxyHosts) > 0 {
		proxies = strings.Join(p.proxyHosts, ", ")
	}
	if p.sumdb != "" {
		db = p.sumdb
	}
	c.add(IDPublic, OK, "public module services",
		fmt.Sprintf("proxies %s and checksum database %s: the go command's defaults (go env without the go env file, GOPROXY and GOSUMDB); doctor never sends them a module path that looks private", proxies, db), "")
}

// checkLookalikes reports GOPROXY and GOSUMDB hosts one edit away from a
// public service's host: a typo that sends every module path to whoever
// owns that name.
func (c *checker) checkLookalikes() {
	type target struct{ title, host, what string }
	var targets []target
	for _, e := range c.list.Used() {
		if e.Kind == kindProxy {
			targets = append(targets, target{fmt.Sprintf("GOPROXY entry %d: %s", e.Index, e.Name()), e.URL.Hostname(), "every module path not in GONOPROXY is sent to it, and it can answer anything"})
		}
	}
	if s := c.sumdb; !s.Off && s.Err == "" {
		if s.URL != nil {
			targets = append(targets, target{"GOSUMDB URL " + s.URL.Redacted(), s.URL.Hostname(), "every module path looked up is sent to it"})
		} else if h, _, _ := strings.Cut(s.Name, "/"); s.Name != c.public.sumdb {
			targets = append(targets, target{"GOSUMDB " + s.Name, h, "every module path looked up is sent to it"})
		}
	}
	for _, t := range targets {
		if like := c.public.lookalike(t.host); like != "" {
			c.add(IDGoProxyLookalike, Problem, t.title,
				fmt.Sprintf("the host %s is one edit away from %s, a public module service (the go command's default): a typo, or a name registered to catch the typo; %s", t.host, like, t.what),
				fmt.Sprintf("write %s if that is what you meant (or go env -u GOPROXY / go env -u GOSUMDB for the defaults); if %s is really yours, ignore this", like, t.host))
		}
	}
}

// viaHTTPProxy reports whether requests to https://host go through an HTTP
// proxy (HTTPS_PROXY), which resolves the names itself.
func (c *checker) viaHTTPProxy(host string) bool {
	u, err := c.o.Proxy(&http.Request{Method: http.MethodGet, URL: &url.URL{Scheme: "https", Host: host}, Header: http.Header{}})
	return err == nil && u != nil
}
