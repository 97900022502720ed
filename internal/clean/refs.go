package clean

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/mod/modfile"
	"golang.org/x/mod/module"
	"golang.org/x/mod/semver"
)

// Need is how much of a module version a project needs from the cache.
type Need int

const (
	// NeedNone: the version is not referenced.
	NeedNone Need = iota
	// NeedGoMod: only its go.mod is needed (a go.sum "M V/go.mod h1:" line,
	// or a go.mod requirement beside a go.sum): .mod and .info are kept.
	NeedGoMod
	// NeedZip: its code is needed (a go.sum "M V h1:" line, or a go.mod
	// requirement with no go.sum beside it): every file is kept.
	NeedZip
)

func (n Need) String() string {
	switch n {
	case NeedGoMod:
		return "go.mod"
	case NeedZip:
		return "zip"
	}
	return "none"
}

// References is what the go.sum, go.work.sum, go.mod and go.work files
// under some project roots need from the module cache.
type References struct {
	need       map[module.Version]Need
	goVersions map[string]bool // "go1.22.3", "go1.22" from go and toolchain lines

	// Files are the files read, in the order read.
	Files []string
	// Warnings name files that could not be parsed and were skipped.
	Warnings []string
}

// Need reports what m needs; the most any file asks for wins.
func (r *References) Need(m module.Version) Need {
	if r == nil {
		return NeedNone
	}
	return r.need[m]
}

// Toolchain reports whether a go or toolchain line names goVersion
// ("go1.22.3"). A language version without a patch ("go 1.22") names every
// go1.22.x and go1.22 itself.
func (r *References) Toolchain(goVersion string) bool {
	if r == nil {
		return false
	}
	for g := range r.goVersions {
		if g == goVersion || (strings.Count(g, ".") == 1 && strings.HasPrefix(goVersion, g+".")) {
			return true
		}
	}
	return false
}

// ReadReferences walks every root and reads each go.sum, go.work.sum,
// go.mod and go.work found (VCS metadata directories and the directories in
// skip, such as the module cache itself, are not entered; symbolic links are
// not followed). A go.work's use directories outside the roots are read too
// (their go.mod and go.sum only).
//
// Rules: a go.sum or go.work.sum line "M V h1:" needs the zip, "M V/go.mod
// h1:" only the go.mod. A go.mod require or replace with a version needs the
// go.mod when a go.sum lies beside it (the go.sum says which zips are
// needed), else the zip. A go.work's replace likewise with go.work.sum. The
// go and toolchain lines of go.mod and go.work name toolchains.
//
// An unreadable file or directory is an error (guessing could remove what a
// project needs). A file that does not parse is skipped with a warning. A
// root with none of these files is an *OptionError: it is almost certainly
// the wrong directory.
func ReadReferences(ctx context.Context, roots, skip []string) (*References, error) {
	roots, err := cleanRoots(roots)
	if err != nil {
		return nil, err
	}
	skipSet := map[string]bool{}
	for _, s := range skip {
		if abs, err := filepath.Abs(s); err == nil {
			skipSet[abs] = true
		}
	}
	r := &References{need: map[module.Version]Need{}, goVersions: map[string]bool{}}
	var extra []string // go.work use directories
	for _, root := range roots {
		before := len(r.Files)
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return fmt.Errorf("reading project files: %w", err)
			}
			if cerr := ctx.Err(); cerr != nil {
				return cerr
			}
			if d.IsDir() {
				switch d.Name() {
				case ".git", ".hg", ".svn", ".bzr", ".jj":
					if p != root {
						return filepath.SkipDir
					}
				}
				if skipSet[p] {
					return filepath.SkipDir
				}
				return nil
			}
			if !d.Type().IsRegular() {
				return nil
			}
			uses, err := r.readFile(p)
			extra = append(extra, uses...)
			return err
		})
		if err != nil {
			return nil, err
		}
		if len(r.Files) == before {
			return nil, &OptionError{"--keep-referenced", fmt.Sprintf("no go.mod, go.sum, go.work or go.work.sum under %s", root)}
		}
	}
	seen := map[string]bool{}
	for _, f := range r.Files {
		seen[f] = true
	}
	for _, dir := range extra {
		for _, name := range []string{"go.mod", "go.sum"} {
			p := filepath.Join(dir, name)
			if seen[p] || within(p, roots) {
				continue
			}
			seen[p] = true
			if _, err := os.Stat(p); errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if _, err := r.readFile(p); err != nil {
				return nil, err
			}
		}
	}
	return r, nil
}

func within(p string, roots []string) bool {
	for _, r := range roots {
		if rel, err := filepath.Rel(r, p); err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			return true
		}
	}
	return false
}

// readFile reads p if it is one of the reference files, and returns the
// use directories of a go.work.
func (r *References) readFile(p string) (uses []string, err error) {
	name := filepath.Base(p)
	switch name {
	case "go.sum", "go.work.sum", "go.mod", "go.work":
	default:
		return nil, nil
	}
	data, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("reading project files: %w", err)
	}
	r.Files = append(r.Files, p)
	dir := filepath.Dir(p)
	switch name {
	case "go.sum", "go.work.sum":
		r.readSum(data)
	case "go.mod":
		f, err := modfile.Parse(p, data, nil)
		if err != nil {
			if f, err = modfile.ParseLax(p, data, nil); err != nil {
				r.Warnings = append(r.Warnings, fmt.Sprintf("skipped %s: %v", p, err))
				return nil, nil
			}
		}
		need := r.reqNeed(filepath.Join(dir, "go.sum"))
		for _, req := range f.Require {
			r.add(req.Mod, need)
		}
		for _, rep := range f.Replace {
			if rep.New.Version != "" {
				r.add(rep.New, need)
			}
		}
		if f.Go != nil {
			r.goVersions["go"+f.Go.Version] = true
		}
		if f.Toolchain != nil {
			r.goVersions[f.Toolchain.Name] = true
		}
	case "go.work":
		f, err := modfile.ParseWork(p, data, nil)
		if err != nil {
			r.Warnings = append(r.Warnings, fmt.Sprintf("skipped %s: %v", p, err))
			return nil, nil
		}
		need := r.reqNeed(filepath.Join(dir, "go.work.sum"))
		for _, rep := range f.Replace {
			if rep.New.Version != "" {
				r.add(rep.New, need)
			}
		}
		if f.Go != nil {
			r.goVersions["go"+f.Go.Version] = true
		}
		if f.Toolchain != nil {
			r.goVersions[f.Toolchain.Name] = true
		}
		for _, u := range f.Use {
			d := filepath.FromSlash(u.Path)
			if !filepath.IsAbs(d) {
				d = filepath.Join(dir, d)
			}
			uses = append(uses, filepath.Clean(d))
		}
	}
	return uses, nil
}

func (r *References) reqNeed(sumFile string) Need {
	if _, err := os.Stat(sumFile); err == nil {
		return NeedGoMod
	}
	return NeedZip
}

func (r *References) add(m module.Version, n Need) {
	if m.Path == "" || !semver.IsValid(m.Version) {
		return
	}
	if n > r.need[m] {
		r.need[m] = n
	}
}

// readSum reads go.sum lines "PATH VERSION[/go.mod] HASH"; others are ignored
// as the go command ignores them.
func (r *References) readSum(data []byte) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 3 {
			continue
		}
		ver, need := f[1], NeedZip
		if v, ok := strings.CutSuffix(ver, "/go.mod"); ok {
			ver, need = v, NeedGoMod
		}
		r.add(module.Version{Path: f[0], Version: ver}, need)
	}
}

// Referenced returns every referenced module version with what it needs.
func (r *References) Referenced() map[module.Version]Need {
	out := make(map[module.Version]Need, len(r.need))
	for m, n := range r.need {
		out[m] = n
	}
	return out
}

// GoVersions returns the go versions named by go and toolchain lines, sorted.
func (r *References) GoVersions() []string {
	var out []string
	for g := range r.goVersions {
		out = append(out, g)
	}
	sort.Strings(out)
	return out
}
