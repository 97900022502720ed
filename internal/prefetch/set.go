package prefetch

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"sort"
	"strings"

	"golang.org/x/mod/module"
	"golang.org/x/mod/semver"

	"github.com/modproxy/modproxy/internal/artifact"
	"github.com/modproxy/modproxy/internal/modrefs"
)

// Need is the set of files of one module version that a build needs: a
// bit mask of NeedInfo, NeedMod and NeedZip.
type Need uint8

// The files of a module version.
const (
	NeedInfo Need = 1 << iota // $module/@v/$version.info
	NeedMod                   // $module/@v/$version.mod
	NeedZip                   // $module/@v/$version.zip

	// NeedAll is what a go.mod require line or a go.sum "h1:" line of the
	// module zip needs: .info, .mod and .zip.
	NeedAll = NeedInfo | NeedMod | NeedZip
)

// Kinds returns the artifact kinds of n, in protocol order (info, mod, zip).
func (n Need) Kinds() []artifact.Kind {
	var ks []artifact.Kind
	for _, k := range []struct {
		bit  Need
		kind artifact.Kind
	}{{NeedInfo, artifact.Info}, {NeedMod, artifact.Mod}, {NeedZip, artifact.Zip}} {
		if n&k.bit != 0 {
			ks = append(ks, k.kind)
		}
	}
	return ks
}

// Module is one module version to prefetch and the files it needs.
type Module struct {
	Path    string // module path, not escaped
	Version string // canonical version
	Need    Need
}

func (m Module) String() string { return m.Path + "@" + m.Version }

// Skipped is a requirement that is deliberately not fetched.
type Skipped struct {
	Path    string `json:"path"`
	Version string `json:"version,omitempty"`
	Reason  string `json:"reason"`
	Source  string `json:"source,omitempty"` // the file that named it
}

// InputError is a file or argument that cannot be read or parsed. Nothing
// should be fetched when an input is bad: the set would be incomplete.
type InputError struct {
	Name string // file name or argument
	Line int    // 1-based line, 0 when not about one line
	Err  error
}

func (e *InputError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %v", e.Name, e.Line, e.Err)
	}
	return fmt.Sprintf("%s: %v", e.Name, e.Err)
}

func (e *InputError) Unwrap() error { return e.Err }

// Set collects the module versions to prefetch from go.mod, go.sum,
// go.work and go.work.sum files and module@version lists, merging what each
// input needs (a version named by a go.sum "/go.mod" line and by a require
// line needs all three files).
//
// Files are read with package modrefs, whose rules (the package doc there)
// are the go command's and are shared with gc pin sets and modproxy clean: a
// go.sum "M V h1:" line and a require line need .info, .mod and .zip, a
// "M V/go.mod h1:" line only the .mod; a replaced requirement is fetched as
// its replacement and one replaced by a directory is skipped; a workspace's
// modules are read together and never fetched. Anything in a file that does
// not parse is an *InputError: the set would have a hole.
//
// Lists hold "M@V" per line; blank lines and "#" comments are ignored.
// Versions must be canonical (as go.sum and go.mod hold them); queries such
// as "latest" or a branch name are rejected. A Set is not safe for
// concurrent use.
type Set struct {
	refs     *modrefs.Set
	args     map[module.Version]Need // from lists and arguments
	excluded map[module.Version]bool
	skipped  []Skipped // by Exclude
	sources  []string
	files    int // modrefs files already in sources
	problems int // modrefs problems already reported
}

// NewSet returns an empty Set.
func NewSet() *Set {
	return &Set{refs: modrefs.New(modrefs.Options{}), args: map[module.Version]Need{}, excluded: map[module.Version]bool{}}
}

// Add adds one module version with what it needs. source names the input
// for error messages.
func (s *Set) Add(source, path, version string, need Need) error {
	if !artifact.IsCanonical(version) {
		return &InputError{Name: source, Err: fmt.Errorf("%s@%s: version is not canonical (prefetch takes exact versions, as go.sum holds them)", path, version)}
	}
	if err := module.Check(path, version); err != nil {
		return &InputError{Name: source, Err: err}
	}
	mv := module.Version{Path: path, Version: version}
	s.args[mv] |= need
	return nil
}

// needs merges what the files and the arguments need, without the
// excluded versions.
func (s *Set) needs() map[module.Version]Need {
	out := maps.Clone(s.args)
	for _, r := range s.refs.Refs() {
		n := NeedMod
		if r.Need == modrefs.Zip {
			n = NeedAll
		}
		out[r.Version] |= n
	}
	for mv := range s.excluded {
		delete(out, mv)
	}
	return out
}

// Len returns the number of module versions in the set.
func (s *Set) Len() int { return len(s.needs()) }

// Modules returns the module versions, sorted by path then semantic
// version.
func (s *Set) Modules() []Module {
	needs := s.needs()
	mods := make([]Module, 0, len(needs))
	for mv, n := range needs {
		mods = append(mods, Module{Path: mv.Path, Version: mv.Version, Need: n})
	}
	sort.Slice(mods, func(i, j int) bool {
		if mods[i].Path != mods[j].Path {
			return mods[i].Path < mods[j].Path
		}
		return semver.Compare(mods[i].Version, mods[j].Version) < 0
	})
	return mods
}

// Skipped returns the requirements that are deliberately not fetched: those
// the files' rules skip, in the order found, then those Exclude removed.
func (s *Set) Skipped() []Skipped {
	var out []Skipped
	for _, k := range s.refs.Skipped() {
		out = append(out, Skipped{Path: k.Path, Version: k.Version.Version, Reason: k.Reason, Source: k.File})
	}
	return append(out, s.skipped...)
}

// Sources returns the files read, in the order read.
func (s *Set) Sources() []string { return s.sources }

// Exclude removes the module versions whose path matches patterns (a
// comma-separated list of glob patterns in GOPRIVATE/GONOPROXY syntax,
// matched with module.MatchPrefixPatterns) and records them as skipped. It
// returns how many were removed.
func (s *Set) Exclude(patterns, reason string) int {
	if strings.TrimSpace(patterns) == "" {
		return 0
	}
	var drop []Module
	for _, m := range s.Modules() {
		if module.MatchPrefixPatterns(patterns, m.Path) {
			drop = append(drop, m)
		}
	}
	for _, m := range drop {
		s.excluded[module.Version{Path: m.Path, Version: m.Version}] = true
		s.skipped = append(s.skipped, Skipped{Path: m.Path, Version: m.Version, Reason: reason})
	}
	return len(drop)
}

// AddPaths reads files and directories as modrefs.Set.AddPaths does: a file
// by its name (go.work as a workspace, go.sum, go.work.sum and other *.sum
// files as go.sum, go.mod and other *.mod files as go.mod; any other file
// is an error, lists are read with AddList), a directory by walking it for
// the go command's file names, without entering the directories the go
// command ignores (names starting with "." or "_", testdata, vendor) or
// following symbolic links to directories. A file is read at most once
// however it is reached.
func (s *Set) AddPaths(paths ...string) error {
	err := s.refs.AddPaths(context.Background(), paths...)
	files := s.refs.Files()
	s.sources = append(s.sources, files[s.files:]...)
	s.files = len(files)
	if err != nil {
		return inputError(err)
	}
	return s.problem()
}

// AddGoMod adds the requirements of a go.mod file's content, after its
// replace and exclude directives.
func (s *Set) AddGoMod(name string, data []byte) error {
	s.refs.AddGoMod(name, data)
	return s.problem()
}

// AddGoSum adds the module versions of a go.sum (or go.work.sum) file's
// content: "M V h1:..." needs .info, .mod and .zip, "M V/go.mod h1:..."
// only the .mod.
func (s *Set) AddGoSum(name string, data []byte) error {
	s.refs.AddGoSum(name, data)
	return s.problem()
}

// problem returns the first problem modrefs found since the last call, as
// an *InputError.
func (s *Set) problem() error {
	ps := s.refs.Problems()
	if len(ps) == s.problems {
		return nil
	}
	first := ps[s.problems]
	s.problems = len(ps)
	return inputError(first)
}

// inputError is a modrefs error as an *InputError naming the file (and the
// line).
func inputError(err error) error {
	var fe *modrefs.FileError
	var pe *fs.PathError
	switch {
	case errors.As(err, &fe) && errors.Is(fe.Err, modrefs.ErrNotModFile):
		return &InputError{Name: fe.File, Err: fmt.Errorf("%w (a module@version list is read with --list)", fe.Err)}
	case errors.As(err, &fe):
		return &InputError{Name: fe.File, Line: fe.Line, Err: fe.Err}
	case errors.As(err, &pe):
		return &InputError{Name: pe.Path, Err: err}
	}
	return &InputError{Name: "inputs", Err: err}
}

// AddList adds a list of module versions: one "M@V" per line; blank lines
// and lines starting with "#" are ignored, as is text after " #".
func (s *Set) AddList(name string, data []byte) error {
	s.sources = append(s.sources, name)
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if i := strings.Index(line, "#"); i >= 0 {
			line = line[:i]
		}
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if err := s.AddArg(name, line); err != nil {
			err.(*InputError).Line = n
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return &InputError{Name: name, Err: err}
	}
	return nil
}

// AddArg adds one "M@V" argument, which needs .info, .mod and .zip.
func (s *Set) AddArg(source, arg string) error {
	path, vers, ok := strings.Cut(arg, "@")
	if !ok || path == "" || vers == "" {
		return &InputError{Name: source, Err: fmt.Errorf("%q: want MODULE@VERSION", arg)}
	}
	return s.Add(source, path, vers, NeedAll)
}
