package clean

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"golang.org/x/mod/module"
	"golang.org/x/mod/semver"
)

// ToolchainModule is the module whose versions are Go toolchains.
const ToolchainModule = "golang.org/toolchain"

// Inventory is what Scan found in a module cache. It is read-only after
// Scan returns; Plan may be called on it several times.
type Inventory struct {
	ModCache string

	versions []*version // module and toolchain versions, by path then semver
	vcs      []*vcsClone
	sumdbs   []string // cache/download/sumdb/NAME directories
	other    []string // paths that belong to nothing else (only --all removes them)
}

// Versions returns every module and toolchain version found, in path and
// semver order.
func (inv *Inventory) Versions() []module.Version {
	out := make([]module.Version, len(inv.versions))
	for i, v := range inv.versions {
		out[i] = v.mod
	}
	return out
}

// The file kinds of a version in cache/download/ESC/@v, in the order Apply
// removes them (after the extracted tree).
const (
	kindPartial = "partial"
	kindZiphash = "ziphash"
	kindZip     = "zip"
	kindMod     = "mod"
	kindInfo    = "info"
	kindLock    = "lock"
)

var versionKinds = []string{kindZiphash, kindZip, kindInfo, kindMod, kindPartial, kindLock}

// version is one module version's files.
type version struct {
	mod     module.Version
	dlDir   string // MODCACHE/cache/download/ESC/@v
	escVer  string
	tree    string // MODCACHE/ESC@EV, whether or not it exists
	kinds   map[string]bool
	hasTree bool
	modTime time.Time // newest of .info, .mod, .zip, .ziphash and the tree directory
}

func (v *version) file(kind string) string { return filepath.Join(v.dlDir, v.escVer+"."+kind) }
func (v *version) toolchain() bool         { return v.mod.Path == ToolchainModule }

// leftover reports whether p is a "TREE.tmp-*" directory beside v's tree.
func (v *version) leftover(p string) bool {
	return filepath.Dir(p) == filepath.Dir(v.tree) && strings.HasPrefix(filepath.Base(p), filepath.Base(v.tree)+".tmp-")
}

// vcsClone is one cache/vcs/HASH clone.
type vcsClone struct {
	dir    string // MODCACHE/cache/vcs/HASH
	remote string // content of HASH.info, e.g. "git3:https://host/repo"
}

// Scan lists the module cache at modCache (an absolute path, normally
// `go env GOMODCACHE`). It reads directories and stats files only; it does
// not read or measure extracted trees. A cache that does not exist is empty.
func Scan(ctx context.Context, modCache string) (*Inventory, error) {
	if !filepath.IsAbs(modCache) {
		return nil, fmt.Errorf("module cache %q: not an absolute path", modCache)
	}
	modCache = filepath.Clean(modCache)
	inv := &Inventory{ModCache: modCache}
	st, err := os.Stat(modCache)
	if errors.Is(err, fs.ErrNotExist) {
		return inv, nil
	}
	if err != nil {
		return nil, fmt.Errorf("module cache: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("module cache %s: not a directory", modCache)
	}
	s := &scanner{ctx: ctx, inv: inv, byMod: map[module.Version]*version{}}
	steps := []func() error{
		func() error { return s.download(filepath.Join(modCache, "cache", "download"), "") },
		func() error { return s.trees(modCache, "") },
		s.cacheDir,
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return nil, err
		}
	}
	for _, v := range s.byMod {
		inv.versions = append(inv.versions, v)
	}
	sort.Slice(inv.versions, func(i, j int) bool {
		a, b := inv.versions[i].mod, inv.versions[j].mod
		if a.Path != b.Path {
			return a.Path < b.Path
		}
		if c := semver.Compare(a.Version, b.Version); c != 0 {
			return c < 0
		}
		return a.Version < b.Version
	})
	sort.Strings(inv.other)
	return inv, nil
}

type scanner struct {
	ctx   context.Context
	inv   *Inventory
	byMod map[module.Version]*version
}

func (s *scanner) readDir(dir string) ([]fs.DirEntry, error) {
	if err := s.ctx.Err(); err != nil {
		return nil, err
	}
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("scanning module cache: %w", err)
	}
	return ents, nil
}

// get returns the version entry of m, creating it.
func (s *scanner) get(m module.Version, escPath, escVer string) *version {
	if v := s.byMod[m]; v != nil {
		return v
	}
	mc := s.inv.ModCache
	v := &version{
		mod:    m,
		dlDir:  filepath.Join(mc, "cache", "download", filepath.FromSlash(escPath), "@v"),
		escVer: escVer,
		tree:   filepath.Join(mc, filepath.FromSlash(escPath)+"@"+escVer),
		kinds:  map[string]bool{},
	}
	s.byMod[m] = v
	return v
}

// download walks cache/download; rel is the slash path below it.
func (s *scanner) download(dir, rel string) error {
	ents, err := s.readDir(dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		p := filepath.Join(dir, e.Name())
		switch {
		case rel == "" && e.Name() == "sumdb" && e.IsDir():
			dbs, err := s.readDir(p)
			if err != nil {
				return err
			}
			for _, db := range dbs {
				if db.IsDir() {
					s.inv.sumdbs = append(s.inv.sumdbs, filepath.Join(p, db.Name()))
				} else {
					s.inv.other = append(s.inv.other, filepath.Join(p, db.Name()))
				}
			}
		case e.Name() == "@v" && e.IsDir():
			if err := s.atV(p, rel); err != nil {
				return err
			}
		case e.IsDir():
			if err := s.download(p, path.Join(rel, e.Name())); err != nil {
				return err
			}
		default:
			s.inv.other = append(s.inv.other, p)
		}
	}
	return nil
}

// atV reads one cache/download/ESC/@v directory.
func (s *scanner) atV(dir, escPath string) error {
	ents, err := s.readDir(dir)
	if err != nil {
		return err
	}
	modPath, pathErr := module.UnescapePath(escPath)
	for _, e := range ents {
		name := e.Name()
		p := filepath.Join(dir, name)
		if name == "list" || name == "list.lock" {
			continue // rewritten, never removed
		}
		kind, escVer := "", ""
		for _, k := range versionKinds {
			if ev, ok := strings.CutSuffix(name, "."+k); ok {
				kind, escVer = k, ev
				break
			}
		}
		if kind == "lock" {
			continue // lock files are never removed
		}
		ver, verErr := module.UnescapeVersion(escVer)
		if pathErr != nil || kind == "" || verErr != nil || e.IsDir() || !canonical(ver) {
			s.inv.other = append(s.inv.other, p)
			continue
		}
		v := s.get(module.Version{Path: modPath, Version: ver}, escPath, escVer)
		v.kinds[kind] = true
		if kind != kindPartial {
			if info, err := e.Info(); err == nil && info.ModTime().After(v.modTime) {
				v.modTime = info.ModTime()
			}
		}
	}
	return nil
}

func canonical(v string) bool { return v != "" && semver.IsValid(v) && module.CanonicalVersion(v) == v }

// trees walks the extracted trees: MODCACHE/ESC@EV directories outside
// MODCACHE/cache. rel is the slash path below the cache.
func (s *scanner) trees(dir, rel string) error {
	ents, err := s.readDir(dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		name := e.Name()
		p := filepath.Join(dir, name)
		if rel == "" && name == "cache" {
			continue
		}
		if !e.IsDir() {
			s.inv.other = append(s.inv.other, p)
			continue
		}
		elem, escVer, ok := strings.Cut(name, "@")
		if !ok {
			if err := s.trees(p, path.Join(rel, name)); err != nil {
				return err
			}
			continue
		}
		escPath := path.Join(rel, elem)
		// ESC@EV.tmp-* directories are leftovers of interrupted extractions
		// (or removals); they go with their version.
		ev, leftover := escVer, false
		if v, err := module.UnescapeVersion(escVer); err != nil || !canonical(v) {
			ev, _, leftover = strings.Cut(escVer, ".tmp-")
		}
		modPath, err1 := module.UnescapePath(escPath)
		ver, err2 := module.UnescapeVersion(ev)
		if err1 != nil || err2 != nil || !canonical(ver) {
			s.inv.other = append(s.inv.other, p)
			continue
		}
		v := s.get(module.Version{Path: modPath, Version: ver}, escPath, ev)
		if leftover {
			continue
		}
		v.hasTree = true
		if info, err := e.Info(); err == nil && info.ModTime().After(v.modTime) {
			v.modTime = info.ModTime()
		}
	}
	return nil
}

// cacheDir reads MODCACHE/cache: vcs clones, and anything unexpected.
func (s *scanner) cacheDir() error {
	dir := filepath.Join(s.inv.ModCache, "cache")
	ents, err := s.readDir(dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		switch e.Name() {
		case "download", "lock":
		case "vcs":
			if err := s.vcsDir(filepath.Join(dir, "vcs")); err != nil {
				return err
			}
		default:
			s.inv.other = append(s.inv.other, filepath.Join(dir, e.Name()))
		}
	}
	return nil
}

func (s *scanner) vcsDir(dir string) error {
	ents, err := s.readDir(dir)
	if err != nil {
		return err
	}
	have := map[string]bool{}
	for _, e := range ents {
		have[e.Name()] = true
	}
	for _, e := range ents {
		name := e.Name()
		p := filepath.Join(dir, name)
		switch {
		case isHash(name) && e.IsDir():
			remote := name
			if b, err := os.ReadFile(p + ".info"); err == nil {
				remote = strings.TrimSpace(string(b))
			}
			s.inv.vcs = append(s.inv.vcs, &vcsClone{dir: p, remote: remote})
		case strings.HasSuffix(name, ".lock") && isHash(strings.TrimSuffix(name, ".lock")):
		case strings.HasSuffix(name, ".info") && isHash(strings.TrimSuffix(name, ".info")) && have[strings.TrimSuffix(name, ".info")]:
		default:
			s.inv.other = append(s.inv.other, p)
		}
	}
	return nil
}

func isHash(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, c := range s {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
