package policy

import (
	"strings"
	"time"

	"golang.org/x/mod/semver"
)

// Reason names the rule a finding comes from. Its values are stable
// (metrics labels).
type Reason string

// The reasons.
const (
	Vulnerable  Reason = "vulnerable"
	Cooldown    Reason = "cooldown"
	Retracted   Reason = "retracted"
	UnknownTime Reason = "unknown_time"
)

// Reasons lists every reason, in a stable order.
func Reasons() []Reason { return []Reason{Vulnerable, Cooldown, Retracted, UnknownTime} }

// Action is what a finding does. Its values are stable (metrics labels).
type Action string

// The actions.
const (
	ActWarn   Action = "warn"
	ActBlock  Action = "block"
	ActExempt Action = "exempt" // the rule matched and an exemption (or allow_fixes) let the version through
)

// Actions lists every action, in a stable order.
func Actions() []Action { return []Action{ActWarn, ActBlock, ActExempt} }

// Retraction is one retract directive of a module's latest go.mod: the
// versions from Low to High (inclusive; equal for a single version) and
// the author's rationale (the directive's comment, possibly empty).
type Retraction struct {
	Low, High string
	Rationale string
}

// Holds reports whether version is inside r.
func (r Retraction) Holds(version string) bool {
	return semver.Compare(r.Low, version) <= 0 && semver.Compare(version, r.High) <= 0
}

// Facts are what a decision about one version needs. Fields a policy does
// not need (see Policy.Needs*) may be left empty.
type Facts struct {
	Module, Version string
	// Advisories are the module's advisories (those of other modules are
	// ignored by the caller's Source; all of these are checked).
	Advisories []Advisory
	// Time is the version's .info Time; the zero Time means unknown.
	Time time.Time
	// FirstSeen is when this proxy first saw the version (in an
	// upstream list, or its .info); zero when that is not known or the
	// version predates the proxy's record of the module (bootstrap):
	// the age is then measured from Time alone.
	FirstSeen time.Time
	// Retractions are those of the module's latest go.mod.
	Retractions []Retraction
	// Now is the decision's time.
	Now time.Time
}

// Finding is one rule that matched a version.
type Finding struct {
	Reason Reason
	Action Action
	// IDs are the advisories (Vulnerable), in the data's order; Fixed is
	// each one's first fixed version above the version ("" for none), in
	// the same order.
	IDs   []string
	Fixed []string
	// Available is when the version passes the cooldown (Cooldown).
	Available time.Time
	// Published is the version's .info Time (Cooldown).
	Published time.Time
	// FirstSeen is set when the age was measured from the time this
	// proxy first saw the version, later than Published (Cooldown).
	FirstSeen time.Time
	// Rationale is the retraction's (Retracted).
	Rationale string
	// Exemption is what let the version through (Action ActExempt); nil
	// when allow_fixes did (Fix is then set).
	Exemption *Exemption
	Fix       bool
}

// Decision is the policy's verdict on one version.
type Decision struct {
	Findings []Finding
}

// Blocked returns the first blocking finding, or nil.
func (d *Decision) Blocked() *Finding {
	for i := range d.Findings {
		if d.Findings[i].Action == ActBlock {
			return &d.Findings[i]
		}
	}
	return nil
}

// Hidden reports whether lists and @latest leave the version out: a
// cooldown or unknown-time block always, a vulnerable block only with
// hide_vulnerable.
func (d *Decision) Hidden(p *Policy) bool {
	for _, f := range d.Findings {
		if f.Action != ActBlock {
			continue
		}
		switch f.Reason {
		case Cooldown, UnknownTime:
			return true
		case Vulnerable:
			if p.HideVulnerable {
				return true
			}
		}
	}
	return false
}

// Warnings returns the advisory IDs and the retraction rationale of the
// findings that warn (not those that block or are exempt).
func (d *Decision) Warnings() (ids []string, retracted *Finding) {
	for i, f := range d.Findings {
		if f.Action != ActWarn {
			continue
		}
		switch f.Reason {
		case Vulnerable:
			ids = append(ids, f.IDs...)
		case Retracted:
			retracted = &d.Findings[i]
		}
	}
	return ids, retracted
}

// Artifact is the kind of file a decision is applied to.
type Artifact uint8

// The artifacts a policy refuses.
const (
	Zip Artifact = iota // the module zip: refused on any block
	Mod                 // the go.mod: refused only with Policy.BlockMod
)

// Refuses returns the *BlockedError for an artifact of the decided
// version, or nil when it may be served.
func (d *Decision) Refuses(p *Policy, a Artifact, module, version string) *BlockedError {
	if a == Mod && !p.BlockMod {
		return nil
	}
	f := d.Blocked()
	if f == nil {
		return nil
	}
	return &BlockedError{Module: module, Version: version, Finding: *f, MinAge: p.MinAge}
}

// Decide applies p to one version. Rules, in this order:
//
//   - an active exemption whose Match covers the module (without ID)
//     turns every finding into ActExempt;
//   - vulnerable: each advisory whose ranges hold the version (semver
//     order: pseudo-versions sort as pre-releases of the version after
//     their base, +incompatible is ignored) is a finding, unless an
//     exemption names its ID or an alias (then ActExempt); Warn or Block
//     per Policy.Vulnerable;
//   - cooldown (MinAge > 0): an unknown time (zero) blocks (UnknownTime,
//     fail closed); the age is measured from the later of Time and
//     FirstSeen (the author controls Time: a back-dated commit, or an old
//     commit tagged now, must not pass at once); less than MinAge before
//     Now blocks (Cooldown)
//     with the time it becomes available, unless AllowFixes is set and
//     the version is the fixed version of an advisory range that affects
//     an earlier version of the module (then ActExempt with Fix): a fix
//     should not wait out the cooldown the vulnerable version it replaces
//     needs to be left for;
//   - retracted: a retraction of the latest go.mod holding the version,
//     Warn or Block per Policy.Retracted.
//
// Decide is pure: it reads only its arguments.
func (p *Policy) Decide(f Facts) Decision {
	var d Decision
	if !p.On() {
		return d
	}
	exempt := p.moduleExemption(f.Module, f.Now)
	add := func(fi Finding, act Action) {
		fi.Action = act
		if exempt != nil {
			fi.Action, fi.Exemption = ActExempt, exempt
		}
		d.Findings = append(d.Findings, fi)
	}
	if p.Vulnerable != Off {
		act := ActWarn
		if p.Vulnerable == Block {
			act = ActBlock
		}
		var hit, exempted Finding
		for i := range f.Advisories {
			a := &f.Advisories[i]
			in, fixed := a.Affects(f.Version)
			if !in {
				continue
			}
			if e := p.advisoryExemption(f.Module, a, f.Now); e != nil && exempt == nil {
				exempted.IDs, exempted.Fixed = append(exempted.IDs, a.ID), append(exempted.Fixed, fixed)
				exempted.Exemption = e
				continue
			}
			hit.IDs, hit.Fixed = append(hit.IDs, a.ID), append(hit.Fixed, fixed)
		}
		if len(exempted.IDs) > 0 {
			exempted.Reason, exempted.Action = Vulnerable, ActExempt
			d.Findings = append(d.Findings, exempted)
		}
		if len(hit.IDs) > 0 {
			hit.Reason = Vulnerable
			add(hit, act)
		}
	}
	if p.MinAge > 0 {
		from := f.Time
		if f.FirstSeen.After(from) {
			from = f.FirstSeen
		}
		switch {
		case f.Time.IsZero():
			add(Finding{Reason: UnknownTime}, ActBlock)
		case f.Now.Sub(from) < p.MinAge:
			fi := Finding{Reason: Cooldown, Published: f.Time, Available: from.Add(p.MinAge)}
			if f.FirstSeen.After(f.Time) {
				fi.FirstSeen = f.FirstSeen
			}
			if p.AllowFixes && exempt == nil && fixesEarlier(f.Advisories, f.Version) {
				fi.Action, fi.Fix = ActExempt, true
				d.Findings = append(d.Findings, fi)
				break
			}
			add(fi, ActBlock)
		}
	}
	if p.Retracted != Off {
		for _, r := range f.Retractions {
			if r.Holds(f.Version) {
				act := ActWarn
				if p.Retracted == Block {
					act = ActBlock
				}
				add(Finding{Reason: Retracted, Rationale: r.Rationale}, act)
				break
			}
		}
	}
	return d
}

// fixesEarlier reports whether version is the fixed version of a range of
// one of advs.
func fixesEarlier(advs []Advisory, version string) bool {
	for i := range advs {
		if advs[i].Fixes(version) {
			return true
		}
	}
	return false
}

// Latest picks what @latest answers among versions (a list's, in any
// order) that keep returns true for, as the go command picks from a
// list: the highest release, else the highest pre-release; "" when none
// is kept. Pseudo-versions are never in lists.
func Latest(versions []string, keep func(string) bool) string {
	var rel, pre string
	for _, v := range versions {
		v = strings.TrimSpace(v)
		if !semver.IsValid(v) || !keep(v) {
			continue
		}
		if semver.Prerelease(v) == "" {
			if rel == "" || semver.Compare(v, rel) > 0 {
				rel = v
			}
		} else if pre == "" || semver.Compare(v, pre) > 0 {
			pre = v
		}
	}
	if rel != "" {
		return rel
	}
	return pre
}

// Highest is the version the go command takes as the latest of versions
// (a list's, in any order), retracted or not: the version @latest falls
// back to, and the one whose go.mod holds the module's retractions. It
// is Latest keeping every version, except that +incompatible versions are
// left out when the highest compatible version (release or pre-release)
// has a go.mod of its own, as the go command leaves them out then (it
// prefers even a compatible pre-release; Go issue 34165). hasGoMod is
// asked about that version only, and only when the list has both kinds;
// its error is returned.
func Highest(versions []string, hasGoMod func(version string) (bool, error)) (string, error) {
	var compat string
	incompat := false
	for _, v := range versions {
		v = strings.TrimSpace(v)
		switch {
		case !semver.IsValid(v):
		case strings.HasSuffix(v, "+incompatible"):
			incompat = true
		case compat == "" || semver.Compare(v, compat) > 0:
			compat = v
		}
	}
	keep := func(string) bool { return true }
	if incompat && compat != "" {
		ok, err := hasGoMod(compat)
		if err != nil {
			return "", err
		}
		if ok {
			keep = func(v string) bool { return !strings.HasSuffix(v, "+incompatible") }
		}
	}
	return Latest(versions, keep), nil
}
