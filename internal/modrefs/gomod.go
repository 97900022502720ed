package modrefs

import (
	"errors"
	"fmt"
	"path/filepath"

	"golang.org/x/mod/modfile"
	"golang.org/x/mod/module"
)

// modFile is a parsed go.mod.
type modFile struct {
	name string
	f    *modfile.File
}

// unit is what the go command loads as one build: a single main module, or
// the modules of a workspace with its go.work.
type unit struct {
	work     *modfile.WorkFile // nil for a single module
	workName string
	mods     []*modFile

	// Filled by resolve.
	firstRep int                      // s.reps[firstRep:] are the unit's replacements
	table    map[module.Version][]int // replaced version -> indexes in s.reps
	byWork   map[string]bool          // module paths the go.work replaces
	workMods map[string]bool          // module paths of the workspace
	excluded map[module.Version]bool
}

// parseMod parses a go.mod strictly, else laxly (see the package doc),
// recording problems; nil when the file is skipped.
func (s *Set) parseMod(name string, data []byte) *modFile {
	f, err := modfile.Parse(name, data, nil)
	if err != nil {
		pe := parseError(name, err)
		s.problem(pe)
		if f, err = modfile.ParseLax(name, data, nil); err != nil {
			pe.Skipped = true
			return nil
		}
	}
	s.goLines(f.Go, f.Toolchain)
	return &modFile{name: name, f: f}
}

// parseWork parses a go.work, recording problems; nil when it is skipped.
func (s *Set) parseWork(name string, data []byte) *modfile.WorkFile {
	f, err := modfile.ParseWork(name, data, nil)
	if err != nil {
		pe := parseError(name, err)
		pe.Skipped = true
		s.problem(pe)
		return nil
	}
	s.goLines(f.Go, f.Toolchain)
	return f
}

func (s *Set) goLines(g *modfile.Go, t *modfile.Toolchain) {
	if g != nil {
		s.goVersions["go"+g.Version] = true
	}
	if t != nil {
		s.goVersions[t.Name] = true
	}
}

// parseError is the first error of a modfile parse as a *FileError whose
// Err does not repeat the file name and line.
func parseError(name string, err error) *FileError {
	var list modfile.ErrorList
	if errors.As(err, &list) && len(list) > 0 {
		e := list[0]
		line := e.Pos.Line
		e.Filename, e.Pos = "", modfile.Position{}
		return &FileError{File: name, Line: line, Err: &e}
	}
	return &FileError{File: name, Err: err}
}

func lineOf(l *modfile.Line) int {
	if l == nil {
		return 0
	}
	return l.Start.Line
}

// resolve adds what the unit's requirements and replacements reference.
func (s *Set) resolve(u *unit) {
	u.firstRep = len(s.reps)
	u.table = map[module.Version][]int{}
	u.byWork = map[string]bool{}
	u.workMods = map[string]bool{}
	u.excluded = map[module.Version]bool{}
	if u.work != nil {
		for _, m := range u.mods {
			if m.f.Module != nil {
				u.workMods[m.f.Module.Mod.Path] = true
			}
		}
		for _, r := range u.work.Replace {
			u.byWork[r.Old.Path] = true
			s.addReplace(u, u.workName, r)
		}
	}
	for _, m := range u.mods {
		for _, x := range m.f.Exclude {
			u.excluded[x.Mod] = true
		}
		for _, r := range m.f.Replace {
			if !u.byWork[r.Old.Path] {
				s.addReplace(u, m.name, r)
			}
		}
	}
	for _, m := range u.mods {
		for _, r := range m.f.Require {
			s.require(u, m.name, lineOf(r.Syntax), r.Mod)
		}
	}
	for i := u.firstRep; i < len(s.reps); i++ {
		rep := s.reps[i]
		if rep.Used || rep.New.Version == "" || (rep.Old.Version != "" && u.excluded[rep.Old]) {
			continue
		}
		s.add(rep.File, rep.Line, rep.New, GoMod)
	}
}

// addReplace records a replace directive of file in the unit; a second
// replacement of one version by something else is a problem.
func (s *Set) addReplace(u *unit, file string, r *modfile.Replace) {
	rep := Replacement{File: file, Line: lineOf(r.Syntax), Old: r.Old, New: r.New}
	for _, j := range u.table[r.Old] {
		if prev := s.reps[j]; !sameTarget(prev, rep) {
			s.problem(&FileError{File: file, Line: rep.Line, Err: fmt.Errorf("conflicting replacements for %s: %s (%s:%d) and %s",
				versionString(r.Old), versionString(prev.New), prev.File, prev.Line, versionString(r.New))})
			break
		}
	}
	s.reps = append(s.reps, rep)
	u.table[r.Old] = append(u.table[r.Old], len(s.reps)-1)
}

// sameTarget reports whether two replacements name one module version or
// one directory (relative directories start from their file's directory).
func sameTarget(a, b Replacement) bool {
	if a.New.Version != "" || b.New.Version != "" {
		return a.New == b.New
	}
	return dirTarget(a) == dirTarget(b)
}

func dirTarget(r Replacement) string {
	d := filepath.FromSlash(r.New.Path)
	if !filepath.IsAbs(d) {
		d = filepath.Join(filepath.Dir(r.File), d)
	}
	return filepath.Clean(d)
}

func versionString(m module.Version) string {
	if m.Version == "" {
		return m.Path
	}
	return m.Path + "@" + m.Version
}

// require adds what the requirement m of file references.
func (s *Set) require(u *unit, file string, line int, m module.Version) {
	if u.workMods[m.Path] {
		s.skipped = append(s.skipped, Skip{Version: m, Reason: "workspace module", File: file})
		return
	}
	if u.excluded[m] {
		s.skipped = append(s.skipped, Skip{Version: m, Reason: "excluded", File: file})
		return
	}
	reps, ok := u.table[m]
	if !ok {
		reps = u.table[module.Version{Path: m.Path}]
	}
	if len(reps) == 0 {
		s.add(file, line, m, Zip)
		return
	}
	dirs := map[string]bool{}
	for _, i := range reps {
		rep := &s.reps[i]
		rep.Used = true
		if rep.New.Version != "" {
			s.add(rep.File, rep.Line, rep.New, Zip)
		} else if d := dirTarget(*rep); !dirs[d] {
			dirs[d] = true
			s.skipped = append(s.skipped, Skip{Version: m, Reason: "replaced by directory " + rep.New.Path, File: file})
		}
	}
}
