package vulndb

import (
	"slices"
	"strings"
	"time"

	"golang.org/x/mod/semver"

	"github.com/modproxy/modproxy/internal/policy"
)

// Advisory is one entry of the current generation: its ID, aliases,
// summary, modified time and the modules it names with their SEMVER
// ranges (canonical versions, as policy.Range).
type Advisory struct {
	ID       string
	Aliases  []string
	Summary  string
	Modified time.Time
	Affected []Affected
}

// Affected is a module an advisory names, with its ranges.
type Affected struct {
	Module string
	Ranges []policy.Range
}

func advisoryOf(e *entryMeta) Advisory {
	a := Advisory{ID: e.ID, Aliases: e.Aliases, Summary: e.Summary, Modified: e.Modified}
	for _, m := range e.Affected {
		a.Affected = append(a.Affected, Affected(m))
	}
	return a
}

// All returns every advisory of the current generation in ID order (nil
// without a database).
func (d *DB) All() []Advisory {
	g := d.cur.Load()
	if g == nil {
		return nil
	}
	out := make([]Advisory, 0, len(g.m.Entries))
	for i := range g.m.Entries {
		out = append(out, advisoryOf(&g.m.Entries[i]))
	}
	return out
}

// Lookup returns the advisory id of the current generation.
func (d *DB) Lookup(id string) (Advisory, bool) {
	g := d.cur.Load()
	if g == nil {
		return Advisory{}, false
	}
	e := g.entries[id]
	if e == nil {
		return Advisory{}, false
	}
	return advisoryOf(e), true
}

// Affects reports whether version (canonical, "v1.2.3") of the module is
// inside one of the advisory's ranges for it.
func (a Advisory) Affects(module, version string) bool {
	for _, m := range a.Affected {
		if m.Module != module {
			continue
		}
		for _, r := range m.Ranges {
			if InRange(r, version) {
				return true
			}
		}
	}
	return false
}

// InRange reports whether version is inside r: the highest "introduced"
// at or below it is above the highest "fixed" at or below it
// (introduced "0" or "" is below every version).
func InRange(r policy.Range, version string) bool {
	intro, fixed := "", ""
	found := false
	for _, ev := range r.Events {
		if ev.Fixed != "" {
			if semver.Compare(ev.Fixed, version) <= 0 && later(ev.Fixed, fixed) {
				fixed = ev.Fixed
			}
			continue
		}
		v := ev.Introduced // an event without Fixed introduces ("" and "0": from the start)
		if v == "0" {
			v = ""
		}
		if (v == "" || semver.Compare(v, version) <= 0) && (!found || later(v, intro)) {
			intro, found = v, true
		}
	}
	if !found {
		return false
	}
	return fixed == "" || (intro != "" && semver.Compare(intro, fixed) > 0)
}

// later reports v > w, "" being the lowest.
func later(v, w string) bool {
	if w == "" {
		return v != ""
	}
	return v != "" && semver.Compare(v, w) > 0
}

// Cached is a module version in the cache, as the metadata index knows it.
type Cached struct {
	Module, Version string
	// LastAccess is when it was last downloaded (any of its files).
	LastAccess time.Time
	// Identity is who downloaded it last; "" until the protocol
	// listener records identities.
	Identity string
}

// Exposure is an advisory with the cached versions it affects.
type Exposure struct {
	Advisory
	Versions []Cached // in module, then semver order
}

// Exposures returns, for each advisory, the cached versions it affects;
// advisories affecting none are left out unless all is set. The order
// of advs is kept.
func Exposures(advs []Advisory, cached []Cached, all bool) []Exposure {
	byModule := map[string][]Cached{}
	for _, c := range cached {
		byModule[c.Module] = append(byModule[c.Module], c)
	}
	var out []Exposure
	for _, a := range advs {
		e := Exposure{Advisory: a}
		seen := map[string]bool{}
		for _, m := range a.Affected {
			if seen[m.Module] {
				continue
			}
			seen[m.Module] = true
			for _, c := range byModule[m.Module] {
				if a.Affects(c.Module, c.Version) {
					e.Versions = append(e.Versions, c)
				}
			}
		}
		slices.SortFunc(e.Versions, func(x, y Cached) int {
			if c := strings.Compare(x.Module, y.Module); c != 0 {
				return c
			}
			return semver.Compare(x.Version, y.Version)
		})
		if all || len(e.Versions) > 0 {
			out = append(out, e)
		}
	}
	return out
}
