package modrefs

import (
	"cmp"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/mod/module"
	"golang.org/x/mod/semver"
)

// Need is how much of a module version is needed.
type Need uint8

const (
	// None: the version is not referenced.
	None Need = iota
	// GoMod: only its go.mod is needed (its .mod; a cache may keep its .info
	// with it).
	GoMod
	// Zip: its code is needed: its .zip, .mod and .info.
	Zip
)

func (n Need) String() string {
	switch n {
	case GoMod:
		return "go.mod"
	case Zip:
		return "zip"
	}
	return "none"
}

// Ref is one referenced module version and what it needs.
type Ref struct {
	module.Version
	Need Need
}

// Skip is a requirement that is deliberately not referenced.
type Skip struct {
	module.Version        // as the require line names it
	Reason         string // "workspace module", "excluded", "replaced by directory DIR"
	File           string // the go.mod that requires it
}

// Replacement is one replace directive of a go.mod or go.work.
type Replacement struct {
	File string         // the go.mod or go.work holding it
	Line int            // 1-based
	Old  module.Version // Version "" replaces every version
	New  module.Version // Version "" is a directory replacement
	// Used tells whether a requirement resolved to it; an unused version
	// replacement still references New's go.mod (see the package doc).
	Used bool
}

// ErrNotModFile is the Err of a *FileError for a file given by name whose
// name is none that AddPaths reads.
var ErrNotModFile = errors.New("not a go.mod, go.sum or go.work file")

// FileError is a problem in one file: a line that does not parse, a file
// that does not parse, a use directory without a go.mod.
type FileError struct {
	File string
	Line int // 1-based; 0 when not about one line
	Err  error
	// Skipped is set when nothing of the file was used.
	Skipped bool
}

func (e *FileError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %v", e.File, e.Line, e.Err)
	}
	return fmt.Sprintf("%s: %v", e.File, e.Err)
}

func (e *FileError) Unwrap() error { return e.Err }

// Options are the options of a Set.
type Options struct {
	// Skip lists directories that AddPaths does not enter (such as a module
	// cache or a trash below a project root: the go.mod files in them are
	// those of dependencies, not of projects).
	Skip []string
}

// Set is what the files read so far reference. The zero Set is not usable;
// call New.
type Set struct {
	skip       map[string]bool // absolute directories
	needs      map[module.Version]Need
	skipped    []Skip
	reps       []Replacement
	problems   []*FileError
	files      []string
	read       map[string]bool // absolute paths of the files read
	goVersions map[string]bool
}

// New returns an empty Set.
func New(opts Options) *Set {
	s := &Set{
		skip:       map[string]bool{},
		needs:      map[module.Version]Need{},
		read:       map[string]bool{},
		goVersions: map[string]bool{},
	}
	for _, d := range opts.Skip {
		if abs, err := filepath.Abs(d); err == nil {
			s.skip[abs] = true
		}
	}
	return s
}

// Need reports what m needs.
func (s *Set) Need(m module.Version) Need { return s.needs[m] }

// Refs returns every referenced version, sorted by path then semantic
// version.
func (s *Set) Refs() []Ref {
	out := make([]Ref, 0, len(s.needs))
	for m, n := range s.needs {
		out = append(out, Ref{Version: m, Need: n})
	}
	slices.SortFunc(out, func(a, b Ref) int {
		return cmp.Or(strings.Compare(a.Path, b.Path), semver.Compare(a.Version.Version, b.Version.Version))
	})
	return out
}

// Skipped returns the requirements that reference nothing, in the order
// found.
func (s *Set) Skipped() []Skip { return s.skipped }

// Replacements returns the replace directives read, in the order read, so
// that a consumer can tell a replaced version from its replacement.
func (s *Set) Replacements() []Replacement { return s.reps }

// Problems returns what did not parse, in the order found.
func (s *Set) Problems() []*FileError { return s.problems }

// Files returns the files read from disk, in the order read (the files
// that did not parse included).
func (s *Set) Files() []string { return s.files }

// GoVersions returns the go versions that go and toolchain lines name
// ("go1.22" for "go 1.22", "go1.23.4" for "toolchain go1.23.4"), sorted.
func (s *Set) GoVersions() []string {
	out := make([]string, 0, len(s.goVersions))
	for g := range s.goVersions {
		out = append(out, g)
	}
	slices.Sort(out)
	return out
}

// add records that m needs n; an invalid or non-canonical m is a problem
// of file:line.
func (s *Set) add(file string, line int, m module.Version, n Need) {
	if err := module.Check(m.Path, m.Version); err != nil {
		s.problem(&FileError{File: file, Line: line, Err: err})
		return
	}
	if module.CanonicalVersion(m.Version) != m.Version {
		s.problem(&FileError{File: file, Line: line, Err: fmt.Errorf("%s@%s: version is not canonical", m.Path, m.Version)})
		return
	}
	s.needs[m] = max(s.needs[m], n)
}

func (s *Set) problem(e *FileError) { s.problems = append(s.problems, e) }
