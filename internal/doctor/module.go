package doctor

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/mod/module"
	"golang.org/x/mod/semver"
	"golang.org/x/mod/sumdb/dirhash"
)

// checkModule reports whether Options.Module is in the local cache and
// where a fresh download of it would come from.
func (c *checker) checkModule(ctx context.Context, p *prober) {
	m := c.o.Module
	if dir := c.env["GOMODCACHE"]; dir != "" {
		if m.Version == "" {
			c.checkModuleVersionsCached(dir, m.Path)
		} else {
			c.checkModuleCached(dir, m)
		}
	}
	c.checkModuleRoute(ctx, p, m)
}

func (c *checker) checkModuleVersionsCached(dir, modPath string) {
	esc, _ := module.EscapePath(modPath) // validated by ParseModule
	entries, _ := os.ReadDir(filepath.Join(dir, "cache", "download", filepath.FromSlash(esc), "@v"))
	var versions []string
	for _, e := range entries {
		if ev, ok := strings.CutSuffix(e.Name(), ".mod"); ok {
			if v, err := module.UnescapeVersion(ev); err == nil {
				versions = append(versions, v)
			}
		}
	}
	semver.Sort(versions)
	title := modPath + " in the module cache"
	if len(versions) == 0 {
		c.add(IDModuleCached, OK, title, "no version is cached: the next download asks GOPROXY", "")
		return
	}
	c.add(IDModuleCached, OK, title,
		fmt.Sprintf("cached versions: %s; a cached version is never downloaded again, while queries (@latest, go get -u) still ask GOPROXY", strings.Join(versions, " ")),
		"")
}

func (c *checker) checkModuleCached(dir string, m module.Version) {
	esc, _ := module.EscapePath(m.Path)
	ev, _ := module.EscapeVersion(m.Version)
	base := filepath.Join(dir, "cache", "download", filepath.FromSlash(esc), "@v", ev)
	tree := filepath.Join(dir, filepath.FromSlash(esc)+"@"+ev)
	title := m.String() + " in the module cache"
	var have []string
	exists := func(p string) bool { _, err := os.Stat(p); return err == nil }
	for _, ext := range []string{".info", ".mod", ".zip", ".ziphash", ".partial"} {
		if exists(base + ext) {
			have = append(have, ext)
		}
	}
	if exists(tree) {
		have = append(have, "extracted tree "+tree)
	}
	if len(have) == 0 {
		c.add(IDModuleCached, OK, title, "not cached: a build that needs it downloads it fresh (see module.route)", "")
		return
	}
	c.add(IDModuleCached, Warning, title,
		"cached ("+strings.Join(have, ", ")+"): the go command uses these files and asks no proxy for this version, so a GOPROXY change or a fixed upstream has no effect on it until it is removed",
		"modproxy clean --module "+m.String()+" (or go clean -modcache, which empties the whole cache), then build again")

	// Integrity of what is cached.
	var bad []string
	zipSum, modSum := "", ""
	if exists(base+".zip") && exists(base+".ziphash") {
		if h, err := dirhash.HashZip(base+".zip", dirhash.Hash1); err != nil {
			bad = append(bad, "the zip cannot be read: "+err.Error())
		} else if data, err := os.ReadFile(base + ".ziphash"); err == nil {
			zipSum = h
			if got := strings.TrimSpace(string(data)); got != h {
				bad = append(bad, fmt.Sprintf(".ziphash says %s but the zip hashes to %s", truncate(got, 60), h))
			}
		}
	}
	if exists(tree) && exists(base+".ziphash") {
		rel := filepath.ToSlash(esc) + "@" + ev
		r, ok := c.edited[rel]
		if !ok {
			var err error
			if r, ok, err = hashTree(dir, rel); err != nil {
				bad = append(bad, "the extracted tree cannot be re-hashed: "+errText(err))
			}
		}
		if ok && r.Got != r.Want {
			bad = append(bad, fmt.Sprintf("the extracted tree %s hashes to %s but its .ziphash says %s: files in it were edited after extraction (go mod verify reports \"dir has been modified\"), and builds use the edited files", tree, r.Got, r.Want))
		}
	}
	if exists(base + ".mod") {
		if h, err := dirhash.Hash1([]string{"go.mod"}, func(string) (io.ReadCloser, error) { return os.Open(base + ".mod") }); err == nil {
			modSum = h
		}
	}
	if c.mod != nil && c.mod.Sums != nil {
		if want := c.mod.Sums[m.Path+" "+m.Version]; want != "" && zipSum != "" && want != zipSum {
			bad = append(bad, fmt.Sprintf("go.sum has %s but the cached zip hashes to %s (the go command reports a checksum mismatch)", want, zipSum))
		}
		if want := c.mod.Sums[m.Path+" "+m.Version+"/go.mod"]; want != "" && modSum != "" && want != modSum {
			bad = append(bad, fmt.Sprintf("go.sum has %s for go.mod but the cached .mod hashes to %s (the go command reports a checksum mismatch)", want, modSum))
		}
	}
	if len(bad) > 0 {
		c.add(IDModuleCached, Problem, title, strings.Join(bad, "\n"),
			"remove the cached copy and download it again: modproxy clean --module "+m.String()+"; if the mismatch with go.sum persists, the upstream changed the version: do not just update go.sum")
	}
}

// firstMatch returns the first pattern of globs that matches target.
func firstMatch(globs, target string) string {
	for _, p := range splitPatterns(globs) {
		if matchPatterns(p, target) {
			return p
		}
	}
	return ""
}

// checkModuleRoute works out, with GONOPROXY, GONOSUMDB, GOINSECURE and
// GOPROXY, how a fresh download of m would be fetched and verified; when
// online it asks the proxies, in chain order, for the version (or its
// list), except where a path that looks private must not go.
func (c *checker) checkModuleRoute(ctx context.Context, p *prober, m module.Version) {
	priv := c.judgePrivacy(ctx, m.Path)
	defer c.reportPrivateModule(m, priv, true)
	title := "fresh download of " + m.String()
	var lines []string
	st, fix := OK, ""
	worse := func(s Status, f string) {
		if s == Problem || st == OK {
			st, fix = s, f
		}
	}
	direct := false
	if pat := firstMatch(c.env["GONOPROXY"], m.Path); pat != "" && c.env["GOPROXY"] != "direct" {
		direct = true
		lines = append(lines, fmt.Sprintf("fetched directly from version control: GONOPROXY pattern %q matches (no proxy is asked)", pat))
	} else if c.list.Err != "" {
		lines = append(lines, "fails: the go command rejects GOPROXY ("+c.list.Err+")")
		worse(Problem, "fix GOPROXY")
	} else {
		l, s, f := c.routeThroughProxies(ctx, p, m, priv)
		lines = append(lines, l...)
		if s != OK {
			worse(s, f)
		}
		for _, e := range c.list.Used() {
			if e.Kind == kindDirect {
				direct = true
			}
		}
	}
	if pat := firstMatch(c.env["GOINSECURE"], m.Path); pat != "" && direct {
		lines = append(lines, fmt.Sprintf("GOINSECURE pattern %q matches: a direct fetch may use plain http and skip certificate checks", pat))
	}

	switch ns := firstMatch(c.env["GONOSUMDB"], m.Path); {
	case m.Path == "golang.org/toolchain":
		lines = append(lines, "checksums: always verified in the checksum database (toolchains are not listed in go.sum)")
	case !c.sumdbOn():
		lines = append(lines, "checksums: not verified against a checksum database (GOSUMDB=off); only go.sum protects it")
	case ns != "":
		lines = append(lines, fmt.Sprintf("checksums: not looked up in a checksum database (GONOSUMDB pattern %q); only go.sum protects it", ns))
	default:
		lines = append(lines, "checksums: looked up in the checksum database "+c.sumdb.Name+" (unless already in go.sum)")
		if pat := firstMatch(c.env["GONOPROXY"], m.Path); pat != "" {
			worse(Problem, fmt.Sprintf("add the pattern to GONOSUMDB, or set GOPRIVATE=%s so that both follow it", pat))
			lines = append(lines, "the module is private for GONOPROXY but not for GONOSUMDB: its path is sent to "+c.sumdb.Name+", and the lookup fails for a private module")
		}
	}
	c.add(IDModuleRoute, st, title, strings.Join(lines, "\n"), fix)
}

// routeThroughProxies describes the GOPROXY chain for m; online, it asks
// each proxy in turn until one serves m (as the go command would). A path
// that looks private is never sent to a public proxy, and to the others
// only with Options.ProbePrivate; the entries after one not asked are not
// asked either.
func (c *checker) routeThroughProxies(ctx context.Context, p *prober, m module.Version, priv privacy) ([]string, Status, string) {
	esc, _ := module.EscapePath(m.Path)
	rel := esc + "/@v/list"
	if m.Version != "" {
		ev, _ := module.EscapeVersion(m.Version)
		rel = esc + "/@v/" + ev + ".info"
	}
	lines, outcome := c.walkChain(ctx, p, rel, priv)
	switch outcome {
	case chainOff:
		return lines, Warning, "allow downloads in GOPROXY, or make the module available in the cache or vendor/"
	case chainFailed:
		return lines, Problem, "see the proxy findings above"
	case chainNotFound:
		return append(lines, "no entry serves it: the download fails with \"not found\""), Warning, "check the module path and version, and whether a private module needs GOPRIVATE/GONOPROXY"
	}
	return lines, OK, ""
}

// chainOutcome is how the GOPROXY chain answered one request.
type chainOutcome int

const (
	chainServed       chainOutcome = iota // an entry answered 200
	chainDirect                           // the go command reaches direct: version control, not asked
	chainFellToDirect                     // as chainDirect, after every proxy asked answered not found
	chainOff                              // the go command reaches off: the download fails
	chainFailed                           // an entry failed in a way that stops the go command
	chainNotFound                         // every entry answered not found
	chainUnknown                          // an entry was not asked, so the answer is unknown
)

// walkChain asks the GOPROXY entries for rel (a path below the proxy
// URL) in order, as the go command would, and describes each step in a
// line. An entry is not asked offline (p nil), for a path that looks
// private when the entry is a public proxy or Options.ProbePrivate is off,
// or after an entry that was not asked.
func (c *checker) walkChain(ctx context.Context, p *prober, rel string, priv privacy) ([]string, chainOutcome) {
	var lines []string
	unasked := false  // an earlier entry was not asked: the answers are unknown
	notFound := false // an entry asked answered not found
	for _, e := range c.list.Used() {
		switch e.Kind {
		case kindDirect:
			if notFound && !unasked {
				return append(lines, "direct: then fetched from version control"), chainFellToDirect
			}
			return append(lines, "direct: then fetched from version control"), chainDirect
		case kindOff:
			return append(lines, "off: the download fails (\"module lookup disabled by GOPROXY=off\")"), chainOff
		case kindInvalid:
			continue
		}
		why := ""
		switch {
		case p == nil:
			why = "--offline"
		case priv.private && c.public.proxy(e):
			why = "the path looks private, and doctor never sends such a path to a public proxy"
		case priv.private && !c.o.ProbePrivate:
			why = "the path looks private; --probe-private asks the proxies that are not public"
		case unasked:
			why = "an earlier entry was not asked"
		}
		if why != "" {
			unasked = true
			sep := "only 404/410 move on"
			if e.AnyError() {
				sep = "any error moves on"
			}
			lines = append(lines, fmt.Sprintf("%s (not asked: %s; %s)", e.Name(), why, sep))
			continue
		}
		r := p.get(ctx, joinURL(e.URL, rel))
		switch {
		case r.ok():
			return append(lines, e.Name()+": 200, served from here"), chainServed
		case r.notFound():
			notFound = true
			lines = append(lines, e.Name()+": "+r.summary()+", next entry")
		case e.AnyError():
			lines = append(lines, e.Name()+": "+r.summary()+", next entry (\"|\")")
		default:
			return append(lines, e.Name()+": "+r.summary()+": the download fails here"), chainFailed
		}
	}
	if unasked {
		return lines, chainUnknown
	}
	return lines, chainNotFound
}

// reportPrivateModule flags a module that looks private when the go
// command would send its path to a public proxy or checksum database;
// with okFinding, it also says so when it would not.
func (c *checker) reportPrivateModule(m module.Version, priv privacy, okFinding bool) {
	if !priv.private {
		return
	}
	title := m.Path + " looks private"
	var leaks []string
	np, ns, gp := c.env["GONOPROXY"], c.env["GONOSUMDB"], c.env["GOPRIVATE"]
	toProxy := firstMatch(np, m.Path) == ""
	if toProxy {
		var before []string
	chain:
		for _, e := range c.list.Used() {
			switch {
			case e.Kind == kindDirect || e.Kind == kindOff:
				break chain
			case c.public.proxy(e):
				how := "first"
				if len(before) > 0 {
					how = "when " + strings.Join(before, ", ") + " do" + plural(len(before), "es", "") + " not serve it"
				}
				leaks = append(leaks, fmt.Sprintf("the go command requests it from the public proxy %s %s (no GONOPROXY pattern matches)", e.Name(), how))
				break chain
			case e.Kind == kindProxy || e.Kind == kindFile:
				before = append(before, e.Name())
			}
		}
	}
	toSumDB := firstMatch(ns, m.Path) == "" && c.sumdbPublic() && m.Path != "golang.org/toolchain"
	if !toProxy && toSumDB {
		return // private for GONOPROXY only: module.route reports the checksum database leak
	}
	if toSumDB {
		leaks = append(leaks, "every version not yet in go.sum is looked up in the public checksum database "+c.sumdb.Name+" (no GONOSUMDB pattern matches)")
	}
	if len(leaks) == 0 {
		if !okFinding {
			return
		}
		seen := "it looks private: " + priv.reason + "; no public proxy or checksum database gets its path"
		if !c.public.known() {
			seen = "it looks private: " + priv.reason + "; which proxy and checksum database are public is not known (" + c.public.err + ")"
		}
		c.add(IDPrivateModule, OK, title, seen, "")
		return
	}
	fix := "go env -w GOPRIVATE=" + joinPattern(gp, priv.pattern) + " (it sets GONOPROXY and GONOSUMDB too; the other patterns already in GOPRIVATE are kept)"
	if toProxy && np != gp {
		fix += "; GONOPROXY is set on its own and overrides GOPRIVATE: go env -u GONOPROXY, or go env -w GONOPROXY=" + joinPattern(np, priv.pattern)
	}
	if toSumDB && ns != gp {
		fix += "; GONOSUMDB is set on its own and overrides GOPRIVATE: go env -u GONOSUMDB, or go env -w GONOSUMDB=" + joinPattern(ns, priv.pattern)
	}
	c.add(IDPrivateModule, Problem, title,
		"it looks private ("+priv.reason+"), but "+strings.Join(leaks, "; and ")+
			": its path and version leak to a public service, which cannot fetch a private module anyway (404/410, \"verifying module: ... 404 Not Found\"); doctor did not send it there",
		fix)
}
