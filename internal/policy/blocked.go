package policy

import (
	"strings"
	"time"

	"github.com/modproxy/modproxy/internal/errclass"
)

// BlockedError is a version the supply-chain policy refuses. Its class is
// errclass.Denied; its text is one line naming the version and the reason:
// the advisory IDs with their first fixed versions, the time the version
// becomes available, or the retraction's rationale.
type BlockedError struct {
	Module, Version string
	Finding         Finding
	// MinAge is the cooldown that refused it (Cooldown, UnknownTime).
	MinAge time.Duration
	// Latest is set for an @latest that no version passes.
	Latest bool
}

// Class implements errclass.Classer.
func (e *BlockedError) Class() errclass.Class { return errclass.Denied }

// Reason is the rule that refused the version.
func (e *BlockedError) Reason() Reason { return e.Finding.Reason }

// FirstFixed is the lowest version above the refused one that fixes
// every advisory that refused it, "" when one of them has no fix.
func (e *BlockedError) FirstFixed() string {
	var hi string
	for _, f := range e.Finding.Fixed {
		if f == "" {
			return ""
		}
		if hi == "" || compare(f, hi) > 0 {
			hi = f
		}
	}
	return hi
}

func (e *BlockedError) Error() string {
	var b strings.Builder
	b.WriteString(e.Module)
	b.WriteByte('@')
	if e.Latest {
		b.WriteString("latest")
	} else {
		b.WriteString(e.Version)
	}
	b.WriteString(" is blocked by this proxy's policy: ")
	f := &e.Finding
	switch f.Reason {
	case Vulnerable:
		b.WriteString("known vulnerabilities ")
		for i, id := range f.IDs {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(id)
			if f.Fixed[i] != "" {
				b.WriteString(" (fixed in " + f.Fixed[i] + ")")
			} else {
				b.WriteString(" (no fixed version)")
			}
		}
		if fx := e.FirstFixed(); fx != "" {
			b.WriteString("; upgrade to " + fx + " or later")
		}
	case Cooldown:
		if e.Latest {
			b.WriteString("every version is younger than the minimum age " + e.MinAge.String() + "; the newest, " + e.Version + ",")
		} else {
			b.WriteString("published " + f.Published.UTC().Format(time.RFC3339))
			if !f.FirstSeen.IsZero() {
				b.WriteString(", first seen by this proxy " + f.FirstSeen.UTC().Format(time.RFC3339))
			}
			b.WriteString(", younger than the minimum age " + e.MinAge.String() + ";")
		}
		b.WriteString(" available from " + f.Available.UTC().Format(time.RFC3339))
	case UnknownTime:
		b.WriteString("its release time is unknown (the upstream's .info has no Time), so the minimum age " + e.MinAge.String() + " cannot be checked")
	case Retracted:
		b.WriteString("retracted by the module's author")
		if r := strings.Join(strings.Fields(f.Rationale), " "); r != "" {
			b.WriteString(": " + r)
		}
	}
	return b.String()
}
