package policy

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"golang.org/x/mod/module"
)

// Mode is what a rule does with a version it matches.
type Mode uint8

// The modes. The zero value is Off.
const (
	Off   Mode = iota // the rule is not checked
	Warn              // the version is served with a warning (header, log, metric)
	Block             // the version is refused
)

var modeNames = [...]string{Off: "off", Warn: "warn", Block: "block"}

func (m Mode) String() string {
	if int(m) < len(modeNames) {
		return modeNames[m]
	}
	return fmt.Sprintf("Mode(%d)", m)
}

// ParseMode parses "off", "warn" or "block" ("" is off).
func ParseMode(s string) (Mode, error) {
	switch s {
	case "", "off":
		return Off, nil
	case "warn":
		return Warn, nil
	case "block":
		return Block, nil
	}
	return Off, fmt.Errorf("%q: want off, warn or block", s)
}

// Exemption lets versions through a rule. Match (module path patterns,
// comma-separated, module.MatchPrefixPatterns syntax) and ID (an advisory
// ID or one of its aliases) narrow it; at least one is set:
//
//   - Match alone exempts the matching modules from every rule
//     (vulnerable, cooldown, unknown time, retracted);
//   - ID alone exempts every module from that advisory;
//   - both exempt the matching modules from that advisory.
//
// Reason is mandatory (it is logged and audited with every use); an
// exemption whose Expires (non-zero) is not after the decision's time no
// longer applies.
type Exemption struct {
	Match   string
	ID      string
	Reason  string
	Expires time.Time
}

// Check reports what is wrong with e, naming the field.
func (e Exemption) Check() error {
	switch {
	case strings.TrimSpace(e.Match) == "" && strings.TrimSpace(e.ID) == "":
		return fmt.Errorf("match or id is required")
	case strings.TrimSpace(e.Reason) == "":
		return fmt.Errorf("reason must not be empty: every use of an exemption is audited with it")
	case strings.ContainsAny(e.Match, " \t"):
		return fmt.Errorf("match %q contains white space", e.Match)
	}
	return nil
}

// active reports whether e applies at now.
func (e *Exemption) active(now time.Time) bool {
	return e.Expires.IsZero() || now.Before(e.Expires)
}

// module reports whether e exempts the whole module (every rule).
func (e *Exemption) module(path string) bool {
	return e.ID == "" && module.MatchPrefixPatterns(e.Match, path)
}

// advisory reports whether e exempts path from advisory a.
func (e *Exemption) advisory(path string, a *Advisory) bool {
	if e.ID == "" || e.Match != "" && !module.MatchPrefixPatterns(e.Match, path) {
		return false
	}
	return e.ID == a.ID || slices.Contains(a.Aliases, e.ID)
}

// Policy is one namespace's supply-chain policy. The zero Policy checks
// nothing. It is a value: callers build it once (from configuration) and
// share it read-only.
type Policy struct {
	// Vulnerable: versions inside an advisory's range.
	Vulnerable Mode
	// MinAge is the cooldown: versions whose .info Time, or the time
	// this proxy first saw them (Facts.FirstSeen), is younger are hidden
	// from lists and @latest and refused; 0 turns it off. A version whose
	// .info Time is unknown is refused (fail closed).
	MinAge time.Duration
	// AllowFixes lets a young version through the cooldown when it is
	// the fixed version of an advisory's range, i.e. it fixes an
	// advisory that affects an earlier version of the module (see
	// Decide).
	AllowFixes bool
	// Retracted: versions the module's latest go.mod retracts.
	Retracted Mode
	// BlockMod refuses .mod files too (by default only zips are refused,
	// so that the go command can still load the module graph).
	BlockMod bool
	// HideVulnerable drops versions that Vulnerable = Block refuses
	// from lists and @latest (by default they stay, so that the go
	// command resolves them and reports the reason).
	HideVulnerable bool
	// Exempt are the exemptions, checked in order (the first that
	// applies is used).
	Exempt []Exemption
}

// On reports whether p checks anything.
func (p *Policy) On() bool {
	return p != nil && (p.Vulnerable != Off || p.MinAge > 0 || p.Retracted != Off)
}

// NeedsAdvisories reports whether decisions need the module's advisories
// (vulnerable checks, or allow_fixes under a cooldown).
func (p *Policy) NeedsAdvisories() bool {
	return p.Vulnerable != Off || p.MinAge > 0 && p.AllowFixes
}

// NeedsTime reports whether decisions need the version's time.
func (p *Policy) NeedsTime() bool { return p.MinAge > 0 }

// NeedsRetractions reports whether decisions need the retractions.
func (p *Policy) NeedsRetractions() bool { return p.Retracted != Off }

// moduleExemption is the first active exemption of the whole module.
func (p *Policy) moduleExemption(path string, now time.Time) *Exemption {
	for i := range p.Exempt {
		if e := &p.Exempt[i]; e.active(now) && e.module(path) {
			return e
		}
	}
	return nil
}

// advisoryExemption is the first active exemption of path from a.
func (p *Policy) advisoryExemption(path string, a *Advisory, now time.Time) *Exemption {
	for i := range p.Exempt {
		if e := &p.Exempt[i]; e.active(now) && e.advisory(path, a) {
			return e
		}
	}
	return nil
}
