package doctor

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"golang.org/x/mod/module"

	"github.com/modproxy/modproxy/internal/modrefs"
)

// Project check: IDs, and the defaults of its Options.
const (
	IDProjectVersions = "project.versions"
	IDProjectFiles    = "project.files"

	// DefaultConcurrency is how many versions the project check asks the
	// proxies for at once.
	DefaultConcurrency = 8
	// MaxProjectVersions bounds the versions one run checks (in path and
	// version order); the others are counted as not checked.
	MaxProjectVersions = 2000
	// maxListed bounds the versions a finding lists.
	maxListed = 20
)

// projectFiles returns the files of the current project as go env names
// them: the go.work of GOWORK, else the go.mod of GOMOD with the go.sum
// beside it; nil outside a module.
func (c *checker) projectFiles() []string {
	if w := c.env["GOWORK"]; w != "" && w != "off" && filepath.Base(w) == "go.work" {
		return []string{w}
	}
	gomod := c.env["GOMOD"]
	if gomod == "" || gomod == os.DevNull || filepath.Base(gomod) != "go.mod" {
		return nil
	}
	files := []string{gomod}
	if sum := filepath.Join(filepath.Dir(gomod), "go.sum"); fileExists(sum) {
		files = append(files, sum)
	}
	return files
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// versionCheck is what the chain answered for one referenced version.
type versionCheck struct {
	ref     modrefs.Ref
	lines   []string // the chain walk, or why it was not walked
	outcome chainOutcome
}

// checkProject checks, when no --module is given, that every module
// version the current project references (package modrefs: go.mod
// requirements, go.sum lines, a go.work's modules) is still served by the
// GOPROXY chain, as a machine with an empty module cache (CI) would ask
// for it: the .info of a version needed whole, the .mod of one whose
// go.mod alone is needed. A version only the local module cache still has
// builds here and fails there. Paths that look private are judged first
// (judgePrivacy) and follow walkChain's rule: never sent to a public
// proxy, to the others only with Options.ProbePrivate; a private path the
// go command would send to a public service is a private.module-leak
// problem. At most Options.Concurrency requests are in flight.
func (c *checker) checkProject(ctx context.Context, p *prober) {
	files := c.projectFiles()
	if len(files) == 0 {
		return
	}
	title := "module versions required by " + strings.Join(files, ", ")
	set := modrefs.New(modrefs.Options{})
	if err := set.AddPaths(ctx, files...); err != nil {
		c.add(IDProjectVersions, Warning, title, "cannot be read: "+errText(err), "check the files' permissions")
		return
	}
	if probs := set.Problems(); len(probs) > 0 {
		var lines []string
		for _, pr := range probs {
			lines = append(lines, pr.Error())
		}
		c.add(IDProjectFiles, Warning, "project files", "parts that do not parse (their versions are not checked):\n"+examples(lines),
			"run go mod tidy, or fix the lines named")
	}
	refs := set.Refs()
	switch {
	case len(refs) == 0:
		c.add(IDProjectVersions, OK, title, "no module version is referenced", "")
		return
	case p == nil:
		c.add(IDProjectVersions, OK, title, fmt.Sprintf("%d module versions referenced; not checked against GOPROXY (--offline)", len(refs)), "")
		return
	case c.list.Err != "":
		c.add(IDProjectVersions, Warning, title, fmt.Sprintf("%d module versions referenced; not checked: the go command rejects GOPROXY (%s)", len(refs), c.list.Err), "fix GOPROXY")
		return
	}
	over := 0
	if len(refs) > MaxProjectVersions {
		over, refs = len(refs)-MaxProjectVersions, refs[:MaxProjectVersions]
	}
	checks := c.walkProject(ctx, p, refs)
	if ctx.Err() != nil {
		return
	}
	c.reportProject(title, checks, over)
}

// walkProject judges the privacy of every path (one at a time: it may
// resolve host names) and then asks the chain for every version,
// concurrently.
func (c *checker) walkProject(ctx context.Context, p *prober, refs []modrefs.Ref) []versionCheck {
	privOf := map[string]privacy{}
	var paths []string
	for _, r := range refs {
		if _, ok := privOf[r.Path]; !ok {
			privOf[r.Path] = c.judgePrivacy(ctx, r.Path)
			paths = append(paths, r.Path)
		}
	}
	for _, path := range paths {
		c.reportPrivateModule(module.Version{Path: path}, privOf[path], false)
	}
	checks := make([]versionCheck, len(refs))
	sem := make(chan struct{}, c.o.Concurrency)
	var wg sync.WaitGroup
	for i, r := range refs {
		checks[i].ref = r
		if pat := firstMatch(c.env["GONOPROXY"], r.Path); pat != "" && c.env["GOPROXY"] != "direct" {
			checks[i].lines = []string{fmt.Sprintf("fetched directly from version control: GONOPROXY pattern %q matches", pat)}
			checks[i].outcome = chainDirect
			continue
		}
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			checks[i].lines, checks[i].outcome = c.walkChain(ctx, p, projectPath(r), privOf[r.Path])
		})
	}
	wg.Wait()
	return checks
}

// projectPath is the file a fresh download of r asks the proxies for
// first: the .info of a version needed whole, the .mod of a go.mod-only
// one.
func projectPath(r modrefs.Ref) string {
	esc, _ := module.EscapePath(r.Path) // modrefs checked both
	ev, _ := module.EscapeVersion(r.Version.Version)
	if r.Need == modrefs.GoMod {
		return esc + "/@v/" + ev + ".mod"
	}
	return esc + "/@v/" + ev + ".info"
}

// reportProject sums the checks up in one finding.
func (c *checker) reportProject(title string, checks []versionCheck, over int) {
	var served, direct, unknown int
	var missing, failed, toVCS []string
	for _, ch := range checks {
		switch ch.outcome {
		case chainServed:
			served++
		case chainDirect:
			direct++
		case chainUnknown:
			unknown++
		case chainFellToDirect:
			toVCS = append(toVCS, c.versionLine(ch))
		case chainFailed:
			failed = append(failed, c.versionLine(ch))
		case chainNotFound, chainOff:
			missing = append(missing, c.versionLine(ch))
		}
	}
	var parts []string
	for _, c := range []struct {
		n    int
		what string
	}{
		{served, "served by a proxy"},
		{len(missing), "not served"},
		{len(toVCS), "served by no proxy (then fetched from version control)"},
		{len(failed), "could not be checked (a proxy failed)"},
		{direct, "fetched from version control (GONOPROXY or direct first; not checked)"},
		{unknown, "not asked (the path looks private, see private.module-leak; --probe-private asks the proxies that are not public)"},
	} {
		if c.n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", c.n, c.what))
		}
	}
	counts := fmt.Sprintf("%d module versions referenced: %s", len(checks)+over, strings.Join(parts, ", "))
	if over > 0 {
		counts += fmt.Sprintf("; %d more not checked (doctor checks at most %d)", over, MaxProjectVersions)
	}
	var seen []string
	seen = append(seen, counts)
	st, fix := OK, ""
	if len(toVCS) > 0 {
		seen = append(seen, "no proxy serves these, so a machine without them in its module cache fetches them from version control (which doctor does not check; a CI without access to the repositories fails):\n"+upTo(toVCS, maxListed))
		st, fix = Warning, "check that the repositories are reachable from CI, or have the proxy serve the versions"
	}
	if len(failed) > 0 {
		seen = append(seen, "could not be checked:\n"+upTo(failed, maxListed))
		st, fix = Warning, "see the proxy findings above, and run doctor again"
	}
	if len(missing) > 0 {
		seen = append(seen, "no proxy serves (a build on a machine without them in its module cache, such as CI, fails with \"not found\"; those cached here build here only from the cache):\n"+upTo(missing, maxListed))
		st = Problem
		fix = "move to a version that is served (go get MODULE@VERSION, then go mod tidy), or have the proxy serve it again; " +
			"modproxy clean --module MODULE@VERSION removes the local copy, so that this machine fails as CI does"
	}
	c.add(IDProjectVersions, st, title, strings.Join(seen, "\n"), fix)
}

// versionLine describes one version that failed: what it is, whether the
// local module cache has it, and what each entry answered.
func (c *checker) versionLine(ch versionCheck) string {
	s := ch.ref.Path + "@" + ch.ref.Version.Version
	if ch.ref.Need == modrefs.GoMod {
		s += " (go.mod only)"
	}
	if c.cachedHere(ch.ref) {
		s += " [cached here]"
	}
	return s + ": " + strings.Join(ch.lines, "; ")
}

// cachedHere reports whether the module cache holds what r needs.
func (c *checker) cachedHere(r modrefs.Ref) bool {
	dir := c.env["GOMODCACHE"]
	esc, err1 := module.EscapePath(r.Path)
	ev, err2 := module.EscapeVersion(r.Version.Version)
	if dir == "" || err1 != nil || err2 != nil {
		return false
	}
	ext := ".zip"
	if r.Need == modrefs.GoMod {
		ext = ".mod"
	}
	return fileExists(filepath.Join(dir, "cache", "download", filepath.FromSlash(esc), "@v", ev+ext))
}
