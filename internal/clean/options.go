package clean

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/mod/module"
)

// Options selects what a Plan removes. The zero Options selects nothing and
// is rejected by Validate.
//
// Module versions (category "modules") are candidates when KeepReferenced,
// OlderThan, Modules or Compact is set; toolchains (golang.org/toolchain
// versions, category "toolchains") only when Toolchains is set; VCS clones
// only when VCS is set; the checksum database cache only when SumDB is set.
// A candidate is selected when it passes every filter given:
//
//   - KeepReferenced: module versions that a go.sum, go.work.sum, go.mod or
//     go.work under one of the roots needs are kept (see ReadReferences); a
//     version whose go.mod alone is needed loses only its .zip, .ziphash and
//     extracted tree. Toolchains named by a go or toolchain line are kept.
//   - OlderThan: only entries whose newest file is at least this old.
//   - Modules: only module versions, toolchains and VCS clones matching one
//     of the patterns (the checksum database cache is not narrowed).
//
// Compact changes what happens to a selected module or toolchain version:
// only its extracted tree goes; .zip, .ziphash, .info and .mod stay, so the
// go command extracts it again without the network.
//
// All selects everything and excludes every other selector.
type Options struct {
	All            bool
	KeepReferenced []string      // project roots
	OlderThan      time.Duration // 0: no age filter
	Modules        []string      // PATTERN[@VERSION], patterns as in GOPRIVATE
	Compact        bool
	Toolchains     bool
	VCS            bool
	SumDB          bool

	// KeepToolchains lists go versions ("go1.22.3") whose toolchains are
	// never removed, such as the running go command's GOVERSION.
	KeepToolchains []string
	// Skip lists directories that the search for reference files does not
	// enter besides the module cache itself, such as the trash: the trees
	// in them hold go.mod and go.sum files of modules, not of projects.
	Skip []string

	// Now is the clock for ages (time.Now when nil).
	Now func() time.Time
	// Progress, when set, is called while the selected entries are measured.
	Progress func(done, total int)
}

// OptionError reports unusable Options: the command line was wrong.
type OptionError struct {
	Option string // the option, e.g. "--older-than"
	Msg    string
}

func (e *OptionError) Error() string { return e.Option + ": " + e.Msg }

// Validate reports the first problem with o as an *OptionError: no selector,
// --all combined with another selector, a negative age, a malformed module
// pattern, a project root that is not a directory.
func (o Options) Validate() error {
	sel := len(o.KeepReferenced) > 0 || o.OlderThan != 0 || len(o.Modules) > 0 || o.Compact || o.Toolchains || o.VCS || o.SumDB
	if o.All && sel {
		return &OptionError{"--all", "cannot be combined with other selectors"}
	}
	if !o.All && !sel {
		return &OptionError{"selection", "nothing selected: give --all, --keep-referenced, --older-than, --module, --compact, --toolchains, --vcs or --sumdb"}
	}
	if o.OlderThan < 0 {
		return &OptionError{"--older-than", "must not be negative"}
	}
	if _, err := parsePatterns(o.Modules); err != nil {
		return err
	}
	for _, root := range o.KeepReferenced {
		st, err := os.Stat(root)
		if err != nil {
			return &OptionError{"--keep-referenced", err.Error()}
		}
		if !st.IsDir() {
			return &OptionError{"--keep-referenced", root + " is not a directory"}
		}
	}
	return nil
}

func (o Options) now() time.Time {
	if o.Now != nil {
		return o.Now()
	}
	return time.Now()
}

// ParseAge parses an age such as "30d", "2w", "12h" or "90m": a number of
// days (d) or weeks (w), or anything time.ParseDuration accepts.
func ParseAge(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	for suffix, unit := range map[string]time.Duration{"d": 24 * time.Hour, "w": 7 * 24 * time.Hour} {
		if n, ok := strings.CutSuffix(s, suffix); ok {
			f, err := strconv.ParseFloat(n, 64)
			if err != nil || f < 0 {
				return 0, fmt.Errorf("invalid age %q: want e.g. 30d, 2w or 12h", s)
			}
			return time.Duration(f * float64(unit)), nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("invalid age %q: want e.g. 30d, 2w or 12h", s)
	}
	return d, nil
}

// pattern is one --module entry: a GOPRIVATE-style path glob and an
// optional path.Match pattern for the version.
type pattern struct {
	glob, version string
}

func parsePatterns(list []string) ([]pattern, error) {
	var out []pattern
	for _, entry := range list {
		for _, p := range strings.Split(entry, ",") {
			p = strings.TrimSpace(p)
			if p == "" {
				continue
			}
			glob, ver, hasVer := strings.Cut(p, "@")
			if glob == "" || (hasVer && ver == "") {
				return nil, &OptionError{"--module", fmt.Sprintf("malformed pattern %q: want PATTERN or PATTERN@VERSION", p)}
			}
			if _, err := path.Match(glob, "x"); err != nil {
				return nil, &OptionError{"--module", fmt.Sprintf("malformed pattern %q: %v", p, err)}
			}
			if _, err := path.Match(ver, "v1.0.0"); err != nil {
				return nil, &OptionError{"--module", fmt.Sprintf("malformed version pattern %q: %v", ver, err)}
			}
			out = append(out, pattern{strings.TrimSuffix(glob, "/"), ver})
		}
	}
	return out, nil
}

// matchModule reports whether m matches one of pats (true when pats is
// empty).
func matchModule(pats []pattern, m module.Version) bool {
	if len(pats) == 0 {
		return true
	}
	for _, p := range pats {
		if !module.MatchPrefixPatterns(p.glob, m.Path) {
			continue
		}
		if p.version == "" {
			return true
		}
		if ok, _ := path.Match(p.version, m.Version); ok {
			return true
		}
	}
	return false
}

// matchRepo reports whether a VCS clone matches one of pats (true when pats
// is empty). Its remote ("git3:https://host/path.git", as in HASH.info) is
// matched like a module path: host and path, without scheme, user, port and
// ".git". Patterns with a version never match a clone.
func matchRepo(pats []pattern, remote string) bool {
	if len(pats) == 0 {
		return true
	}
	r := repoPath(remote)
	for _, p := range pats {
		if p.version == "" && module.MatchPrefixPatterns(p.glob, r) {
			return true
		}
	}
	return false
}

func repoPath(remote string) string {
	r := remote
	if i := strings.Index(r, "://"); i >= 0 {
		r = r[i+len("://"):]
	}
	host, rest, _ := strings.Cut(r, "/")
	if _, h, ok := strings.Cut(host, "@"); ok {
		host = h
	}
	if h, _, ok := strings.Cut(host, ":"); ok {
		host = h
	}
	return strings.TrimSuffix(strings.TrimSuffix(path.Join(host, rest), "/"), ".git")
}

// cleanRoots returns the absolute, cleaned form of each root.
func cleanRoots(roots []string) ([]string, error) {
	out := make([]string, 0, len(roots))
	for _, r := range roots {
		abs, err := filepath.Abs(r)
		if err != nil {
			return nil, fmt.Errorf("project root %s: %w", r, err)
		}
		out = append(out, abs)
	}
	return out, nil
}
