// Package gc plans and runs eviction of module versions from the store.
//
// The unit of eviction is a module version: its .info, .mod, .zip and
// their recorded hashes (KEY.h1) go together. Policies combine:
//
//	max-idle     versions not served for MaxIdle
//	keep-newest  all but the KeepNewest highest versions of each module
//	size-cap     least recently used versions while the module cache
//	             (every object but the toolchain mirror's, Counted) exceeds
//	             MaxBytes (less the trash's share, TrashMaxBytes)
//	min-free     least recently used versions until FreeBytes are planned
//	             (the caller's reaction to a file system low on space)
//
// Pinned versions are never evicted: patterns "module-pattern[@version]"
// (GOPRIVATE-style module patterns), and go.sum / go.mod / go.work /
// go.work.sum files (or directories holding them) whose every referenced
// version is kept, as package modrefs reads them. A run first makes a Plan
// (what, why, bytes), which a dry run returns as is; Run then moves each version to the trash, skipping any
// version being served or filled (the Gate), records an audit event per
// version, and drops the module's cached @v/list and @latest so they are
// fetched again rather than naming versions that are gone.
package gc

import (
	"context"
	"fmt"
	"os"
	"path"
	"slices"
	"strings"
	"time"

	"golang.org/x/mod/module"
	"golang.org/x/mod/semver"

	"github.com/modproxy/modproxy/internal/artifact"
	"github.com/modproxy/modproxy/internal/audit"
	"github.com/modproxy/modproxy/internal/index"
	"github.com/modproxy/modproxy/internal/metrics"
	"github.com/modproxy/modproxy/internal/modrefs"
	"github.com/modproxy/modproxy/internal/storage"
	"github.com/modproxy/modproxy/internal/trash"
)

// Policy is the eviction policy. Zero values disable each rule.
type Policy struct {
	MaxBytes   int64
	MaxIdle    time.Duration
	KeepNewest int
	Pins       []string // "module-pattern[@version]"
	PinSets    []string // go.sum / go.mod / go.work / go.work.sum files or directories

	// TrashMaxBytes, with MaxBytes, is the trash's share of the cap: then
	// MaxBytes bounds the objects and the trash together (they share the
	// disk), the size cap keeping the objects within MaxBytes -
	// TrashMaxBytes and the caller the trash within TrashMaxBytes. The
	// shares are fixed because the trash is purged by whole batches: a
	// run that evicted down to the whole cap would make a batch larger
	// than the trash's share, and none would ever be kept. 0: the trash
	// is not counted.
	TrashMaxBytes int64
	// FreeBytes, when positive, evicts least recently used versions
	// (reason "min-free") until the plan evicts at least this many bytes
	// in all: the caller's share of space to give back to a file system
	// that is low on it (set for one plan, not configuration).
	FreeBytes int64
}

// objectsCap is what the size cap leaves the objects: MaxBytes less the
// trash's share.
func (p Policy) objectsCap() int64 {
	return max(0, p.MaxBytes-max(0, p.TrashMaxBytes))
}

// Index is what planning needs from the metadata index.
type Index interface {
	All(fn func(key string, r index.Record) error) error
	Deleted(key string)
	Flush()
}

// Entry is one module version in the store.
type Entry struct {
	Module, Version string
	Keys            []string
	Bytes           int64
	LastAccess      time.Time
	Stored          time.Time
	Hits            int64
}

// Versions groups the index by module version; mutable entries (lists,
// latest, queries) and checksum database files are not versions.
func Versions(idx Index) ([]*Entry, error) {
	byVer := map[[2]string]*Entry{}
	err := idx.All(func(key string, r index.Record) error {
		req, err := artifact.Parse(strings.TrimSuffix(key, ".h1"))
		if err != nil || (req.Kind != artifact.Info && req.Kind != artifact.Mod && req.Kind != artifact.Zip) {
			return nil
		}
		id := [2]string{req.Module, req.Version}
		v := byVer[id]
		if v == nil {
			v = &Entry{Module: req.Module, Version: req.Version, Stored: r.Stored}
			byVer[id] = v
		}
		v.Keys = append(v.Keys, key)
		v.Bytes += r.Size
		v.Hits += r.Hits
		if r.LastAccess.After(v.LastAccess) {
			v.LastAccess = r.LastAccess
		}
		if r.Stored.Before(v.Stored) {
			v.Stored = r.Stored
		}
		return nil
	})
	out := make([]*Entry, 0, len(byVer))
	for _, v := range byVer {
		out = append(out, v)
	}
	slices.SortFunc(out, func(a, b *Entry) int {
		if c := strings.Compare(a.Module, b.Module); c != 0 {
			return c
		}
		return semver.Compare(a.Version, b.Version)
	})
	return out, err
}

// toolchainPrefix begins the store keys of the toolchain mirror (package
// toolchain), which bounds them itself (dl.max_total).
const toolchainPrefix = "dl/"

// Counted reports whether the object at key counts towards the module
// cache's size (Plan.StoreBytes, the size cap): every object but the
// toolchain mirror's (dl/...). This GC can evict only module versions, so
// counting objects it cannot evict would make it evict every unpinned
// version and still not reach the cap. Checksum database files (sumdb/),
// module lists and namespaces' mutable entries count, as the cache's own.
func Counted(key string) bool { return !strings.HasPrefix(key, toolchainPrefix) }

// Item is a version the plan evicts.
type Item struct {
	*Entry
	Reason string // "max-idle", "keep-newest", "size-cap", "min-free"
}

// Plan is what a run would evict.
type Plan struct {
	Created    time.Time
	Items      []Item
	Bytes      int64 // evicted
	StoreBytes int64 // the module cache before: every object of the index, lists and checksum database files included, except the toolchain mirror's (see Counted)
	PinnedKept int   // pinned versions a policy would otherwise have evicted
}

// Pinner reports pinned versions.
type Pinner struct {
	patterns []pin
	refs     *modrefs.Set
}

type pin struct{ mod, version string }

// NewPinner loads the pins. A pin set is read with modrefs: every version
// its files reference is pinned, whole (eviction removes whole versions), so
// a replaced version is not pinned and its replacement is. A pin set that
// cannot be read, or holds a file that does not parse at all, is an error:
// an unknown pin could be evicted. Lines and directives that do not parse
// in a file that otherwise does are ignored.
func NewPinner(p Policy) (*Pinner, error) {
	pn := &Pinner{refs: modrefs.New(modrefs.Options{})}
	for _, s := range p.Pins {
		m, v, _ := strings.Cut(s, "@")
		pn.patterns = append(pn.patterns, pin{m, v})
	}
	for _, s := range p.PinSets {
		seen := len(pn.refs.Problems())
		if err := pn.refs.AddPaths(context.Background(), s); err != nil {
			return nil, fmt.Errorf("pin set %s: %w", s, err)
		}
		for _, pr := range pn.refs.Problems()[seen:] {
			if pr.Skipped {
				return nil, fmt.Errorf("pin set %s: %w", s, pr)
			}
		}
	}
	return pn, nil
}

// Pinned reports whether mod@version is pinned.
func (pn *Pinner) Pinned(mod, version string) bool {
	if pn.refs.Need(module.Version{Path: mod, Version: version}) != modrefs.None {
		return true
	}
	for _, p := range pn.patterns {
		if module.MatchPrefixPatterns(p.mod, mod) && (p.version == "" || p.version == version) {
			return true
		}
	}
	return false
}

// MakePlan applies the policy to the versions in the index at now.
func MakePlan(idx Index, pol Policy, now time.Time) (Plan, error) {
	pn, err := NewPinner(pol)
	if err != nil {
		return Plan{}, err
	}
	vers, err := Versions(idx)
	if err != nil {
		return Plan{}, err
	}
	plan := Plan{Created: now}
	evict := map[*Entry]string{}
	pinnedHit := map[*Entry]bool{}
	mark := func(v *Entry, reason string) {
		if pn.Pinned(v.Module, v.Version) {
			pinnedHit[v] = true
			return
		}
		if _, ok := evict[v]; !ok {
			evict[v] = reason
		}
	}
	// The module cache's size is every object the index records (package
	// index: one definition of a cache's size), not only module versions,
	// except those with a bound of their own (Counted).
	if err := idx.All(func(key string, r index.Record) error {
		if Counted(key) {
			plan.StoreBytes += r.Size
		}
		return nil
	}); err != nil {
		return Plan{}, err
	}
	if pol.MaxIdle > 0 {
		for _, v := range vers {
			if now.Sub(v.LastAccess) > pol.MaxIdle {
				mark(v, "max-idle")
			}
		}
	}
	if pol.KeepNewest > 0 {
		for i := 0; i < len(vers); {
			j := i
			for j < len(vers) && vers[j].Module == vers[i].Module {
				j++
			}
			mod := vers[i:j] // ascending semver
			for k := 0; k < len(mod)-pol.KeepNewest; k++ {
				mark(mod[k], "keep-newest")
			}
			i = j
		}
	}
	evicted := func() (n int64) {
		for v := range evict {
			n += v.Bytes
		}
		return n
	}
	lru := slices.Clone(vers)
	slices.SortStableFunc(lru, func(a, b *Entry) int { return a.LastAccess.Compare(b.LastAccess) })
	// evictLRU marks least recently used versions for reason while more
	// reports true for the bytes evicted so far.
	evictLRU := func(reason string, more func(evicted int64) bool) {
		n := evicted()
		for _, v := range lru {
			if !more(n) {
				break
			}
			if _, done := evict[v]; done {
				continue
			}
			mark(v, reason)
			if _, ok := evict[v]; ok {
				n += v.Bytes
			}
		}
	}
	if pol.MaxBytes > 0 {
		evictLRU("size-cap", func(n int64) bool { return plan.StoreBytes-n > pol.objectsCap() })
	}
	if pol.FreeBytes > 0 {
		evictLRU("min-free", func(n int64) bool { return n < pol.FreeBytes })
	}
	for _, v := range vers { // deterministic order
		if reason, ok := evict[v]; ok {
			plan.Items = append(plan.Items, Item{Entry: v, Reason: reason})
			plan.Bytes += v.Bytes
		}
	}
	plan.PinnedKept = len(pinnedHit)
	return plan, nil
}

// Gate keeps eviction away from versions being served or filled.
type Gate interface {
	// TryLockVersion locks mod@version against serving and filling, or
	// reports false when it is in use.
	TryLockVersion(mod, version string) (unlock func(), ok bool)
}

// Store is what a run needs from the store.
type Store interface {
	trash.Store
}

// Runner executes plans.
type Runner struct {
	Store   Store
	Index   Index
	Trash   *trash.Trash
	Gate    Gate
	Audit   *audit.Log
	Metrics *metrics.Metrics
	Now     func() time.Time
}

// Result is what a run did.
type Result struct {
	Started, Finished time.Time
	Evicted           []Item
	Bytes             int64
	Skipped           []Item // in use
	TrashID           string
}

// Run moves the plan's versions to the trash (one batch), actor naming who
// asked ("gc" for the schedule, "admin" ...).
func (r *Runner) Run(ctx context.Context, plan Plan, actor, reason string) (Result, error) {
	res := Result{Started: r.now()}
	batch := r.Trash.Begin(reason)
	modules := map[string]bool{}
	for _, it := range plan.Items {
		if err := ctx.Err(); err != nil {
			break
		}
		unlock, ok := r.Gate.TryLockVersion(it.Module, it.Version)
		if !ok {
			res.Skipped = append(res.Skipped, it)
			continue
		}
		hashes := map[string]string{}
		var moved int64
		// Objects first, recorded hashes last: a crash leaves at worst a
		// hash without its object, never an object without its hash.
		keys := slices.Clone(it.Keys)
		slices.SortStableFunc(keys, func(a, b string) int {
			return boolInt(strings.HasSuffix(a, ".h1")) - boolInt(strings.HasSuffix(b, ".h1"))
		})
		for _, k := range keys {
			if strings.HasSuffix(k, ".h1") {
				if b, _ := storage.ReadSmall(ctx, r.Store, k, 256); len(b) > 0 {
					file := strings.TrimPrefix(path.Ext(strings.TrimSuffix(k, ".h1")), ".") // "zip" or "mod"
					hashes[file] = strings.TrimSpace(string(b))
				}
			}
			n, err := batch.Move(ctx, r.Store, k)
			if err != nil && !os.IsNotExist(err) {
				unlock()
				_, _ = batch.Commit()
				return res, fmt.Errorf("evicting %s: %w", k, err)
			}
			moved += n
			r.Index.Deleted(k)
		}
		unlock()
		batch.AddVersion(it.Module + "@" + it.Version)
		modules[it.Module] = true
		res.Evicted = append(res.Evicted, it)
		res.Bytes += moved
		r.Metrics.GCEvicted(it.Reason, moved)
		_ = r.Audit.RecordContext(ctx, audit.Event{Actor: actor, Action: "evict", Target: it.Module + "@" + it.Version,
			Reason: it.Reason + "; " + reason + "; trash " + batch.ID(), Bytes: moved, Hashes: hashes})
	}
	for mod := range modules {
		esc, err := module.EscapePath(mod)
		if err != nil {
			continue
		}
		for _, k := range []string{esc + "/@v/list", esc + "/@latest"} {
			if err := r.Store.Delete(ctx, k); err == nil {
				r.Index.Deleted(k)
			}
		}
	}
	m, err := batch.Commit()
	if len(m.Keys) > 0 {
		res.TrashID = m.ID
	}
	res.Finished = r.now()
	r.Index.Flush()
	return res, err
}

func (r *Runner) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
