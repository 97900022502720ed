package modrefs

import (
	"golang.org/x/mod/modfile"
)

// Retraction is one retract directive of a go.mod: the versions from Low
// to High, inclusive (equal for a single version), and its rationale (the
// directive's comment, possibly empty).
type Retraction struct {
	Low, High string
	Rationale string
}

// Retractions reads the retract directives of the go.mod data (named name
// in errors) as the go command reads a dependency's go.mod for them:
// leniently (modfile.ParseLax), so that directives it does not know do not
// hide the retractions.
func Retractions(name string, data []byte) ([]Retraction, error) {
	f, err := modfile.ParseLax(name, data, nil)
	if err != nil {
		return nil, parseError(name, err)
	}
	out := make([]Retraction, 0, len(f.Retract))
	for _, r := range f.Retract {
		out = append(out, Retraction{Low: r.Low, High: r.High, Rationale: r.Rationale})
	}
	return out, nil
}
