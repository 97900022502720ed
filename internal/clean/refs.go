package clean

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/mod/module"

	"github.com/modproxy/modproxy/internal/modrefs"
)

// Need is how much of a module version a project needs from the cache:
// NeedNone, NeedGoMod (its .mod and .info are kept) or NeedZip (every file
// is kept). See package modrefs for the rules.
type Need = modrefs.Need

// The needs, as modrefs decides them.
const (
	NeedNone  = modrefs.None
	NeedGoMod = modrefs.GoMod
	NeedZip   = modrefs.Zip
)

// References is what the go.sum, go.work.sum, go.mod and go.work files
// under some project roots need from the module cache.
type References struct {
	refs *modrefs.Set

	// Files are the files read, in the order read.
	Files []string
	// Warnings name files that could not be parsed and were skipped.
	Warnings []string
}

// Need reports what m needs.
func (r *References) Need(m module.Version) Need {
	if r == nil {
		return NeedNone
	}
	return r.refs.Need(m)
}

// Toolchain reports whether a go or toolchain line names goVersion
// ("go1.22.3"). A language version without a patch ("go 1.22") names every
// go1.22.x and go1.22 itself.
func (r *References) Toolchain(goVersion string) bool {
	if r == nil {
		return false
	}
	for _, g := range r.refs.GoVersions() {
		if g == goVersion || (strings.Count(g, ".") == 1 && strings.HasPrefix(goVersion, g+".")) {
			return true
		}
	}
	return false
}

// ReadReferences reads every go.sum, go.work.sum, go.mod and go.work under
// the roots with package modrefs, whose rules decide what each module
// version needs (a go.sum "M V/go.mod h1:" line needs only the go.mod; a
// require or a go.sum "M V h1:" line the zip; a replaced version nothing,
// its replacement what the requirement needs). Directories the go command
// ignores (names starting with "." or "_", testdata, vendor) and those in
// skip, such as the module cache itself, are not entered; symbolic links are
// not followed. A go.work's use directories outside the roots are read too
// (their go.mod and go.sum). The go and toolchain lines of go.mod and
// go.work name toolchains.
//
// An unreadable file or directory is an error (guessing could remove what a
// project needs). A file that does not parse is skipped with a warning
// (lines that do not parse in a file that does are ignored). A root with
// none of these files is an *OptionError: it is almost certainly the wrong
// directory.
func ReadReferences(ctx context.Context, roots, skip []string) (*References, error) {
	roots, err := cleanRoots(roots)
	if err != nil {
		return nil, err
	}
	set := modrefs.New(modrefs.Options{Skip: skip})
	if err := set.AddPaths(ctx, roots...); err != nil {
		return nil, fmt.Errorf("reading project files: %w", err)
	}
	r := &References{refs: set, Files: set.Files()}
	for _, root := range roots {
		if !slices.ContainsFunc(r.Files, func(f string) bool { return within(f, []string{root}) }) {
			return nil, &OptionError{"--keep-referenced", fmt.Sprintf("no go.mod, go.sum, go.work or go.work.sum under %s", root)}
		}
	}
	for _, p := range set.Problems() {
		if p.Skipped {
			r.Warnings = append(r.Warnings, "skipped "+p.Error())
		}
	}
	return r, nil
}

// within reports whether p is one of roots or lies below one.
func within(p string, roots []string) bool {
	for _, r := range roots {
		if rel, err := filepath.Rel(r, p); err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			return true
		}
	}
	return false
}

// Referenced returns every referenced module version with what it needs.
func (r *References) Referenced() map[module.Version]Need {
	out := map[module.Version]Need{}
	for _, ref := range r.refs.Refs() {
		out[ref.Version] = ref.Need
	}
	return out
}

// GoVersions returns the go versions named by go and toolchain lines, sorted.
func (r *References) GoVersions() []string { return r.refs.GoVersions() }
