package clean

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/modproxy/modproxy/internal/audit"
)

// ApplyOptions says how Apply removes.
type ApplyOptions struct {
	// Trash, when set, is the trash directory: items are moved to
	// Trash/RUNID/ instead of being deleted, for Restore. It must not be
	// inside the module cache.
	Trash string
	// Audit, when set, receives one event per item removed or failed and
	// one for the run.
	Audit *audit.Log
	// LockTimeout is how long to wait for a lock another process holds
	// before skipping the entry (<= 0: wait as long as ctx allows).
	LockTimeout time.Duration
	// Waiting, when set, is called when an entry's lock is not free at once.
	Waiting func(target string)
	// Progress, when set, is called after each item.
	Progress func(done, total int)
	// Now is the clock for the run ID (time.Now when nil).
	Now func() time.Time
}

// Result sums up an Apply. The plan's items carry their own Status.
type Result struct {
	RunID string `json:"run_id"`
	// Trash is the run's trash directory, when items were moved to a trash.
	Trash   string `json:"trash,omitempty"`
	Done    int    `json:"done"`
	Bytes   int64  `json:"bytes"` // removed, or moved to the trash
	Skipped int    `json:"skipped"`
	Failed  int    `json:"failed"`
}

// Apply carries out the plan, item by item, keeping the go command's rules
// (see the package documentation): each version or clone is changed only
// while its lock file is held, and only what is found there once the lock is
// held is removed. An item whose lock is busy for longer than LockTimeout is
// skipped (Status skipped, Error says why). An item that fails stops at the
// first error and leaves a state the go command accepts; Apply goes on with
// the next. Apply returns an error only when it cannot run at all (the trash
// cannot be created) or ctx ends; items not reached stay StatusPlanned.
func (p *Plan) Apply(ctx context.Context, o ApplyOptions) (*Result, error) {
	now := time.Now
	if o.Now != nil {
		now = o.Now
	}
	start := now()
	res := &Result{RunID: start.UTC().Format("20060102T150405Z") + "-" + randSuffix()[:4]}
	a := &applier{plan: p, o: o, res: res}
	if o.Trash != "" {
		if p.ModCache == "" {
			return nil, errors.New("trash: the plan names no module cache")
		}
		tr, err := createTrashRun(o.Trash, res.RunID, p.ModCache, start)
		if err != nil {
			return nil, err
		}
		a.trash = tr
		res.Trash = tr.dir
	}
	var err error
	var dirty *Item // the last item of a module whose @v/list needs rewriting
	flushList := func() {
		if dirty == nil {
			return
		}
		if lerr := rewriteList(dirty.ver.dlDir); lerr != nil {
			// Its files are gone (and counted in Bytes), but the module is
			// left inconsistent: report the item as failed.
			switch dirty.Status {
			case StatusRemoved, StatusTrashed:
				a.res.Done--
				a.res.Failed++
			case StatusSkipped:
				a.res.Skipped--
				a.res.Failed++
			}
			dirty.Status, dirty.Error = StatusFailed, strings.TrimPrefix(dirty.Error+"; ", "; ")+lerr.Error()
		}
		dirty = nil
	}
	for i, it := range p.Items {
		if err = ctx.Err(); err != nil {
			break
		}
		if a.item(ctx, it) {
			dirty = it
		} else if dirty != nil {
			dirty = it // the module's last item so far
		}
		// Rewrite a module's @v/list after its last item.
		if dirty != nil && (i+1 == len(p.Items) || p.Items[i+1].ver == nil || p.Items[i+1].ver.dlDir != it.ver.dlDir) {
			flushList()
		}
		if o.Progress != nil {
			o.Progress(i+1, len(p.Items))
		}
	}
	flushList() // after a cancellation
	if a.trash != nil {
		if cerr := a.trash.close(); cerr != nil && err == nil {
			err = cerr
		}
		if n, cerr := countFiles(filepath.Join(a.trash.dir, "files")); cerr == nil && n == 0 {
			_ = removeAll(a.trash.dir)
			res.Trash = ""
		}
	}
	summary := fmt.Sprintf("run %s: %d done, %d skipped, %d failed", res.RunID, res.Done, res.Skipped, res.Failed)
	if res.Trash != "" {
		summary += "; moved to " + res.Trash
	}
	if aerr := o.Audit.Record(audit.Event{Actor: "clean", Action: "clean", Target: p.ModCache, Reason: summary, Bytes: res.Bytes}); aerr != nil && err == nil {
		err = aerr
	}
	return res, err
}

type applier struct {
	plan  *Plan
	o     ApplyOptions
	res   *Result
	trash *trashRun
}

// item applies one item and reports whether a .mod file went.
func (a *applier) item(ctx context.Context, it *Item) (modRemoved bool) {
	var err error
	switch {
	case it.ver != nil:
		modRemoved, err = a.version(ctx, it)
	case it.clone != nil:
		err = a.clone(ctx, it)
	default:
		err = a.plain(it)
	}
	var le *LockedError
	switch {
	case errors.As(err, &le):
		it.Status, it.Error = StatusSkipped, le.Error()
		a.res.Skipped++
		return modRemoved
	case errors.Is(err, errGone):
		it.Status, it.Error, it.Bytes = StatusSkipped, "already gone", 0
		a.res.Skipped++
		return modRemoved
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		return modRemoved
	case err != nil:
		it.Status, it.Error = StatusFailed, err.Error()
		a.res.Failed++
	default:
		it.Status = StatusRemoved
		if a.trash != nil {
			it.Status = StatusTrashed
		}
		a.res.Done++
		a.res.Bytes += it.Bytes
	}
	reason := fmt.Sprintf("run %s: %s", a.res.RunID, it.Reason)
	action := string(it.Action)
	if it.Status == StatusTrashed {
		reason += "; moved to the trash"
	}
	if it.Status == StatusFailed {
		action += "-failed"
		reason += "; " + it.Error
	}
	if aerr := a.o.Audit.Record(audit.Event{Actor: "clean", Action: action, Target: it.Target, Reason: reason, Bytes: it.Bytes}); aerr != nil && it.Error == "" {
		it.Error = aerr.Error()
	}
	return modRemoved
}

var errGone = errors.New("already gone")

func (a *applier) waiting(target string) func() {
	if a.o.Waiting == nil {
		return nil
	}
	return func() { a.o.Waiting(target) }
}

// version removes a module or toolchain version's files under its lock.
func (a *applier) version(ctx context.Context, it *Item) (modRemoved bool, err error) {
	v := it.ver
	unlock, err := lock(ctx, v.file(kindLock), a.o.LockTimeout, a.waiting(it.Target))
	if err != nil {
		return false, err
	}
	defer unlock()
	// Look again now that no go command is downloading or extracting it.
	paths := it.paths()
	if len(paths) == 0 {
		return false, errGone
	}
	it.Bytes = 0
	for _, p := range paths {
		n, _ := du(p)
		it.Bytes += n
	}
	_, perr := os.Lstat(v.file(kindPartial))
	brokenTree := perr == nil // an interrupted extraction: delete, never trash
	if a.trash != nil {
		var entries []manifestEntry
		for _, p := range paths {
			if p == v.file(kindPartial) || (p == v.tree && brokenTree) || v.leftover(p) {
				continue
			}
			e := manifestEntry{Rel: a.rel(p)}
			if p == v.tree {
				e.Tree, e.Needs = true, a.rel(v.file(kindZiphash))
			}
			entries = append(entries, e)
		}
		if err := a.trash.record(it, a.rel(v.file(kindLock)), a.rel(v.dlDir), entries); err != nil {
			return false, err
		}
	}
	for _, p := range paths {
		switch {
		case v.leftover(p):
			// A leftover TREE.tmp-* directory: garbage, never trashed.
			if err := removeAll(p); err != nil {
				return modRemoved, fmt.Errorf("removing %s: %w", p, err)
			}
			a.prune(p)
		case p == v.tree:
			tmp, err := hideTree(v.tree)
			if err != nil {
				return modRemoved, fmt.Errorf("removing %s: %w", v.tree, err)
			}
			if a.trash != nil && !brokenTree {
				err = a.trash.move(tmp, a.rel(v.tree))
			} else {
				err = removeAll(tmp)
			}
			if err != nil {
				return modRemoved, fmt.Errorf("removing %s: %w", v.tree, err)
			}
			a.prune(v.tree)
		default:
			if a.trash != nil && p != v.file(kindPartial) {
				err = a.trash.move(p, a.rel(p))
			} else {
				err = removeFile(p)
			}
			if err != nil {
				return modRemoved, fmt.Errorf("removing %s: %w", p, err)
			}
			if p == v.file(kindMod) {
				modRemoved = true
			}
		}
	}
	return modRemoved, nil
}

// clone removes a VCS clone under its lock: HASH.info first (without it the
// go command clones afresh), then the directory.
func (a *applier) clone(ctx context.Context, it *Item) error {
	c := it.clone
	unlock, err := lock(ctx, c.dir+".lock", a.o.LockTimeout, a.waiting(it.Target))
	if err != nil {
		return err
	}
	defer unlock()
	paths := it.paths()
	if len(paths) == 0 {
		return errGone
	}
	it.Bytes = 0
	for _, p := range paths {
		n, _ := du(p)
		it.Bytes += n
	}
	if a.trash != nil {
		var entries []manifestEntry
		for _, p := range paths {
			entries = append(entries, manifestEntry{Rel: a.rel(p)})
		}
		if err := a.trash.record(it, a.rel(c.dir+".lock"), "", entries); err != nil {
			return err
		}
	}
	for _, p := range paths {
		if a.trash != nil {
			err = a.trash.move(p, a.rel(p))
		} else if p == c.dir {
			err = removeAll(p)
		} else {
			err = removeFile(p)
		}
		if err != nil {
			return fmt.Errorf("removing %s: %w", p, err)
		}
	}
	return nil
}

// plain removes a checksum database cache or another path. The go command
// reads and writes each checksum database file with lockedfile and treats a
// missing one as not cached, so no lock is needed.
func (a *applier) plain(it *Item) error {
	paths := it.paths()
	if len(paths) == 0 {
		return errGone
	}
	p := paths[0]
	it.Bytes, _ = du(p)
	if a.trash != nil {
		if err := a.trash.record(it, "", "", []manifestEntry{{Rel: a.rel(p)}}); err != nil {
			return err
		}
		if err := a.trash.move(p, a.rel(p)); err != nil {
			return fmt.Errorf("removing %s: %w", p, err)
		}
		a.prune(p)
		return nil
	}
	if err := removeAll(p); err != nil {
		return fmt.Errorf("removing %s: %w", p, err)
	}
	a.prune(p)
	return nil
}

// prune removes the directories that p's removal left empty, with --all
// only: otherwise a go command creating a sibling could see its parent
// vanish between two steps of its os.MkdirAll.
func (a *applier) prune(p string) {
	if a.plan.all {
		removeEmptyParents(p, a.plan.ModCache)
	}
}

// rel returns p relative to the module cache, slash-separated.
func (a *applier) rel(p string) string {
	r, err := filepath.Rel(a.plan.ModCache, p)
	if err != nil || r == ".." || strings.HasPrefix(r, "../") {
		return filepath.ToSlash(p) // cannot happen: every path is in the cache
	}
	return filepath.ToSlash(r)
}
