// Package routing decides, per module path and version, which upstream
// chain serves a request and whether it may be served at all: routes map
// module path patterns (GOPRIVATE syntax, matched with
// module.MatchPrefixPatterns) to a chain; deny rules block a module or a
// version range with a reason; an allow list, when set, locks a site down
// to the modules it names. It is pure: no I/O.
package routing

import (
	"fmt"
	"strings"

	"golang.org/x/mod/module"
	"golang.org/x/mod/semver"

	"github.com/modproxy/modproxy/internal/errclass"
)

// Route maps module path patterns to a target (an index the caller
// understands, e.g. a chain).
type Route struct {
	Match  string // comma-separated patterns
	Target int
}

// Deny blocks versions of modules matching Match.
type Deny struct {
	Match    string
	Versions Range // empty: every version
	Reason   string
	// Gone makes the refusal "gone" rather than "refused": a client may
	// move on to the next proxy of its "," list (class errclass.Gone)
	// instead of stopping (errclass.Denied, the default).
	Gone bool
}

// Rules is a compiled rule set.
type Rules struct {
	routes []Route
	deny   []Deny
	allow  string
	deflt  int
}

// New returns rules; deflt is the target for paths no route matches.
func New(routes []Route, deny []Deny, allow []string, deflt int) *Rules {
	return &Rules{routes: routes, deny: deny, allow: strings.Join(allow, ","), deflt: deflt}
}

// Target returns the target of the first route matching path.
func (r *Rules) Target(path string) int {
	for _, rt := range r.routes {
		if module.MatchPrefixPatterns(rt.Match, path) {
			return rt.Target
		}
	}
	return r.deflt
}

// DeniedError is a request refused by policy. Its class is errclass.Denied,
// or errclass.Gone when the rule that refused it is Gone.
type DeniedError struct {
	Module, Version string
	Gone            bool
	Reason          string
}

// Class implements errclass.Classer.
func (e *DeniedError) Class() errclass.Class {
	if e.Gone {
		return errclass.Gone
	}
	return errclass.Denied
}

func (e *DeniedError) Error() string {
	target := e.Module
	if e.Version != "" {
		target += "@" + e.Version
	}
	return fmt.Sprintf("%s is blocked by this proxy's policy: %s", target, e.Reason)
}

// CheckModule returns a *DeniedError when no version of path may be served
// (not on the allow list, or denied for every version).
func (r *Rules) CheckModule(path string) error {
	if r.allow != "" && !module.MatchPrefixPatterns(r.allow, path) {
		return &DeniedError{Module: path, Reason: "not on this proxy's allow list"}
	}
	for _, d := range r.deny {
		if d.Versions.Empty() && module.MatchPrefixPatterns(d.Match, path) {
			return &DeniedError{Module: path, Gone: d.Gone, Reason: d.Reason}
		}
	}
	return nil
}

// CheckVersion returns a *DeniedError when path@version may not be served.
func (r *Rules) CheckVersion(path, version string) error {
	if err := r.CheckModule(path); err != nil {
		return err
	}
	for _, d := range r.deny {
		if module.MatchPrefixPatterns(d.Match, path) && d.Versions.Contains(version) {
			return &DeniedError{Module: path, Version: version, Gone: d.Gone, Reason: d.Reason}
		}
	}
	return nil
}

// FilterList drops denied versions from a @v/list body.
func (r *Rules) FilterList(path string, list []byte) []byte {
	var b strings.Builder
	changed := false
	for line := range strings.SplitSeq(string(list), "\n") {
		f := strings.Fields(line)
		if len(f) > 0 && r.CheckVersion(path, f[0]) != nil {
			changed = true
			continue
		}
		if line != "" {
			b.WriteString(line + "\n")
		}
	}
	if !changed {
		return list
	}
	return []byte(b.String())
}

// Range is a version range: comparisons separated by spaces, all of which
// must hold, e.g. ">=v1.0.0 <v1.2.3", "<=v0.9.0", "v1.4.2" (exactly).
type Range struct{ conds []cond }

type cond struct {
	op, v string
}

// ParseRange parses a range; "" is the empty range, which matches every
// version.
func ParseRange(s string) (Range, error) {
	var r Range
	for f := range strings.FieldsSeq(s) {
		op := ""
		for _, p := range []string{">=", "<=", ">", "<", "="} {
			if strings.HasPrefix(f, p) {
				op, f = p, f[len(p):]
				break
			}
		}
		if op == "" {
			op = "="
		}
		if !semver.IsValid(f) {
			return Range{}, fmt.Errorf("%q is not a semantic version", f)
		}
		r.conds = append(r.conds, cond{op, f})
	}
	return r, nil
}

// Empty reports whether the range has no conditions (every version).
func (r Range) Empty() bool { return len(r.conds) == 0 }

// Contains reports whether v is in the range.
func (r Range) Contains(v string) bool {
	if !semver.IsValid(v) {
		return false
	}
	for _, c := range r.conds {
		cmp := semver.Compare(v, c.v)
		ok := false
		switch c.op {
		case ">=":
			ok = cmp >= 0
		case "<=":
			ok = cmp <= 0
		case ">":
			ok = cmp > 0
		case "<":
			ok = cmp < 0
		case "=":
			ok = cmp == 0
		}
		if !ok {
			return false
		}
	}
	return true
}
