package prefetch

import (
	"bufio"
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/mod/modfile"
	"golang.org/x/mod/module"
	"golang.org/x/mod/semver"

	"github.com/modproxy/modproxy/internal/artifact"
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
// What is needed, as the go command needs it:
//   - go.sum and go.work.sum: "M V h1:..." needs .info, .mod and .zip;
//     "M V/go.mod h1:..." needs only the .mod.
//   - go.mod: every require line needs .info, .mod and .zip, after the
//     file's replace directives: a module replaced by another module
//     version is fetched as that version; one replaced by a directory is
//     skipped.
//   - go.work: the go.mod (and go.sum) of every used module, with the
//     workspace's replace directives winning over the modules' own, and
//     requirements on workspace modules skipped (they are not downloaded);
//     the go.work.sum beside it.
//   - lists: "M@V" per line; blank lines and "#" comments are ignored.
//
// Versions must be canonical (as go.sum and go.mod hold them); queries such
// as "latest" or a branch name are rejected. A Set is not safe for
// concurrent use.
type Set struct {
	needs   map[module.Version]Need
	skipped []Skipped
	sources []string
	read    map[string]bool // absolute paths of files already read
}

// NewSet returns an empty Set.
func NewSet() *Set {
	return &Set{needs: map[module.Version]Need{}, read: map[string]bool{}}
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
	s.needs[mv] |= need
	return nil
}

// Len returns the number of module versions in the set.
func (s *Set) Len() int { return len(s.needs) }

// Modules returns the module versions, sorted by path then semantic
// version.
func (s *Set) Modules() []Module {
	mods := make([]Module, 0, len(s.needs))
	for mv, n := range s.needs {
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

// Skipped returns the requirements that are deliberately not fetched, in
// the order found.
func (s *Set) Skipped() []Skipped { return s.skipped }

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
	var drop []module.Version
	for mv := range s.needs {
		if module.MatchPrefixPatterns(patterns, mv.Path) {
			drop = append(drop, mv)
		}
	}
	sort.Slice(drop, func(i, j int) bool {
		if drop[i].Path != drop[j].Path {
			return drop[i].Path < drop[j].Path
		}
		return semver.Compare(drop[i].Version, drop[j].Version) < 0
	})
	for _, mv := range drop {
		delete(s.needs, mv)
		s.skipped = append(s.skipped, Skipped{Path: mv.Path, Version: mv.Version, Reason: reason})
	}
	return len(drop)
}

// fileKind tells how a file is read, from its name.
type fileKind int

const (
	notModFile fileKind = iota
	goModFile
	goSumFile  // go.sum, go.work.sum
	goWorkFile // go.work
)

func kindOf(name string) fileKind {
	base := filepath.Base(name)
	switch {
	case base == "go.work":
		return goWorkFile
	case base == "go.sum" || base == "go.work.sum" || strings.HasSuffix(base, ".sum"):
		return goSumFile
	case base == "go.mod" || strings.HasSuffix(base, ".mod"):
		return goModFile
	}
	return notModFile
}

// AddPaths reads files and directories. A file is read by its name: go.work
// as a workspace, go.sum, go.work.sum and other *.sum files as go.sum, go.mod
// and other *.mod files as go.mod; any other file is an error (lists are
// read with AddList). A directory is walked for those files, skipping
// directories the go command ignores (names starting with "." or "_",
// testdata) and vendor directories. Symbolic links to directories are not
// followed.
//
// All go.work files found are read first, so that their used modules get
// the workspace's replacements; a file is read at most once however it is
// reached.
func (s *Set) AddPaths(paths ...string) error {
	var files []string
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return &InputError{Name: p, Err: err}
		}
		if !st.IsDir() {
			if kindOf(p) == notModFile {
				return &InputError{Name: p, Err: fmt.Errorf("not a go.mod, go.sum or go.work file (a module@version list is read with --list)")}
			}
			files = append(files, p)
			continue
		}
		err = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				name := d.Name()
				if path != p && (strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") || name == "testdata" || name == "vendor") {
					return filepath.SkipDir
				}
				return nil
			}
			if d.Type().IsRegular() && isWalkedName(d.Name()) {
				files = append(files, path)
			}
			return nil
		})
		if err != nil {
			return &InputError{Name: p, Err: err}
		}
	}
	for _, phase := range []fileKind{goWorkFile, goModFile, goSumFile} {
		for _, f := range files {
			if kindOf(f) != phase {
				continue
			}
			var err error
			switch phase {
			case goWorkFile:
				err = s.readGoWork(f)
			case goModFile:
				err = s.readGoMod(f, nil, nil)
			case goSumFile:
				err = s.readGoSum(f)
			}
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// isWalkedName reports whether a directory walk reads a file of this name:
// only the go command's own names, not every *.mod or *.sum.
func isWalkedName(name string) bool {
	switch name {
	case "go.mod", "go.sum", "go.work", "go.work.sum":
		return true
	}
	return false
}

// readFile reads name once; it returns nil data for a file already read.
func (s *Set) readFile(name string) ([]byte, error) {
	abs, err := filepath.Abs(name)
	if err != nil {
		return nil, &InputError{Name: name, Err: err}
	}
	if s.read[abs] {
		return nil, nil
	}
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, &InputError{Name: name, Err: err}
	}
	s.read[abs] = true
	s.sources = append(s.sources, name)
	return data, nil
}

func (s *Set) readGoSum(name string) error {
	data, err := s.readFile(name)
	if data == nil {
		return err
	}
	return s.AddGoSum(name, data)
}

// replacements maps a replaced module (Version "" for every version) to its
// replacement.
type replacements map[module.Version]module.Version

func (r replacements) add(reps []*modfile.Replace) {
	for _, rep := range reps {
		r[rep.Old] = rep.New
	}
}

func (r replacements) lookup(mv module.Version) (module.Version, bool) {
	if n, ok := r[mv]; ok {
		return n, true
	}
	n, ok := r[module.Version{Path: mv.Path}]
	return n, ok
}

// readGoMod reads a go.mod file. workReps are the replacements of the
// workspace it belongs to (nil outside one), which win over the file's own;
// workMods are the paths of the workspace's modules, never fetched.
func (s *Set) readGoMod(name string, workReps replacements, workMods map[string]bool) error {
	data, err := s.readFile(name)
	if data == nil {
		return err
	}
	return s.addGoMod(name, data, workReps, workMods)
}

// AddGoMod adds the requirements of a go.mod file's content, after its
// replace directives.
func (s *Set) AddGoMod(name string, data []byte) error {
	return s.addGoMod(name, data, nil, nil)
}

func (s *Set) addGoMod(name string, data []byte, workReps replacements, workMods map[string]bool) error {
	f, err := modfile.Parse(name, data, nil)
	if err != nil {
		return &InputError{Name: name, Err: err}
	}
	reps := replacements{}
	reps.add(f.Replace)
	// A workspace replacement of a path hides every replacement of that
	// path in the module, whatever its version.
	for old := range reps {
		for k := range workReps {
			if old.Path == k.Path {
				delete(reps, old)
			}
		}
	}
	for k, v := range workReps {
		reps[k] = v
	}
	for _, r := range f.Require {
		mv := r.Mod
		if workMods[mv.Path] {
			s.skipped = append(s.skipped, Skipped{Path: mv.Path, Version: mv.Version, Reason: "workspace module", Source: name})
			continue
		}
		if n, ok := reps.lookup(mv); ok {
			if n.Version == "" {
				s.skipped = append(s.skipped, Skipped{Path: mv.Path, Version: mv.Version, Reason: "replaced by directory " + n.Path, Source: name})
				continue
			}
			mv = n
		}
		line := 0
		if r.Syntax != nil {
			line = r.Syntax.Start.Line
		}
		if err := s.Add(name, mv.Path, mv.Version, NeedAll); err != nil {
			if ie, ok := err.(*InputError); ok {
				ie.Line = line
			}
			return err
		}
	}
	return nil
}

// readGoWork reads a go.work file, the go.mod and go.sum of every module it
// uses, and the go.work.sum beside it.
func (s *Set) readGoWork(name string) error {
	data, err := s.readFile(name)
	if data == nil {
		return err
	}
	wf, err := modfile.ParseWork(name, data, nil)
	if err != nil {
		return &InputError{Name: name, Err: err}
	}
	dir := filepath.Dir(name)
	reps := replacements{}
	reps.add(wf.Replace)
	// The workspace's modules: their paths come from their go.mod files.
	workMods := map[string]bool{}
	var modFiles []string
	for _, u := range wf.Use {
		d := filepath.FromSlash(u.Path)
		if !filepath.IsAbs(d) {
			d = filepath.Join(dir, d)
		}
		gomod := filepath.Join(d, "go.mod")
		mdata, err := os.ReadFile(gomod)
		if err != nil {
			return &InputError{Name: name, Line: u.Syntax.Start.Line, Err: fmt.Errorf("use %s: %w", u.Path, err)}
		}
		if p := modfile.ModulePath(mdata); p != "" {
			workMods[p] = true
		}
		modFiles = append(modFiles, gomod)
	}
	for _, gomod := range modFiles {
		if err := s.readGoMod(gomod, reps, workMods); err != nil {
			return err
		}
		sum := filepath.Join(filepath.Dir(gomod), "go.sum")
		if _, err := os.Stat(sum); err == nil {
			if err := s.readGoSum(sum); err != nil {
				return err
			}
		}
	}
	// Replacements in go.work of modules no used module requires are
	// still what the workspace builds with when the graph reaches them;
	// their go.sum lines are in go.work.sum, read next.
	wsum := filepath.Join(dir, "go.work.sum")
	if _, err := os.Stat(wsum); err == nil {
		return s.readGoSum(wsum)
	}
	return nil
}

// AddGoSum adds the module versions of a go.sum (or go.work.sum) file's
// content: "M V h1:..." needs .info, .mod and .zip, "M V/go.mod h1:..."
// only the .mod.
func (s *Set) AddGoSum(name string, data []byte) error {
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	for n := 1; sc.Scan(); n++ {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		if len(f) != 3 {
			return &InputError{Name: name, Line: n, Err: fmt.Errorf("malformed go.sum line (want MODULE VERSION HASH)")}
		}
		path, vers, need := f[0], f[1], NeedAll
		if v, ok := strings.CutSuffix(vers, "/go.mod"); ok {
			vers, need = v, NeedMod
		}
		if err := s.Add(name, path, vers, need); err != nil {
			err.(*InputError).Line = n
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return &InputError{Name: name, Err: err}
	}
	return nil
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
