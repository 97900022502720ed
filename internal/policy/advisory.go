// Package policy decides, as pure functions, whether the supply-chain
// policy of a namespace lets a module version through: known
// vulnerabilities, a minimum release age (cooldown) and retractions. It
// carries no HTTP statuses and does no I/O: callers hand it the facts
// (advisories, the version's time, the retractions of the module's latest
// go.mod, the clock) and map its decisions to answers.
package policy

import "context"

// Advisory is what one vulnerability advisory says about one module: its
// ID (GO-YYYY-NNNN), aliases (CVE-..., GHSA-...) and the OSV SEMVER ranges
// of affected versions of that module.
type Advisory struct {
	ID      string
	Aliases []string
	// Ranges are the module's affected ranges; a version is affected when
	// it is inside any of them.
	Ranges []Range
}

// Range is one OSV SEMVER range, its events in order. A version is inside
// it when, walking the events, the last "introduced" at or below it is not
// followed by a "fixed" at or below it. Versions are canonical semver with
// a leading "v" ("v1.2.3"); Introduced "0" or "" means from the first
// version.
type Range struct {
	Events []Event
}

// Event is one OSV range event: exactly one of Introduced and Fixed is set.
type Event struct {
	Introduced string
	Fixed      string
}

// Source tells which advisories name a module. Implementations are safe
// for concurrent use. A module no advisory names has none and no error; an
// error means the data could not be read (the caller decides whether to
// fail open or closed).
type Source interface {
	Advisories(ctx context.Context, modulePath string) ([]Advisory, error)
}
