package doctor

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/mod/modfile"
	"golang.org/x/mod/module"

	"github.com/modproxy/modproxy/internal/doctor/explain"
)

// matchPatterns is the go command's pattern matching for GOPRIVATE,
// GONOPROXY, GONOSUMDB and GOINSECURE.
func matchPatterns(globs, target string) bool { return module.MatchPrefixPatterns(globs, target) }

// splitPatterns returns the non-empty comma-separated elements of v,
// untrimmed (the go command does not trim them either).
func splitPatterns(v string) []string {
	var out []string
	for _, p := range strings.Split(v, ",") {
		if p != "" {
			out = append(out, p)
		}
	}
	return out
}

// disabledPattern reports whether p is a conventional way to set a
// variable to "nothing" (GONOPROXY=none when GOPRIVATE is set).
func disabledPattern(p string) bool { return p == "none" || p == "off" }

// modInfo is what doctor needs from the main module.
type modInfo struct {
	File      string
	Path      string
	Go        string
	Toolchain string
	Modules   []string          // module paths required, replaced or listed in go.sum
	Sums      map[string]string // go.sum: "PATH VERSION[/go.mod]" -> h1 hash
}

// readModInfo reads the go.mod named by go env GOMOD and the go.sum beside
// it. It returns nil when there is no main module or the file cannot be
// read.
func readModInfo(gomod string) *modInfo {
	if gomod == "" || gomod == os.DevNull || filepath.Base(gomod) != "go.mod" {
		return nil
	}
	data, err := os.ReadFile(gomod)
	if err != nil {
		return nil
	}
	f, err := modfile.ParseLax(gomod, data, nil)
	if err != nil {
		return nil
	}
	m := &modInfo{File: gomod}
	seen := map[string]bool{}
	addMod := func(p string) {
		if p != "" && !seen[p] && !strings.HasPrefix(p, ".") && !filepath.IsAbs(p) {
			seen[p] = true
			m.Modules = append(m.Modules, p)
		}
	}
	if f.Module != nil {
		m.Path = f.Module.Mod.Path
		addMod(m.Path)
	}
	if f.Go != nil {
		m.Go = f.Go.Version
	}
	if f.Toolchain != nil {
		m.Toolchain = f.Toolchain.Name
	}
	for _, r := range f.Require {
		addMod(r.Mod.Path)
	}
	for _, r := range f.Replace {
		addMod(r.Old.Path)
		addMod(r.New.Path)
	}
	if sum, err := os.ReadFile(filepath.Join(filepath.Dir(gomod), "go.sum")); err == nil {
		sc := bufio.NewScanner(bytes.NewReader(sum))
		for sc.Scan() {
			if f := strings.Fields(sc.Text()); len(f) == 3 {
				addMod(f[0])
				if m.Sums == nil {
					m.Sums = map[string]string{}
				}
				if k := f[0] + " " + f[1]; m.Sums[k] == "" {
					m.Sums[k] = f[2]
				}
			}
		}
	}
	slices.Sort(m.Modules)
	return m
}

// covered reports whether every module path matched by pattern p is also
// matched by globs. Patterns are compared as paths: exact for literal
// patterns, and a good approximation for globs (a "*" element of p is
// matched by a "*" element of globs).
func covered(globs, p string) bool {
	return matchPatterns(globs, strings.TrimSuffix(p, "/"))
}

func (c *checker) checkPrivate() {
	vars := []string{"GOPRIVATE", "GONOPROXY", "GONOSUMDB", "GOINSECURE"}
	// Pattern syntax: reported once per pattern, naming every variable it
	// appears in (GONOPROXY and GONOSUMDB default to GOPRIVATE).
	type occurrence struct{ vars []string }
	order := []string{}
	occ := map[string]*occurrence{}
	for _, k := range vars {
		for _, p := range splitPatterns(c.env[k]) {
			if occ[p] == nil {
				occ[p] = &occurrence{}
				order = append(order, p)
			}
			occ[p].vars = append(occ[p].vars, k)
		}
	}
	bad := map[string]bool{} // reported here, and left out of the checks below
	for _, p := range order {
		where := strings.Join(occ[p].vars, ", ")
		if why, fix := patternMistake(p); why != "" {
			bad[p] = true
			c.add(IDPrivatePattern, Problem, fmt.Sprintf("pattern %q in %s", p, where), why, fix)
		}
	}

	np, ns, priv := c.env["GONOPROXY"], c.env["GONOSUMDB"], c.env["GOPRIVATE"]

	// Fetched directly (GONOPROXY) but looked up in the checksum database.
	if c.sumdbOn() && c.sumdb.Err == "" {
		reported := map[string]bool{}
		for _, k := range []string{"GONOPROXY", "GOPRIVATE"} {
			for _, p := range splitPatterns(c.env[k]) {
				if reported[p] || disabledPattern(p) || bad[p] || covered(ns, p) {
					continue
				}
				reported[p] = true
				fix := fmt.Sprintf("set GOPRIVATE to cover it (it feeds both GONOPROXY and GONOSUMDB): go env -w GOPRIVATE=%s; or go env -w GONOSUMDB=%s", joinPattern(priv, p), joinPattern(ns, p))
				if covered(priv, p) {
					fix = fmt.Sprintf("GONOSUMDB is set and overrides GOPRIVATE: go env -u GONOSUMDB (it then follows GOPRIVATE), or go env -w GONOSUMDB=%s", joinPattern(ns, p))
				}
				c.add(IDPrivateSumDBLeak, Problem, fmt.Sprintf("%s pattern %q not in GONOSUMDB", k, p),
					fmt.Sprintf("modules matching %q are treated as private by %s, but their paths and versions are still sent to the checksum database %s: the path leaks, and for a private module the lookup fails (\"verifying module: ... 404 Not Found\" or \"410 Gone\")", p, k, c.sumdb.Name),
					fix)
			}
		}
	}

	// Not verified in the database (GONOSUMDB, GOPRIVATE) but requested from
	// the proxies.
	if c.list.HasProxy() {
		reported := map[string]bool{}
		for _, k := range []string{"GOPRIVATE", "GONOSUMDB"} {
			for _, p := range splitPatterns(c.env[k]) {
				if reported[p] || disabledPattern(p) || bad[p] || covered(np, p) {
					continue
				}
				reported[p] = true
				var proxies []string
				for _, e := range c.list.Used() {
					if e.Kind == kindProxy || e.Kind == kindFile {
						proxies = append(proxies, e.Name())
					}
				}
				fix := fmt.Sprintf("if the proxy is public: go env -w GOPRIVATE=%s (it feeds GONOPROXY too), or go env -w GONOPROXY=%s", joinPattern(priv, p), joinPattern(np, p))
				if covered(priv, p) {
					fix = fmt.Sprintf("if the proxy is public: GONOPROXY is set and overrides GOPRIVATE: go env -u GONOPROXY (it then follows GOPRIVATE), or go env -w GONOPROXY=%s", joinPattern(np, p))
				}
				st, seen := Warning, fmt.Sprintf("modules matching %q are requested from %s first: right if that proxy serves your private modules, a leak of the private path if it is a public proxy (which answers 404/410 and, with ,direct, lets the go command fetch directly)", p, strings.Join(proxies, ", "))
				if pub := c.publicProxies(); len(pub) > 0 {
					st = Problem
					seen = fmt.Sprintf("modules matching %q are requested from the proxies in GOPROXY, among them the public proxy %s (the go command's default): their private paths leak to it", p, strings.Join(pub, ", "))
					fix = strings.TrimPrefix(fix, "if the proxy is public: ")
				}
				c.add(IDPrivateProxyLeak, st, fmt.Sprintf("%s pattern %q not in GONOPROXY", k, p), seen, fix)
			}
		}
	}

	// Patterns that turn verification off for public modules.
	for _, p := range splitPatterns(ns) {
		if bad[p] || disabledPattern(p) || !c.sumdbOn() {
			continue
		}
		if what := broadPattern(p); what != "" {
			from := "GONOSUMDB"
			if ns == priv {
				from = "GONOSUMDB (from GOPRIVATE)"
			}
			c.add(IDPrivateBroad, Warning, fmt.Sprintf("%s pattern %q", from, p),
				fmt.Sprintf("it matches %s: checksum verification is off for them, so a version not yet in go.sum is trusted as the proxy or repository serves it, as with GOSUMDB=off", what),
				"list only your private module prefixes (corp.example.com, *.corp.example.com, github.com/YOUR-ORG)")
		}
	}

	// Patterns that match nothing this module needs.
	if c.mod != nil && len(c.mod.Modules) > 0 {
		for _, p := range order {
			if disabledPattern(p) || bad[p] {
				continue
			}
			if anyMatch(p, c.mod.Modules) {
				continue
			}
			where := strings.Join(occ[p].vars, ", ")
			seen := fmt.Sprintf("matches none of the %d module paths in %s and its go.sum", len(c.mod.Modules), c.mod.File)
			if near := nearMatch(p, c.mod.Modules); near != "" {
				seen += fmt.Sprintf("; it almost matches %s (patterns are case-sensitive, one glob per path element, and match whole elements)", near)
			}
			c.add(IDPrivateUnmatched, Warning, fmt.Sprintf("pattern %q in %s", p, where), seen,
				"fine if it is meant for other projects; otherwise check its spelling: patterns are module path prefixes like corp.example.com/team or *.corp.example.com, without scheme or version")
		}
	}
}

// broadPattern describes what a pattern covers when that is far more than
// private modules: every host under a top-level domain, or every owner on a
// shared code host. It returns "" for a pattern naming a domain or owner.
func broadPattern(p string) string {
	first, rest, _ := strings.Cut(strings.TrimSuffix(p, "/"), "/")
	literal := 0
	for _, label := range strings.Split(first, ".") {
		if label != "" && !strings.ContainsAny(label, "*?[\\") {
			literal++
		}
	}
	switch {
	case strings.ContainsAny(first, "*?[") && literal < 2:
		return "the modules of every host matching " + first + ", public ones included"
	case rest == "" && explain.MultiTenantHost(first):
		return "every module on " + first + ", where anybody publishes"
	case strings.ContainsAny(rest, "*?[") && explain.MultiTenantHost(first) && !strings.Contains(rest, "/"):
		return "every module on " + first + ", where anybody publishes"
	}
	return ""
}

// publicProxies names the used GOPROXY entries that are public.
func (c *checker) publicProxies() []string {
	var out []string
	for _, e := range c.list.Used() {
		if c.public.proxy(e) {
			out = append(out, e.Name())
		}
	}
	return out
}

// joinPattern appends p to a pattern list, dropping "none" and "off".
func joinPattern(list, p string) string {
	var out []string
	for _, q := range splitPatterns(list) {
		if !disabledPattern(q) && q != p {
			out = append(out, q)
		}
	}
	return strings.Join(append(out, p), ",")
}

// patternMistake reports why the go command would never match p as meant.
func patternMistake(p string) (why, fix string) {
	switch {
	case strings.Contains(p, ";"):
		return `";" is not a separator: the list is comma-separated, so this is one pattern, and it never matches (module paths have no ";")`,
			"separate the patterns with commas: " + strings.Join(strings.Fields(strings.ReplaceAll(p, ";", " ")), ",")
	case strings.TrimSpace(p) != p:
		return "white space is part of the pattern (the go command does not trim it), so it never matches",
			"remove the spaces: the list is comma-separated without blanks"
	case strings.Contains(p, "://"):
		return "a URL scheme: patterns match module paths, which have none, so it never matches",
			"write the module path prefix, e.g. " + strings.SplitN(p, "://", 2)[1]
	case strings.Contains(p, "@"):
		return "a version or user name: patterns match module paths only, so it never matches",
			"drop the @... part"
	case strings.Contains(p, "..."):
		return `"..." is go list syntax, not a glob: it matches only a path element spelled "...", so the pattern never matches what it is meant to`,
			"a pattern already matches every path below it: use " + strings.TrimSuffix(strings.TrimSuffix(p, "..."), "/")
	}
	if _, err := path.Match(p, ""); err != nil {
		return "malformed glob (" + err.Error() + "): it never matches", "fix the brackets or escape them"
	}
	return "", ""
}

func anyMatch(p string, mods []string) bool {
	for _, m := range mods {
		if matchPatterns(p, m) {
			return true
		}
	}
	return false
}

// nearMatch returns a module path that p matches when case is ignored.
func nearMatch(p string, mods []string) string {
	lp := strings.ToLower(p)
	for _, m := range mods {
		if matchPatterns(lp, strings.ToLower(m)) {
			return m
		}
	}
	return ""
}
