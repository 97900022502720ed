package policy

import (
	"slices"
	"strings"

	"golang.org/x/mod/semver"
)

// eventVersion is an event's version in canonical form: "" for
// "introduced: 0" (the first version), a "v" added when the data omits it
// (OSV's Go ranges are written without one).
func eventVersion(v string) string {
	if v == "" || v == "0" {
		return ""
	}
	if !strings.HasPrefix(v, "v") {
		v = "v" + v
	}
	return v
}

// compare orders versions with semver (pseudo-versions are
// pre-releases of the version after their base, "+incompatible" is build
// metadata and ignored); "" (the first version) is below every version.
func compare(a, b string) int {
	switch {
	case a == b:
		return 0
	case a == "":
		return -1
	case b == "":
		return 1
	}
	return semver.Compare(a, b)
}

// sortedEvents returns r's events with canonical versions, sorted by
// version (an introduced before a fixed at the same version), as OSV's
// evaluation requires whatever order the data has.
func sortedEvents(r Range) []Event {
	evs := make([]Event, 0, len(r.Events))
	for _, e := range r.Events {
		if e.Introduced != "" {
			evs = append(evs, Event{Introduced: eventVersion(e.Introduced)})
			if evs[len(evs)-1].Introduced == "" {
				evs[len(evs)-1].Introduced = "0" // keep "introduced" set; its version is ""
			}
		} else if e.Fixed != "" {
			evs = append(evs, Event{Fixed: eventVersion(e.Fixed)})
		}
	}
	slices.SortStableFunc(evs, func(a, b Event) int {
		if c := compare(evVersion(a), evVersion(b)); c != 0 {
			return c
		}
		switch {
		case a.Introduced != "" && b.Introduced == "":
			return -1
		case a.Introduced == "" && b.Introduced != "":
			return 1
		}
		return 0
	})
	return evs
}

// evVersion is the version of a sorted event ("" for introduced 0).
func evVersion(e Event) string {
	if e.Introduced != "" {
		if e.Introduced == "0" {
			return ""
		}
		return e.Introduced
	}
	return e.Fixed
}

// Affected reports whether version is inside r and, when it is, the
// first fixed version of r above it ("" when the range has none). A
// version that is not valid semver is never inside a range.
func (r Range) Affected(version string) (affected bool, fixed string) {
	if !semver.IsValid(version) {
		return false, ""
	}
	evs := sortedEvents(r)
	for i, e := range evs {
		v := evVersion(e)
		if compare(v, version) > 0 {
			if affected {
				for _, f := range evs[i:] {
					if f.Fixed != "" {
						return true, f.Fixed
					}
				}
			}
			return affected, ""
		}
		affected = e.Introduced != ""
	}
	return affected, ""
}

// Affects reports whether version is inside any of a's ranges and, when
// it is, the lowest first fixed version above it among those ranges ("" if
// a range that holds it has no fix).
func (a *Advisory) Affects(version string) (affected bool, fixed string) {
	noFix := false
	for _, r := range a.Ranges {
		in, f := r.Affected(version)
		if !in {
			continue
		}
		affected = true
		if f == "" {
			noFix = true
		} else if fixed == "" || compare(f, fixed) < 0 {
			fixed = f
		}
	}
	if noFix {
		// Another range still holds the version with no fix.
		return affected, ""
	}
	return affected, fixed
}

// Fixes reports whether version is the fixed version of one of a's ranges
// that affects an earlier version (a "fixed" event with an affected
// interval right before it).
func (a *Advisory) Fixes(version string) bool {
	if !semver.IsValid(version) {
		return false
	}
	for _, r := range a.Ranges {
		open := false
		for _, e := range sortedEvents(r) {
			if e.Introduced != "" {
				open = true
				continue
			}
			if open && compare(e.Fixed, version) == 0 {
				return true
			}
			open = false
		}
	}
	return false
}
