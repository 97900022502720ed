package clean

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
)

// Category groups what a plan removes; totals are reported per category.
type Category string

// The categories, in report order.
const (
	CategoryModules    Category = "modules"    // module versions
	CategoryToolchains Category = "toolchains" // golang.org/toolchain versions
	CategoryVCS        Category = "vcs"        // cache/vcs clones
	CategorySumDB      Category = "sumdb"      // checksum database cache, one item per database
	CategoryOther      Category = "other"      // anything else (--all only)
)

// Categories returns every category in report order.
func Categories() []Category {
	return []Category{CategoryModules, CategoryToolchains, CategoryVCS, CategorySumDB, CategoryOther}
}

// Action is what happens to an item.
type Action string

// The actions.
const (
	// ActionRemove removes every file of the item (lock files excepted).
	ActionRemove Action = "remove"
	// ActionTrim removes a version's extracted tree, .ziphash and .zip, and
	// keeps its .mod and .info (only its go.mod is referenced).
	ActionTrim Action = "trim"
	// ActionCompact removes a version's extracted tree only.
	ActionCompact Action = "compact"
)

// Status is where an item stands.
type Status string

// The statuses.
const (
	StatusPlanned Status = "planned" // not applied (dry run, or the run was canceled)
	StatusRemoved Status = "removed"
	StatusTrashed Status = "trashed" // moved to the trash
	StatusSkipped Status = "skipped" // locked by another process, or already gone
	StatusFailed  Status = "failed"
)

// Item is one thing a plan removes: a module or toolchain version, a VCS
// clone, a checksum database's cache, or (--all) another path.
type Item struct {
	Category Category `json:"category"`
	Action   Action   `json:"action"`
	// Target names the item: "path@version", a VCS remote, a checksum
	// database name, or a path relative to the module cache.
	Target  string `json:"target"`
	Module  string `json:"module,omitempty"`
	Version string `json:"version,omitempty"`
	// Reason says why the item was selected.
	Reason string `json:"reason"`
	// Bytes is the size of what goes: measured by Plan, measured again by
	// Apply under the lock.
	Bytes   int64     `json:"bytes"`
	ModTime time.Time `json:"mod_time,omitzero"` // newest file: the download time
	Status  Status    `json:"status"`
	Error   string    `json:"error,omitempty"`

	ver   *version
	clone *vcsClone
	path  string // sumdb or other
}

// Plan is what Apply will remove.
type Plan struct {
	ModCache string  `json:"modcache"`
	Items    []*Item `json:"items"`
	// Kept counts the module and toolchain versions not selected.
	Kept int `json:"kept_versions"`
	// ReferenceFiles counts the go.sum, go.mod, ... files read for
	// Options.KeepReferenced.
	ReferenceFiles int      `json:"reference_files,omitempty"`
	Warnings       []string `json:"warnings,omitempty"`

	all bool // planned with Options.All
}

// Total sums a category's items.
type Total struct {
	Category Category `json:"category"`
	Items    int      `json:"items"`
	Bytes    int64    `json:"bytes"`
}

// Totals sums the items that are planned or done (not skipped or failed) per
// category, every category included, in report order.
func (p *Plan) Totals() []Total {
	var out []Total
	for _, c := range Categories() {
		t := Total{Category: c}
		for _, it := range p.Items {
			if it.Category == c && it.Status != StatusSkipped && it.Status != StatusFailed {
				t.Items++
				t.Bytes += it.Bytes
			}
		}
		out = append(out, t)
	}
	return out
}

// Bytes sums the items that are planned or done.
func (p *Plan) Bytes() int64 {
	var n int64
	for _, t := range p.Totals() {
		n += t.Bytes
	}
	return n
}

// Plan selects what to remove according to o (see Options), reading the
// reference files under o.KeepReferenced, and measures each selected item.
// It changes nothing. An invalid o yields an *OptionError.
func (inv *Inventory) Plan(ctx context.Context, o Options) (*Plan, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	pats, _ := parsePatterns(o.Modules)
	p := &Plan{ModCache: inv.ModCache, all: o.All}
	var refs *References
	if len(o.KeepReferenced) > 0 {
		var err error
		if refs, err = ReadReferences(ctx, o.KeepReferenced, append([]string{inv.ModCache}, o.Skip...)); err != nil {
			return nil, err
		}
		p.ReferenceFiles = len(refs.Files)
		p.Warnings = append(p.Warnings, refs.Warnings...)
	}
	s := selector{o: o, pats: pats, refs: refs, now: o.now()}
	for _, v := range inv.versions {
		if it := s.version(v); it != nil {
			p.Items = append(p.Items, it)
		} else {
			p.Kept++
		}
	}
	// VCS clones and checksum databases are measured before they are
	// selected: their age is the newest file inside.
	var later []*Item
	if o.All || o.VCS {
		for _, c := range inv.vcs {
			if matchRepo(pats, c.remote) {
				later = append(later, &Item{Category: CategoryVCS, Action: ActionRemove, Target: c.remote, clone: c})
			}
		}
	}
	if o.All || o.SumDB {
		for _, dir := range inv.sumdbs {
			later = append(later, &Item{Category: CategorySumDB, Action: ActionRemove, Target: filepath.Base(dir), path: dir})
		}
	}
	if o.All {
		for _, path := range inv.other {
			rel, _ := filepath.Rel(inv.ModCache, path)
			p.Items = append(p.Items, &Item{Category: CategoryOther, Action: ActionRemove, Target: filepath.ToSlash(rel), Reason: "--all", path: path})
		}
	}
	all := append(slices.Clone(p.Items), later...)
	if err := measureItems(ctx, all, o.Progress); err != nil {
		return nil, err
	}
	for _, it := range later {
		if o.All {
			it.Reason = "--all"
		} else if !s.old(it.ModTime) {
			continue
		} else if it.Category == CategoryVCS {
			it.Reason = s.ageReason(it.ModTime, "--vcs", true)
		} else {
			it.Reason = s.ageReason(it.ModTime, "--sumdb", false)
		}
		p.Items = append(p.Items, it)
	}
	slices.SortStableFunc(p.Items, func(a, b *Item) int {
		return slices.Index(Categories(), a.Category) - slices.Index(Categories(), b.Category)
	})
	for _, it := range p.Items {
		it.Status = StatusPlanned
	}
	return p, nil
}

type selector struct {
	o    Options
	pats []pattern
	refs *References
	now  time.Time
}

func (s *selector) old(t time.Time) bool {
	return s.o.OlderThan == 0 || !t.After(s.now.Add(-s.o.OlderThan))
}

func (s *selector) ageReason(t time.Time, rest string, patterns bool) string {
	var parts []string
	if patterns && len(s.pats) > 0 {
		parts = append(parts, "matches --module")
	}
	if s.o.OlderThan > 0 {
		if t.IsZero() {
			parts = append(parts, "no download time")
		} else {
			parts = append(parts, "downloaded "+FormatAge(s.now.Sub(t))+" ago")
		}
	}
	if rest != "" {
		parts = append(parts, rest)
	}
	return strings.Join(parts, "; ")
}

// version decides about one module or toolchain version; nil keeps it.
func (s *selector) version(v *version) *Item {
	it := &Item{
		Category: CategoryModules, Target: v.mod.Path + "@" + v.mod.Version,
		Module: v.mod.Path, Version: v.mod.Version, ModTime: v.modTime, ver: v,
	}
	if v.toolchain() {
		it.Category = CategoryToolchains
	}
	o := s.o
	if o.All {
		it.Action, it.Reason = ActionRemove, "--all"
		return it
	}
	if v.toolchain() {
		if !o.Toolchains {
			return nil
		}
	} else if len(o.KeepReferenced) == 0 && o.OlderThan == 0 && len(o.Modules) == 0 && !o.Compact {
		return nil
	}
	if !matchModule(s.pats, v.mod) || !s.old(v.modTime) {
		return nil
	}
	need, why := NeedNone, ""
	if v.toolchain() {
		gv := toolchainGoVersion(v.mod.Version)
		if slices.Contains(o.KeepToolchains, gv) || s.refs.Toolchain(gv) {
			return nil
		}
		if s.refs != nil {
			why = "no go or toolchain line names it"
		}
	} else if s.refs != nil {
		need = s.refs.Need(v.mod)
		why = "not referenced"
	}
	code := v.hasTree || v.kinds[kindZip] || v.kinds[kindZiphash] || v.kinds[kindPartial]
	switch {
	case o.Compact:
		if need == NeedZip || !v.hasTree {
			return nil
		}
		it.Action = ActionCompact
		if need == NeedGoMod {
			why = "only its go.mod is referenced"
		}
		why = strings.TrimPrefix(why+"; compact", "; ")
	case need == NeedZip:
		return nil
	case need == NeedGoMod:
		if !code {
			return nil
		}
		it.Action, why = ActionTrim, "only its go.mod is referenced"
	default:
		it.Action = ActionRemove
	}
	if why == "" && v.toolchain() {
		why = "--toolchains"
	}
	it.Reason = s.ageReason(v.modTime, why, true)
	return it
}

// toolchainGoVersion returns "go1.22.3" for "v0.0.1-go1.22.3.linux-amd64".
func toolchainGoVersion(v string) string {
	_, rest, ok := strings.Cut(v, "-")
	if !ok {
		return ""
	}
	if i := strings.LastIndex(rest, "."); i >= 0 {
		rest = rest[:i]
	}
	return rest
}

// FormatAge formats d in whole days (or hours below two days).
func FormatAge(d time.Duration) string {
	if d < 48*time.Hour {
		return fmt.Sprintf("%dh", int(d/time.Hour))
	}
	return fmt.Sprintf("%dd", int(d/(24*time.Hour)))
}

// paths returns the existing paths an item's action removes, in removal
// order. For versions: the extracted tree, .partial, .ziphash, .zip, .mod,
// .info, as the action requires.
func (it *Item) paths() []string {
	switch {
	case it.ver != nil:
		v := it.ver
		var out []string
		if _, err := os.Lstat(v.tree); err == nil {
			out = append(out, v.tree)
		}
		out = append(out, treeLeftovers(v.tree)...)
		kinds := []string{kindPartial}
		switch it.Action {
		case ActionTrim:
			kinds = append(kinds, kindZiphash, kindZip)
		case ActionRemove:
			kinds = append(kinds, kindZiphash, kindZip, kindMod, kindInfo)
		}
		for _, k := range kinds {
			if _, err := os.Lstat(v.file(k)); err == nil {
				out = append(out, v.file(k))
			}
		}
		return out
	case it.clone != nil:
		var out []string
		for _, p := range []string{it.clone.dir + ".info", it.clone.dir} {
			if _, err := os.Lstat(p); err == nil {
				out = append(out, p)
			}
		}
		return out
	default:
		if _, err := os.Lstat(it.path); err == nil {
			return []string{it.path}
		}
		return nil
	}
}

// treeLeftovers returns the "TREE.tmp-*" directories that interrupted
// extractions (or removals) left beside tree. The go command deletes them
// under the version's lock before it extracts again; so does Apply.
func treeLeftovers(tree string) []string {
	ents, err := os.ReadDir(filepath.Dir(tree))
	if err != nil {
		return nil
	}
	prefix := filepath.Base(tree) + ".tmp-"
	var out []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), prefix) {
			out = append(out, filepath.Join(filepath.Dir(tree), e.Name()))
		}
	}
	return out
}

// measureItems sets Bytes (and, for items without one, ModTime) of each
// item, several at a time.
func measureItems(ctx context.Context, items []*Item, progress func(done, total int)) error {
	var mu sync.Mutex
	done := 0
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for _, it := range items {
		g.Go(func() error {
			if err := gctx.Err(); err != nil {
				return err
			}
			var total int64
			var newest time.Time
			for _, p := range it.paths() {
				n, t := du(p)
				total += n
				if t.After(newest) {
					newest = t
				}
			}
			it.Bytes = total
			if it.ver == nil {
				it.ModTime = newest
			}
			mu.Lock()
			defer mu.Unlock()
			done++
			if progress != nil {
				progress(done, len(items))
			}
			return nil
		})
	}
	return g.Wait()
}

// du returns the total size of the regular files at or below p and the
// newest modification time seen. Errors are skipped: the size is advisory.
func du(p string) (int64, time.Time) {
	var n int64
	var newest time.Time
	_ = filepath.WalkDir(p, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		if info.ModTime().After(newest) {
			newest = info.ModTime()
		}
		if info.Mode().IsRegular() {
			n += info.Size()
		}
		return nil
	})
	return n, newest
}
