package clean

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/modproxy/modproxy/internal/audit"
)

// A trash directory holds one subdirectory per run, named by its run ID:
//
//	TRASH/RUNID/manifest.jsonl   a header line, then one line per item
//	TRASH/RUNID/files/REL        each moved file or tree, at its path
//	                             relative to the module cache
//
// An item's manifest line is written (and synced) before its files move, so
// a crash leaves at worst a line whose files are still in the cache;
// Restore skips entries whose file is not in the trash.

type manifestLine struct {
	Header *manifestHeader `json:"header,omitempty"`
	Item   *manifestItem   `json:"item,omitempty"`
}

type manifestHeader struct {
	ID       string    `json:"id"`
	Time     time.Time `json:"time"`
	ModCache string    `json:"modcache"`
}

type manifestItem struct {
	Category Category        `json:"category"`
	Action   Action          `json:"action"`
	Target   string          `json:"target"`
	Bytes    int64           `json:"bytes"`
	Lock     string          `json:"lock,omitempty"`     // lock file to hold while restoring
	ListDir  string          `json:"list_dir,omitempty"` // @v directory whose list to rewrite
	Entries  []manifestEntry `json:"entries"`            // in removal order
}

type manifestEntry struct {
	Rel   string `json:"rel"`             // slash path below the module cache and below files/
	Tree  bool   `json:"tree,omitempty"`  // an extracted tree
	Needs string `json:"needs,omitempty"` // restored only if this file (its .ziphash) exists
}

type trashRun struct {
	dir string
	f   *os.File
}

func createTrashRun(root, id, modCache string, now time.Time) (*trashRun, error) {
	absRoot, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("trash: %w", err)
	}
	if within(absRoot, []string{modCache}) {
		return nil, &OptionError{"--trash", fmt.Sprintf("%s is inside the module cache %s", root, modCache)}
	}
	dir := filepath.Join(absRoot, id)
	if err := os.MkdirAll(filepath.Join(dir, "files"), 0o755); err != nil {
		return nil, fmt.Errorf("trash: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, "manifest.jsonl"), os.O_WRONLY|os.O_CREATE|os.O_EXCL|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("trash: %w", err)
	}
	tr := &trashRun{dir: dir, f: f}
	if err := tr.write(manifestLine{Header: &manifestHeader{ID: id, Time: now.UTC(), ModCache: modCache}}); err != nil {
		f.Close()
		return nil, err
	}
	return tr, nil
}

func (tr *trashRun) write(l manifestLine) error {
	b, err := json.Marshal(l)
	if err != nil {
		return fmt.Errorf("trash manifest: %w", err)
	}
	if _, err := tr.f.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("trash manifest: %w", err)
	}
	if err := tr.f.Sync(); err != nil {
		return fmt.Errorf("trash manifest: %w", err)
	}
	return nil
}

func (tr *trashRun) record(it *Item, lockRel, listDir string, entries []manifestEntry) error {
	return tr.write(manifestLine{Item: &manifestItem{
		Category: it.Category, Action: it.Action, Target: it.Target, Bytes: it.Bytes,
		Lock: lockRel, ListDir: listDir, Entries: entries,
	}})
}

func (tr *trashRun) move(src, rel string) error {
	return moveAtomic(src, filepath.Join(tr.dir, "files", filepath.FromSlash(rel)))
}

func (tr *trashRun) close() error { return tr.f.Close() }

// TrashRun describes one run kept in a trash directory.
type TrashRun struct {
	ID       string    `json:"id"`
	Time     time.Time `json:"time"`
	ModCache string    `json:"modcache"`
	Items    int       `json:"items"`
	Bytes    int64     `json:"bytes"` // what is still in the trash
	Dir      string    `json:"dir"`
}

// TrashRuns lists the runs in the trash directory, oldest first. A missing
// trash directory holds no runs.
func TrashRuns(trash string) ([]TrashRun, error) {
	ents, err := os.ReadDir(trash)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("trash: %w", err)
	}
	var out []TrashRun
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		dir := filepath.Join(trash, e.Name())
		h, items, err := readManifest(dir)
		if err != nil {
			continue // not a run
		}
		n, _ := du(filepath.Join(dir, "files"))
		out = append(out, TrashRun{ID: h.ID, Time: h.Time, ModCache: h.ModCache, Items: len(items), Bytes: n, Dir: dir})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

func readManifest(dir string) (*manifestHeader, []*manifestItem, error) {
	f, err := os.Open(filepath.Join(dir, "manifest.jsonl"))
	if err != nil {
		return nil, nil, fmt.Errorf("trash run %s: %w", dir, err)
	}
	defer f.Close()
	var h *manifestHeader
	var items []*manifestItem
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64*1024), 16<<20)
	for sc.Scan() {
		var l manifestLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			return nil, nil, fmt.Errorf("trash run %s: manifest: %w", dir, err)
		}
		switch {
		case l.Header != nil && h == nil:
			h = l.Header
		case l.Item != nil:
			items = append(items, l.Item)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, nil, fmt.Errorf("trash run %s: manifest: %w", dir, err)
	}
	if h == nil || h.ID != filepath.Base(dir) || !filepath.IsAbs(h.ModCache) {
		return nil, nil, fmt.Errorf("trash run %s: manifest has no valid header", dir)
	}
	return h, items, nil
}

// RestoreOptions says how Restore works.
type RestoreOptions struct {
	// Audit, when set, receives one event per item restored.
	Audit *audit.Log
	// LockTimeout and Waiting are as in ApplyOptions.
	LockTimeout time.Duration
	Waiting     func(target string)
}

// RestoredItem is what became of one trashed item.
type RestoredItem struct {
	Category Category `json:"category"`
	Target   string   `json:"target"`
	// Status is "restored", "partial" (some files were left in the trash:
	// see Left), "left" (every file was left in the trash: see Left) or
	// "skipped" (its lock was busy; all left in the trash).
	Status string   `json:"status"`
	Left   []string `json:"left,omitempty"` // why each file left behind was
	Error  string   `json:"error,omitempty"`
}

// RestoreResult sums up a Restore.
type RestoreResult struct {
	RunID    string         `json:"run_id"`
	ModCache string         `json:"modcache"`
	Items    []RestoredItem `json:"items"`
	// Emptied reports that every file went back and the run was deleted
	// from the trash.
	Emptied bool `json:"emptied"`
}

// Restore moves the files of run id (the newest run when id is "") from the
// trash back into the module cache they came from. Each module version is
// restored under its lock, .info/.mod/.zip/.ziphash first and the extracted
// tree last, and the tree only when its .ziphash is in place; the module's
// @v/list is rewritten. A file whose place is taken (the go command
// downloaded it again meanwhile) is left in the trash and reported. When
// every file went back, the run is deleted from the trash.
func Restore(ctx context.Context, trash, id string, o RestoreOptions) (*RestoreResult, error) {
	if id == "" {
		runs, err := TrashRuns(trash)
		if err != nil {
			return nil, err
		}
		if len(runs) == 0 {
			return nil, fmt.Errorf("trash %s: no runs to restore", trash)
		}
		id = runs[len(runs)-1].ID
	}
	if id != filepath.Base(id) || strings.HasPrefix(id, ".") {
		return nil, &OptionError{"restore", fmt.Sprintf("invalid run ID %q", id)}
	}
	dir := filepath.Join(trash, id)
	h, items, err := readManifest(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("trash %s: no run %s", trash, id)
		}
		return nil, err
	}
	res := &RestoreResult{RunID: id, ModCache: h.ModCache}
	files := filepath.Join(dir, "files")
	for _, mi := range items {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		ri := restoreItem(ctx, mi, h.ModCache, files, o)
		res.Items = append(res.Items, ri)
		if ri.Status != "skipped" {
			if aerr := o.Audit.Record(audit.Event{Actor: "clean", Action: "restore", Target: mi.Target, Reason: "run " + id + ": " + ri.Status, Bytes: mi.Bytes}); aerr != nil {
				return res, aerr
			}
		}
	}
	if n, _ := countFiles(files); n == 0 {
		if err := removeAll(dir); err != nil {
			return res, fmt.Errorf("trash: %w", err)
		}
		res.Emptied = true
	}
	return res, nil
}

func restoreItem(ctx context.Context, mi *manifestItem, modCache, files string, o RestoreOptions) RestoredItem {
	ri := RestoredItem{Category: mi.Category, Target: mi.Target, Status: "restored"}
	if mi.Lock != "" {
		var waiting func()
		if o.Waiting != nil {
			waiting = func() { o.Waiting(mi.Target) }
		}
		unlock, err := lock(ctx, filepath.Join(modCache, filepath.FromSlash(mi.Lock)), o.LockTimeout, waiting)
		if err != nil {
			ri.Status, ri.Error = "skipped", err.Error()
			return ri
		}
		defer unlock()
	}
	var moved bool
	// Reverse removal order: .info, .mod, .zip, .ziphash, then the tree.
	for i := len(mi.Entries) - 1; i >= 0; i-- {
		e := mi.Entries[i]
		src := filepath.Join(files, filepath.FromSlash(e.Rel))
		dst := filepath.Join(modCache, filepath.FromSlash(e.Rel))
		if _, err := os.Lstat(src); err != nil {
			continue // restored before, or never moved
		}
		if _, err := os.Lstat(dst); err == nil {
			ri.Left = append(ri.Left, e.Rel+": already in the module cache")
			continue
		}
		if e.Needs != "" {
			if _, err := os.Stat(filepath.Join(modCache, filepath.FromSlash(e.Needs))); err != nil {
				ri.Left = append(ri.Left, e.Rel+": its "+pathBase(e.Needs)+" is missing, so the go command would not trust it")
				continue
			}
		}
		if err := moveAtomic(src, dst); err != nil {
			ri.Left = append(ri.Left, e.Rel+": "+err.Error())
			continue
		}
		removeEmptyParents(src, files)
		moved = true
	}
	if mi.ListDir != "" {
		if err := rewriteList(filepath.Join(modCache, filepath.FromSlash(mi.ListDir))); err != nil {
			ri.Error = err.Error()
		}
	}
	if len(ri.Left) > 0 {
		ri.Status = "partial"
		if !moved {
			ri.Status = "left"
		}
	}
	return ri
}

func pathBase(rel string) string {
	if i := strings.LastIndex(rel, "/"); i >= 0 {
		return rel[i+1:]
	}
	return rel
}

// countFiles counts the non-directories below dir.
func countFiles(dir string) (int, error) {
	n := 0
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if !d.IsDir() {
			n++
		}
		return nil
	})
	return n, err
}

// EmptyTrash deletes the runs ids from the trash (every run when ids is
// empty) and returns the bytes freed.
func EmptyTrash(trash string, ids []string) (int64, error) {
	runs, err := TrashRuns(trash)
	if err != nil {
		return 0, err
	}
	want := map[string]bool{}
	for _, id := range ids {
		want[id] = true
	}
	var freed int64
	for _, r := range runs {
		if len(ids) > 0 && !want[r.ID] {
			continue
		}
		delete(want, r.ID)
		if err := removeAll(r.Dir); err != nil {
			return freed, fmt.Errorf("trash: %w", err)
		}
		freed += r.Bytes
	}
	for id := range want {
		return freed, fmt.Errorf("trash %s: no run %s", trash, id)
	}
	return freed, nil
}
