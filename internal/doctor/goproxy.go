package doctor

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// entryKind is what a GOPROXY entry means to the go command.
type entryKind int

const (
	kindProxy   entryKind = iota // http:// or https://
	kindFile                     // file://
	kindDirect                   // "direct": version control
	kindOff                      // "off": downloads disallowed
	kindInvalid                  // rejected by the go command
)

// proxyEntry is one non-empty entry of GOPROXY.
type proxyEntry struct {
	Index    int    // 1-based position among non-empty entries
	Raw      string // as written between separators
	Target   string // Raw without surrounding white space
	Kind     entryKind
	URL      *url.URL // kindProxy, kindFile
	Implicit bool     // the go command adds "https://"
	Sep      string   // separator after the entry: ",", "|" or "" at the end
	Ignored  bool     // after "direct" or "off": never used
	Err      string   // why the go command rejects it (kindInvalid)
	Hint     string   // a likely fix for a rejected or suspicious entry
}

// AnyError reports whether the go command moves past the entry on any
// error ("|"), rather than only on 404 and 410 (",").
func (e proxyEntry) AnyError() bool { return e.Sep == "|" }

// Name is the entry as shown in findings: a redacted URL or the keyword.
func (e proxyEntry) Name() string {
	if e.URL != nil {
		return e.URL.Redacted()
	}
	return e.Target
}

// proxyList is GOPROXY parsed as the go command parses it
// (cmd/go/internal/modfetch proxyList): entries split at "," and "|",
// trimmed, empty ones skipped, bare host names given "https://", and
// everything after "direct" or "off" ignored.
type proxyList struct {
	Value   string
	Entries []proxyEntry
	Empty   int    // empty entries (doubled or trailing separators)
	Err     string // the error every download fails with, if any
}

// Used returns the entries the go command uses.
func (l proxyList) Used() []proxyEntry {
	var out []proxyEntry
	for _, e := range l.Entries {
		if !e.Ignored {
			out = append(out, e)
		}
	}
	return out
}

// HasProxy reports whether a used entry is an HTTP(S) or file proxy.
func (l proxyList) HasProxy() bool {
	for _, e := range l.Used() {
		if e.Kind == kindProxy || e.Kind == kindFile {
			return true
		}
	}
	return false
}

func parseProxyList(value string) proxyList {
	l := proxyList{Value: value}
	rest := value
	ended := false
	for rest != "" {
		var raw, sep string
		if i := strings.IndexAny(rest, ",|"); i >= 0 {
			raw, sep, rest = rest[:i], rest[i:i+1], rest[i+1:]
			if rest == "" {
				l.Empty++ // a trailing separator
			}
		} else {
			raw, rest = rest, ""
		}
		target := strings.TrimSpace(raw)
		if target == "" {
			l.Empty++
			continue
		}
		e := proxyEntry{Index: len(l.Entries) + 1, Raw: raw, Target: target, Sep: sep, Ignored: ended}
		classifyEntry(&e)
		if !ended && e.Kind == kindInvalid && l.Err == "" {
			l.Err = e.Err
		}
		if e.Kind == kindDirect || e.Kind == kindOff {
			ended = true
		}
		l.Entries = append(l.Entries, e)
	}
	if l.Err == "" && len(l.Entries) == 0 {
		l.Err = "GOPROXY list is not the empty string, but contains no entries"
		if value == "" {
			l.Err = "GOPROXY is empty"
		}
	}
	return l
}

// classifyEntry decides what the go command makes of e.Target and looks
// for likely typos.
func classifyEntry(e *proxyEntry) {
	t := e.Target
	switch t {
	case "direct":
		e.Kind = kindDirect
		return
	case "off":
		e.Kind = kindOff
		return
	}
	e.Kind = kindInvalid
	if strings.ContainsAny(t, "\"'`") {
		e.Err = fmt.Sprintf("entry %q contains quotes", t)
		e.Hint = "remove the quotes: they are part of the value, not of the shell syntax"
		return
	}
	u := t
	if strings.ContainsAny(u, ".:/") && !strings.Contains(u, ":/") && !filepath.IsAbs(u) && !path.IsAbs(u) {
		u = "https://" + u
		e.Implicit = true
	}
	pu, err := url.Parse(u)
	if err != nil {
		e.Err = fmt.Sprintf("invalid proxy URL %q: %v", t, unwrapURLError(err))
		if strings.ContainsAny(t, " \t") {
			e.Hint = "remove the white space inside the entry"
		}
		return
	}
	switch pu.Scheme {
	case "http", "https":
		if pu.Host == "" {
			e.Err = fmt.Sprintf("proxy URL %s has no host", pu.Redacted())
			e.Hint = "write it as " + pu.Scheme + "://HOST[/PATH]"
			return
		}
	case "file":
		if *pu != (url.URL{Scheme: pu.Scheme, Path: pu.Path, RawPath: pu.RawPath}) {
			e.Err = fmt.Sprintf("invalid file:// proxy URL with non-path elements: %s", pu.Redacted())
			e.Hint = "write it as file:///ABSOLUTE/PATH"
			return
		}
		e.Kind, e.URL = kindFile, pu
		return
	case "":
		e.Err = "invalid proxy URL missing scheme: " + pu.Redacted()
		switch w := nearestWord(t, "direct", "off"); {
		case w != "":
			e.Hint = fmt.Sprintf("did you mean %q? (keywords are lower case)", w)
		default:
			e.Hint = "write the proxy as https://HOST[/PATH]; single words are reserved for the keywords direct and off"
		}
		return
	default:
		e.Err = "invalid proxy URL scheme (must be https, http, file): " + pu.Redacted()
		if w := nearestWord(pu.Scheme, "https", "http", "file"); w != "" {
			e.Hint = fmt.Sprintf("did you mean %s://?", w)
		}
		return
	}
	e.Kind, e.URL = kindProxy, pu
	if pu.RawQuery != "" || pu.Fragment != "" {
		e.Hint = "the query or fragment is kept in every request URL; remove it"
	}
}

func unwrapURLError(err error) error {
	if ue, ok := err.(*url.Error); ok {
		return ue.Err
	}
	return err
}

// nearestWord returns the word of words within edit distance 2 of s (or
// equal ignoring case), or "".
func nearestWord(s string, words ...string) string {
	best, bestD := "", 3
	for _, w := range words {
		if strings.EqualFold(s, w) {
			return w
		}
		if d := editDistance(strings.ToLower(s), w); d < bestD && d < len(w) {
			best, bestD = w, d
		}
	}
	return best
}

// editDistance is the number of single-byte insertions, deletions,
// substitutions and swaps of adjacent bytes that turn a into b (optimal
// string alignment distance).
func editDistance(a, b string) int {
	pprev := make([]int, len(b)+1)
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], pprev[j-2]+1)
			}
		}
		pprev, prev, cur = prev, cur, pprev
	}
	return prev[len(b)]
}

// isLoopbackHost reports whether host (without port) names this machine.
func isLoopbackHost(host string) bool {
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// entryMeaning explains what the go command does with e and after it.
func entryMeaning(e proxyEntry, last bool) string {
	switch e.Kind {
	case kindDirect:
		return "direct: fetch from the version control repository (git, hg, ...) named by the module path"
	case kindOff:
		return "off: downloads are refused (\"module lookup disabled by GOPROXY=off\"); only the module cache is used"
	case kindInvalid:
		return "invalid: " + e.Err
	}
	s := "proxy " + e.Name()
	if e.Implicit {
		s += " (https:// added by the go command)"
	}
	switch {
	case last:
		s += "; last entry: any failure, including 404/410, fails the download"
	case e.AnyError():
		s += `; "|": on any error (404/410, 5xx, timeout, connection or TLS failure) the next entry is tried`
	default:
		s += `; ",": only 404/410 fall through to the next entry; a timeout, 5xx, connection or TLS error stops the download`
	}
	return s
}

func (c *checker) checkGoProxy() {
	l := c.list
	title := "GOPROXY " + redactList(l)
	var seen strings.Builder
	for _, e := range l.Entries {
		if e.Ignored {
			continue
		}
		fmt.Fprintf(&seen, "%d. %s\n", e.Index, entryMeaning(e, lastUsed(l, e)))
	}
	switch {
	case l.Err != "":
		fix := `set a valid list, e.g. go env -w GOPROXY=https://PROXY,direct (or go env -u GOPROXY for the go command's default)`
		for _, e := range l.Entries {
			if !e.Ignored && e.Kind == kindInvalid && e.Hint != "" {
				fix = fmt.Sprintf("entry %d: %s; then check with go env GOPROXY", e.Index, e.Hint)
				break
			}
		}
		c.add(IDGoProxyList, Problem, title, strings.TrimSpace("every download fails with: go: "+l.Err+"\n"+seen.String()), fix)
	default:
		c.add(IDGoProxyList, OK, title, strings.TrimSpace(seen.String()), "")
	}

	// Per-entry remarks.
	for _, e := range l.Entries {
		switch {
		case e.Ignored && e.Kind == kindInvalid:
			c.add(IDGoProxyIgnored, Warning, fmt.Sprintf("GOPROXY entry %d: %s", e.Index, e.Target),
				"ignored: it comes after direct or off; were it used, the go command would reject it: "+e.Err,
				"remove it, or move it before direct/off and fix it: "+hintOr(e.Hint, "write https://HOST[/PATH]"))
		case e.Ignored:
			c.add(IDGoProxyIgnored, Warning, fmt.Sprintf("GOPROXY entry %d: %s", e.Index, e.Name()),
				"ignored: the go command stops reading GOPROXY at direct or off",
				"move it before direct/off if it should be used, or remove it")
		case e.Kind == kindProxy && strings.Contains(e.Target, ";"):
			c.add(IDGoProxyEntry, Problem, fmt.Sprintf("GOPROXY entry %d: %s", e.Index, e.Name()),
				fmt.Sprintf("\";\" is not a GOPROXY separator: the go command reads %q as one URL with host %q, which does not resolve, so every download through it fails", e.Target, e.URL.Host),
				"separate entries with \",\" (next entry on 404/410) or \"|\" (on any error): go env -w GOPROXY="+strings.ReplaceAll(l.Value, ";", ","))
		case e.Kind == kindProxy && e.Hint != "":
			c.add(IDGoProxyEntry, Warning, fmt.Sprintf("GOPROXY entry %d: %s", e.Index, e.Name()), "the URL has a query or fragment", e.Hint)
		case e.Kind == kindFile:
			if st, err := os.Stat(filepath.FromSlash(e.URL.Path)); err != nil || !st.IsDir() {
				c.add(IDGoProxyEntry, Problem, fmt.Sprintf("GOPROXY entry %d: %s", e.Index, e.Name()),
					"the directory does not exist or is not a directory", "create it or fix the path (file:///ABSOLUTE/PATH)")
			}
		}
		if e.Kind == kindProxy && !e.Ignored {
			if e.URL.Scheme == "http" && !isLoopbackHost(e.URL.Hostname()) {
				st, why := Warning, "module files travel unencrypted and can be altered on the way; only the checksum database protects them"
				if !c.sumdbOn() {
					st, why = Problem, "module files travel unencrypted and GOSUMDB=off, so nothing detects an altered download"
				}
				c.add(IDGoProxyHTTP, st, fmt.Sprintf("GOPROXY entry %d: %s", e.Index, e.Name()),
					"plain http:// to a host that is not this machine: "+why+"; credentials (netrc, GOAUTH) are never sent over http",
					"use https://"+e.URL.Host+e.URL.Path+" if the proxy supports it")
			}
			if e.URL.User != nil {
				c.add(IDGoProxyCreds, Warning, fmt.Sprintf("GOPROXY entry %d: %s", e.Index, e.Name()),
					"the URL carries credentials; they are sent as basic auth, but also shown by go env and stored in plain text in the go env file or shell profile",
					"move them to the netrc file (machine "+e.URL.Host+" login USER password TOKEN, chmod 600) and drop them from GOPROXY")
			}
		}
	}

	if strings.TrimSpace(l.Value) != l.Value || hasInnerEntrySpace(l) || l.Empty > 0 {
		var what []string
		if strings.TrimSpace(l.Value) != l.Value || hasInnerEntrySpace(l) {
			what = append(what, "white space around entries (the go command trims it, other tools may not)")
		}
		if l.Empty > 0 {
			what = append(what, fmt.Sprintf("%d empty entr%s from doubled or trailing separators (skipped by the go command)", l.Empty, plural(l.Empty, "y", "ies")))
		}
		c.add(IDGoProxySpace, Warning, "GOPROXY formatting", fmt.Sprintf("%q: %s", l.Value, strings.Join(what, "; ")),
			"write the list without spaces or empty entries, e.g. go env -w GOPROXY="+compactList(l))
	}

	if l.Err == "" {
		c.checkFallback()
	}
}

func hintOr(h, def string) string {
	if h != "" {
		return h
	}
	return def
}

// lastUsed reports whether e is the last entry the go command uses.
func lastUsed(l proxyList, e proxyEntry) bool {
	u := l.Used()
	return len(u) > 0 && u[len(u)-1].Index == e.Index
}

func hasInnerEntrySpace(l proxyList) bool {
	for _, e := range l.Entries {
		if e.Raw != e.Target {
			return true
		}
	}
	return false
}

// compactList rewrites the list without white space or empty entries.
func compactList(l proxyList) string {
	var b strings.Builder
	for _, e := range l.Entries {
		b.WriteString(e.Target)
		b.WriteString(e.Sep)
	}
	return strings.TrimRight(b.String(), ",|")
}

// redactList shows the list with credentials in URLs hidden.
func redactList(l proxyList) string {
	var b strings.Builder
	for _, e := range l.Entries {
		b.WriteString(e.Name())
		b.WriteString(e.Sep)
	}
	s := strings.TrimRight(b.String(), ",|")
	if s == "" {
		return fmt.Sprintf("%q", l.Value)
	}
	return s
}

// checkFallback reports chains that end in a proxy or in off, where one
// failing server fails every download.
func (c *checker) checkFallback() {
	used := c.list.Used()
	if len(used) == 0 {
		return
	}
	last := used[len(used)-1]
	var proxies []string
	anyPipe := false
	for _, e := range used {
		if e.Kind == kindProxy || e.Kind == kindFile {
			proxies = append(proxies, e.Name())
		}
		if e.AnyError() {
			anyPipe = true
		}
	}
	switch {
	case last.Kind == kindOff && len(used) == 1:
		c.add(IDGoProxyFallback, Warning, "GOPROXY=off",
			"downloads are disabled: anything not already in the module cache fails with \"module lookup disabled by GOPROXY=off\"",
			"intended for offline or vendored builds; otherwise go env -w GOPROXY=https://PROXY,direct")
	case last.Kind == kindOff:
		c.add(IDGoProxyFallback, Warning, "GOPROXY ends in off",
			"a module the proxies answer 404/410 for fails with \"module lookup disabled by GOPROXY=off\" instead of being fetched directly",
			"intended when direct access must never happen (private modules then need GONOPROXY); otherwise end the list with ,direct")
	case last.Kind == kindDirect && len(used) == 1:
		c.add(IDGoProxyFallback, OK, "GOPROXY=direct",
			"every module is fetched from its version control repository: needs git (or hg, ...) and network access to every code host; no proxy cache",
			"")
	case last.Kind == kindDirect:
		seen := "falls back to direct (version control) when the proxies answer 404/410"
		if !anyPipe {
			seen += `; with "," a proxy timeout, 5xx, connection or TLS failure stops the download before direct is tried`
		}
		c.add(IDGoProxyFallback, OK, "GOPROXY fallback", seen, "")
	case len(proxies) == 1:
		c.add(IDGoProxyFallback, Warning, "GOPROXY has no fallback",
			fmt.Sprintf("only %s is used: when it is down, slow or answers 404/410, every download that is not cached fails", proxies[0]),
			"if direct access is allowed, end the list with ,direct (or use | before a second proxy to fall through on any error)")
	default:
		seen := fmt.Sprintf("%d proxies and no direct: a module none of them serves fails", len(proxies))
		if !anyPipe {
			seen += `; with "," only 404/410 move to the next proxy: a timeout or 5xx of the first one fails the download`
		}
		c.add(IDGoProxyFallback, Warning, "GOPROXY fallback", seen,
			`use "|" between proxies to fall through on any error; end with ,direct if direct access is allowed`)
	}
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
