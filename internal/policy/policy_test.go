package policy

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/modproxy/modproxy/internal/errclass"
)

func rng(evs ...string) Range {
	var r Range
	for _, e := range evs {
		kind, v, _ := strings.Cut(e, ":")
		if kind == "i" {
			r.Events = append(r.Events, Event{Introduced: v})
		} else {
			r.Events = append(r.Events, Event{Fixed: v})
		}
	}
	return r
}

func TestRangeAffected(t *testing.T) {
	tests := []struct {
		name    string
		r       Range
		version string
		in      bool
		fixed   string
	}{
		{"from the start, below the fix", rng("i:0", "f:v1.2.0"), "v1.1.9", true, "v1.2.0"},
		{"at the fix", rng("i:0", "f:v1.2.0"), "v1.2.0", false, ""},
		{"above the fix", rng("i:0", "f:v1.2.0"), "v1.3.0", false, ""},
		{"at introduced", rng("i:v1.1.0", "f:v1.2.0"), "v1.1.0", true, "v1.2.0"},
		{"below introduced", rng("i:v1.1.0", "f:v1.2.0"), "v1.0.9", false, ""},
		{"no fix", rng("i:v1.1.0"), "v9.0.0", true, ""},
		{"OSV versions without v", rng("i:0", "f:1.2.0"), "v1.1.0", true, "v1.2.0"},
		{"two intervals, second", rng("i:0", "f:v1.2.0", "i:v1.5.0", "f:v1.5.3"), "v1.5.1", true, "v1.5.3"},
		{"two intervals, between", rng("i:0", "f:v1.2.0", "i:v1.5.0", "f:v1.5.3"), "v1.3.0", false, ""},
		{"events out of order", rng("f:v1.5.3", "i:v1.5.0", "f:v1.2.0", "i:0"), "v1.0.0", true, "v1.2.0"},
		{"pseudo-version below the fix", rng("i:0", "f:v1.2.0"), "v1.1.1-0.20200101000000-abcdefabcdef", true, "v1.2.0"},
		{"pseudo-version of the fix's successor", rng("i:0", "f:v1.2.0"), "v1.2.1-0.20200101000000-abcdefabcdef", false, ""},
		{"pseudo-version before the fix", rng("i:0", "f:v1.2.0"), "v1.2.0-0.20200101000000-abcdefabcdef", true, "v1.2.0"},
		{"+incompatible", rng("i:v2.0.0", "f:v2.1.0"), "v2.0.5+incompatible", true, "v2.1.0"},
		{"+incompatible fix", rng("i:v2.0.0", "f:v2.1.0+incompatible"), "v2.1.0+incompatible", false, ""},
		{"pre-release in range", rng("i:0", "f:v1.0.0"), "v1.0.0-rc.1", true, "v1.0.0"},
		{"invalid version", rng("i:0"), "latest", false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in, fixed := tt.r.Affected(tt.version)
			if in != tt.in || fixed != tt.fixed {
				t.Errorf("Affected(%s) = %v, %q; want %v, %q", tt.version, in, fixed, tt.in, tt.fixed)
			}
		})
	}
}

func TestAdvisoryAffectsAndFixes(t *testing.T) {
	a := Advisory{ID: "GO-2026-0001", Ranges: []Range{rng("i:0", "f:v1.2.0"), rng("i:v1.1.0", "f:v1.3.0")}}
	if in, fixed := a.Affects("v1.1.5"); !in || fixed != "v1.2.0" {
		t.Errorf("Affects(v1.1.5) = %v, %q; want true, v1.2.0 (the lowest fix above)", in, fixed)
	}
	if in, fixed := a.Affects("v1.2.5"); !in || fixed != "v1.3.0" {
		t.Errorf("Affects(v1.2.5) = %v, %q; want true, v1.3.0", in, fixed)
	}
	open := Advisory{ID: "GO-2026-0002", Ranges: []Range{rng("i:0", "f:v1.2.0"), rng("i:v1.0.0")}}
	if in, fixed := open.Affects("v1.1.0"); !in || fixed != "" {
		t.Errorf("Affects with an open range = %v, %q; want true, no fix", in, fixed)
	}
	for v, want := range map[string]bool{"v1.2.0": true, "v1.3.0": true, "v1.1.0": false, "v1.4.0": false, "bad": false} {
		if got := a.Fixes(v); got != want {
			t.Errorf("Fixes(%s) = %v, want %v", v, got, want)
		}
	}
}

var now = time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)

func adv(id string, r ...Range) Advisory { return Advisory{ID: id, Ranges: r} }

func TestDecide(t *testing.T) {
	vuln := []Advisory{
		adv("GO-2026-0001", rng("i:0", "f:v1.2.0")),
		{ID: "GO-2026-0002", Aliases: []string{"CVE-2026-1234"}, Ranges: []Range{rng("i:v1.1.0", "f:v1.3.0")}},
	}
	old := now.Add(-30 * 24 * time.Hour)
	young := now.Add(-time.Hour)
	type want struct {
		reason Reason
		action Action
		ids    string // comma-separated
	}
	tests := []struct {
		name   string
		p      Policy
		f      Facts
		want   []want
		blocks bool
		hidden bool
	}{
		{"off checks nothing", Policy{}, Facts{Version: "v1.1.5", Advisories: vuln, Time: young}, nil, false, false},
		{"vulnerable warn", Policy{Vulnerable: Warn}, Facts{Version: "v1.1.5", Advisories: vuln},
			[]want{{Vulnerable, ActWarn, "GO-2026-0001,GO-2026-0002"}}, false, false},
		{"vulnerable block", Policy{Vulnerable: Block}, Facts{Version: "v1.1.5", Advisories: vuln},
			[]want{{Vulnerable, ActBlock, "GO-2026-0001,GO-2026-0002"}}, true, false},
		{"vulnerable block, hidden", Policy{Vulnerable: Block, HideVulnerable: true}, Facts{Version: "v1.0.0", Advisories: vuln},
			[]want{{Vulnerable, ActBlock, "GO-2026-0001"}}, true, true},
		{"vulnerable warn is never hidden", Policy{Vulnerable: Warn, HideVulnerable: true}, Facts{Version: "v1.0.0", Advisories: vuln},
			[]want{{Vulnerable, ActWarn, "GO-2026-0001"}}, false, false},
		{"fixed version passes", Policy{Vulnerable: Block}, Facts{Version: "v1.3.0", Advisories: vuln}, nil, false, false},
		{"no data", Policy{Vulnerable: Block}, Facts{Version: "v1.0.0"}, nil, false, false},
		{"exempt by ID", Policy{Vulnerable: Block, Exempt: []Exemption{{ID: "GO-2026-0001", Reason: "not reachable"}}},
			Facts{Version: "v1.0.0", Advisories: vuln}, []want{{Vulnerable, ActExempt, "GO-2026-0001"}}, false, false},
		{"exempt by alias, other advisory still blocks", Policy{Vulnerable: Block, Exempt: []Exemption{{ID: "CVE-2026-1234", Reason: "r"}}},
			Facts{Version: "v1.1.5", Advisories: vuln}, []want{{Vulnerable, ActExempt, "GO-2026-0002"}, {Vulnerable, ActBlock, "GO-2026-0001"}}, true, false},
		{"exempt by ID for other modules only", Policy{Vulnerable: Block, Exempt: []Exemption{{Match: "other.example", ID: "GO-2026-0001", Reason: "r"}}},
			Facts{Module: "example.com/m", Version: "v1.0.0", Advisories: vuln}, []want{{Vulnerable, ActBlock, "GO-2026-0001"}}, true, false},
		{"exempt by module", Policy{Vulnerable: Block, MinAge: 72 * time.Hour, Exempt: []Exemption{{Match: "example.com/*", Reason: "ours"}}},
			Facts{Module: "example.com/m", Version: "v1.0.0", Advisories: vuln, Time: young},
			[]want{{Vulnerable, ActExempt, "GO-2026-0001"}, {Cooldown, ActExempt, ""}}, false, false},
		{"expired exemption", Policy{Vulnerable: Block, Exempt: []Exemption{{ID: "GO-2026-0001", Reason: "r", Expires: now}}},
			Facts{Version: "v1.0.0", Advisories: vuln}, []want{{Vulnerable, ActBlock, "GO-2026-0001"}}, true, false},
		{"unexpired exemption", Policy{Vulnerable: Block, Exempt: []Exemption{{ID: "GO-2026-0001", Reason: "r", Expires: now.Add(time.Second)}}},
			Facts{Version: "v1.0.0", Advisories: vuln}, []want{{Vulnerable, ActExempt, "GO-2026-0001"}}, false, false},
		{"cooldown: old passes", Policy{MinAge: 72 * time.Hour}, Facts{Version: "v1.0.0", Time: old}, nil, false, false},
		{"cooldown: exactly min_age passes", Policy{MinAge: time.Hour}, Facts{Version: "v1.0.0", Time: young}, nil, false, false},
		{"cooldown: young blocks", Policy{MinAge: 72 * time.Hour}, Facts{Version: "v1.0.0", Time: young}, []want{{Cooldown, ActBlock, ""}}, true, true},
		{"cooldown: unknown time fails closed", Policy{MinAge: 72 * time.Hour}, Facts{Version: "v1.0.0"}, []want{{UnknownTime, ActBlock, ""}}, true, true},
		{"cooldown: an old time first seen now blocks", Policy{MinAge: 72 * time.Hour}, Facts{Version: "v1.0.0", Time: old, FirstSeen: young},
			[]want{{Cooldown, ActBlock, ""}}, true, true},
		{"cooldown: a young time seen long ago blocks", Policy{MinAge: 72 * time.Hour}, Facts{Version: "v1.0.0", Time: young, FirstSeen: old},
			[]want{{Cooldown, ActBlock, ""}}, true, true},
		{"cooldown: unknown time fails closed, seen long ago", Policy{MinAge: 72 * time.Hour}, Facts{Version: "v1.0.0", FirstSeen: old},
			[]want{{UnknownTime, ActBlock, ""}}, true, true},
		{"cooldown: a fix passes with allow_fixes", Policy{MinAge: 72 * time.Hour, AllowFixes: true}, Facts{Version: "v1.2.0", Advisories: vuln, Time: young},
			[]want{{Cooldown, ActExempt, ""}}, false, false},
		{"cooldown: a fix waits without allow_fixes", Policy{MinAge: 72 * time.Hour}, Facts{Version: "v1.2.0", Advisories: vuln, Time: young},
			[]want{{Cooldown, ActBlock, ""}}, true, true},
		{"cooldown: a non-fix waits with allow_fixes", Policy{MinAge: 72 * time.Hour, AllowFixes: true}, Facts{Version: "v1.2.1", Advisories: vuln, Time: young},
			[]want{{Cooldown, ActBlock, ""}}, true, true},
		{"cooldown: allow_fixes and unknown time", Policy{MinAge: 72 * time.Hour, AllowFixes: true}, Facts{Version: "v1.2.0", Advisories: vuln},
			[]want{{UnknownTime, ActBlock, ""}}, true, true},
		{"retracted warn", Policy{Retracted: Warn}, Facts{Version: "v1.0.1", Retractions: []Retraction{{Low: "v1.0.0", High: "v1.0.2", Rationale: "broken"}}},
			[]want{{Retracted, ActWarn, ""}}, false, false},
		{"retracted block, not hidden", Policy{Retracted: Block}, Facts{Version: "v1.0.0", Retractions: []Retraction{{Low: "v1.0.0", High: "v1.0.0"}}},
			[]want{{Retracted, ActBlock, ""}}, true, false},
		{"not retracted", Policy{Retracted: Block}, Facts{Version: "v1.0.3", Retractions: []Retraction{{Low: "v1.0.0", High: "v1.0.2"}}}, nil, false, false},
		{"everything at once", Policy{Vulnerable: Warn, MinAge: time.Minute, Retracted: Block},
			Facts{Version: "v1.0.0", Advisories: vuln, Time: old, Retractions: []Retraction{{Low: "v1.0.0", High: "v1.0.0"}}},
			[]want{{Vulnerable, ActWarn, "GO-2026-0001"}, {Retracted, ActBlock, ""}}, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.f.Now = now
			if tt.f.Module == "" {
				tt.f.Module = "example.com/m"
			}
			d := tt.p.Decide(tt.f)
			var got []want
			for _, f := range d.Findings {
				got = append(got, want{f.Reason, f.Action, strings.Join(f.IDs, ",")})
				if f.Action == ActExempt && f.Exemption == nil && !f.Fix {
					t.Errorf("exempt finding %v says neither the exemption nor allow_fixes", f.Reason)
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("findings = %v, want %v", got, tt.want)
			}
			if b := d.Blocked() != nil; b != tt.blocks {
				t.Errorf("blocked = %v, want %v", b, tt.blocks)
			}
			if h := d.Hidden(&tt.p); h != tt.hidden {
				t.Errorf("hidden = %v, want %v", h, tt.hidden)
			}
		})
	}
}

func TestRefuses(t *testing.T) {
	vuln := []Advisory{adv("GO-2026-0001", rng("i:0", "f:v1.2.0"))}
	tests := []struct {
		p             Policy
		zip, mod      bool
		warnIDs       string
		retractedWarn bool
	}{
		{Policy{Vulnerable: Block}, true, false, "", false},
		{Policy{Vulnerable: Block, BlockMod: true}, true, true, "", false},
		{Policy{Vulnerable: Warn, BlockMod: true}, false, false, "GO-2026-0001", false},
		{Policy{Retracted: Warn}, false, false, "", true},
	}
	for i, tt := range tests {
		d := tt.p.Decide(Facts{Module: "m.example", Version: "v1.0.0", Advisories: vuln, Now: now, Retractions: []Retraction{{Low: "v1.0.0", High: "v1.0.0"}}})
		if got := d.Refuses(&tt.p, Zip, "m.example", "v1.0.0") != nil; got != tt.zip {
			t.Errorf("%d: zip refused = %v, want %v", i, got, tt.zip)
		}
		if got := d.Refuses(&tt.p, Mod, "m.example", "v1.0.0") != nil; got != tt.mod {
			t.Errorf("%d: mod refused = %v, want %v", i, got, tt.mod)
		}
		ids, r := d.Warnings()
		if strings.Join(ids, ",") != tt.warnIDs || (r != nil) != tt.retractedWarn {
			t.Errorf("%d: warnings = %v, %v; want %q, %v", i, ids, r, tt.warnIDs, tt.retractedWarn)
		}
	}
}

func TestBlockedErrorText(t *testing.T) {
	tests := []struct {
		err  *BlockedError
		want string
	}{
		{&BlockedError{Module: "m.example", Version: "v1.0.0", Finding: Finding{Reason: Vulnerable, IDs: []string{"GO-2026-0001", "GO-2026-0002"}, Fixed: []string{"v1.2.0", "v1.3.0"}}},
			"m.example@v1.0.0 is blocked by this proxy's policy: known vulnerabilities GO-2026-0001 (fixed in v1.2.0), GO-2026-0002 (fixed in v1.3.0); upgrade to v1.3.0 or later"},
		{&BlockedError{Module: "m.example", Version: "v1.0.0", Finding: Finding{Reason: Vulnerable, IDs: []string{"GO-2026-0001"}, Fixed: []string{""}}},
			"m.example@v1.0.0 is blocked by this proxy's policy: known vulnerabilities GO-2026-0001 (no fixed version)"},
		{&BlockedError{Module: "m.example", Version: "v1.0.0", MinAge: 72 * time.Hour, Finding: Finding{Reason: Cooldown, Published: now, Available: now.Add(72 * time.Hour)}},
			"m.example@v1.0.0 is blocked by this proxy's policy: published 2026-12-04T12:00:00Z, younger than the minimum age 72h0m0s; available from 2026-12-07T12:00:00Z"},
		{&BlockedError{Module: "m.example", Version: "v1.0.0", MinAge: time.Hour, Latest: true, Finding: Finding{Reason: Cooldown, Published: now, Available: now.Add(time.Hour)}},
			"m.example@latest is blocked by this proxy's policy: every version is younger than the minimum age 1h0m0s; the newest, v1.0.0, available from 2026-12-04T13:00:00Z"},
		{&BlockedError{Module: "m.example", Version: "v1.0.0", MinAge: time.Hour, Finding: Finding{Reason: UnknownTime}},
			"m.example@v1.0.0 is blocked by this proxy's policy: its release time is unknown (the upstream's .info has no Time), so the minimum age 1h0m0s cannot be checked"},
		{&BlockedError{Module: "m.example", Version: "v1.0.0", Finding: Finding{Reason: Retracted, Rationale: "leaks\n  credentials"}},
			"m.example@v1.0.0 is blocked by this proxy's policy: retracted by the module's author: leaks credentials"},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("got  %s\nwant %s", got, tt.want)
		}
		if c := errclass.Of(tt.err); c != errclass.Denied {
			t.Errorf("class %v, want denied", c)
		}
		var be *BlockedError
		if !errors.As(error(tt.err), &be) {
			t.Error("not a *BlockedError")
		}
	}
}

func TestLatest(t *testing.T) {
	list := []string{"v1.0.0", "v1.2.0", "v1.1.0", "v2.0.0-rc.1", "v1.3.0-beta"}
	if got := Latest(list, func(string) bool { return true }); got != "v1.2.0" {
		t.Errorf("Latest = %s, want v1.2.0 (releases first)", got)
	}
	if got := Latest(list, func(v string) bool { return v != "v1.2.0" }); got != "v1.1.0" {
		t.Errorf("Latest without v1.2.0 = %s, want v1.1.0", got)
	}
	if got := Latest(list, func(v string) bool { return strings.Contains(v, "-") }); got != "v2.0.0-rc.1" {
		t.Errorf("Latest of pre-releases = %s", got)
	}
	if got := Latest(list, func(string) bool { return false }); got != "" {
		t.Errorf("Latest of nothing = %q", got)
	}
}

// TestHighestIncompatible: +incompatible versions are left out when the
// highest compatible version has a go.mod (the go command's rule), kept
// when it has none or when there is no compatible version.
func TestHighestIncompatible(t *testing.T) {
	errMod := errors.New("go.mod unreadable")
	tests := []struct {
		name     string
		list     []string
		hasGoMod map[string]bool // absent: the callback fails the test
		want     string
		err      error
	}{
		{"compatible has a go.mod", []string{"v1.5.2", "v2.0.0+incompatible", "v1.4.0"}, map[string]bool{"v1.5.2": true}, "v1.5.2", nil},
		{"compatible pre-release has a go.mod", []string{"v1.0.0-rc.1", "v2.0.0+incompatible"}, map[string]bool{"v1.0.0-rc.1": true}, "v1.0.0-rc.1", nil},
		{"compatible without a go.mod", []string{"v1.5.2", "v2.0.0+incompatible", "v3.0.0+incompatible"}, map[string]bool{"v1.5.2": false}, "v3.0.0+incompatible", nil},
		{"only incompatible", []string{"v2.0.0+incompatible", "bad"}, nil, "v2.0.0+incompatible", nil},
		{"only compatible", []string{"v1.0.0", "v1.1.0"}, nil, "v1.1.0", nil},
		{"go.mod unreadable", []string{"v1.0.0", "v2.0.0+incompatible"}, map[string]bool{}, "", errMod},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Highest(tt.list, func(v string) (bool, error) {
				ok, found := tt.hasGoMod[v]
				if tt.hasGoMod == nil {
					t.Errorf("asked about %s", v)
				} else if !found {
					return false, errMod
				}
				return ok, nil
			})
			if got != tt.want || !errors.Is(err, tt.err) {
				t.Errorf("Highest = %q, %v; want %q, %v", got, err, tt.want, tt.err)
			}
		})
	}
}

func TestModeAndExemption(t *testing.T) {
	for s, want := range map[string]Mode{"": Off, "off": Off, "warn": Warn, "block": Block} {
		if m, err := ParseMode(s); err != nil || m != want {
			t.Errorf("ParseMode(%q) = %v, %v", s, m, err)
		}
	}
	if _, err := ParseMode("deny"); err == nil {
		t.Error("ParseMode(deny) passed")
	}
	for _, e := range []Exemption{{Reason: "r"}, {Match: "m", Reason: " "}, {Match: "a b", Reason: "r"}} {
		if e.Check() == nil {
			t.Errorf("%+v passed Check", e)
		}
	}
	if err := (Exemption{ID: "GO-2026-0001", Reason: "r"}).Check(); err != nil {
		t.Error(err)
	}
	if (&Policy{}).On() || !(&Policy{MinAge: time.Second}).On() {
		t.Error("On")
	}
}

func TestRetractionHolds(t *testing.T) {
	r := Retraction{Low: "v1.0.0", High: "v1.2.0"}
	for v, want := range map[string]bool{"v1.0.0": true, "v1.1.0": true, "v1.2.0": true, "v1.2.1": false, "v0.9.0": false, "v1.1.1-0.20200101000000-abcdefabcdef": true} {
		if r.Holds(v) != want {
			t.Errorf("Holds(%s) != %v", v, want)
		}
	}
}
