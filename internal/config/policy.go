package config

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Policy is a supply-chain policy ([policy] at the root, [namespace.policy]
// in a namespace, which replaces the root's as a whole; a namespace
// without one has the root's). See package policy for the decisions.
type Policy struct {
	// Vulnerable is "off", "warn" or "block": versions inside an
	// advisory's affected range.
	Vulnerable string `toml:"vulnerable"`
	// MinAge is the cooldown: versions published (.info Time) or first
	// seen by this proxy less than this long ago are hidden from lists
	// and @latest and refused; 0 turns it off.
	MinAge Duration `toml:"min_age"`
	// AllowFixes lets a version through the cooldown early when it is
	// the fixed version of an advisory that affects an earlier version.
	AllowFixes bool `toml:"allow_fixes"`
	// Retracted is "off", "warn" or "block": versions the module's latest
	// go.mod retracts.
	Retracted string `toml:"retracted"`
	// BlockMod refuses .mod files of blocked versions too (by default
	// only zips).
	BlockMod bool `toml:"block_mod"`
	// HideVulnerable drops blocked vulnerable versions from lists and
	// @latest (by default they stay, so the go command reports why).
	HideVulnerable bool `toml:"hide_vulnerable"`
	// Exempt are the exemptions. File only.
	Exempt []Exemption `toml:"exempt"`
}

// Exemption lets versions through the policy: Match (module path
// patterns) or ID (an advisory ID or alias), or both; Reason is mandatory;
// Expires ("2027-01-31" or RFC 3339) is optional.
type Exemption struct {
	Match   string `toml:"match"`
	ID      string `toml:"id"`
	Reason  string `toml:"reason"`
	Expires string `toml:"expires"`
}

// ExpiryTime parses Expires: zero when empty, a date is its midnight UTC.
func (e Exemption) ExpiryTime() (time.Time, error) {
	if e.Expires == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.DateOnly, e.Expires); err == nil {
		return t, nil
	}
	t, err := time.Parse(time.RFC3339, e.Expires)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q: want a date (2027-01-31) or an RFC 3339 time", e.Expires)
	}
	return t, nil
}

// validatePolicies checks [policy] and every [namespace.policy].
func (c *Config) validatePolicies() error {
	if err := c.Policy.validate("policy"); err != nil {
		return err
	}
	for i, ns := range c.Namespaces {
		if ns.Policy != nil {
			if err := ns.Policy.validate(fmt.Sprintf("namespace[%d].policy", i)); err != nil {
				return err
			}
		}
	}
	return nil
}

func (p *Policy) validate(key string) error {
	for name, v := range map[string]string{"vulnerable": p.Vulnerable, "retracted": p.Retracted} {
		switch v {
		case "", "off", "warn", "block": // "": off
		default:
			return &Error{Key: key + "." + name, Err: fmt.Errorf("%q: want off, warn or block", v)}
		}
	}
	if p.MinAge < 0 {
		return &Error{Key: key + ".min_age", Err: errors.New("must not be negative")}
	}
	if p.HideVulnerable && p.Vulnerable != "block" {
		return &Error{Key: key + ".hide_vulnerable", Err: fmt.Errorf("hides the versions vulnerable = \"block\" refuses; vulnerable is %q", p.Vulnerable)}
	}
	if p.AllowFixes && p.MinAge == 0 {
		return &Error{Key: key + ".allow_fixes", Err: errors.New("lets fixes through the cooldown early; min_age is not set")}
	}
	for i, e := range p.Exempt {
		ek := fmt.Sprintf("%s.exempt[%d]", key, i)
		switch {
		case strings.TrimSpace(e.Match) == "" && strings.TrimSpace(e.ID) == "":
			return &Error{Key: ek, Err: errors.New("match (module path patterns) or id (an advisory ID or alias) is required")}
		case strings.ContainsAny(e.Match, " \t"):
			return &Error{Key: ek + ".match", Err: fmt.Errorf("%q contains white space", e.Match)}
		case strings.TrimSpace(e.Reason) == "":
			return &Error{Key: ek + ".reason", Err: errors.New("must not be empty: every use of an exemption is audited with it")}
		}
		if _, err := e.ExpiryTime(); err != nil {
			return &Error{Key: ek + ".expires", Err: err}
		}
	}
	return nil
}
