package bundle

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
	"golang.org/x/sync/errgroup"

	"github.com/modproxy/modproxy/internal/artifact"
	"github.com/modproxy/modproxy/internal/checksum"
	"github.com/modproxy/modproxy/internal/storage"
)

// ImportOptions configures Import.
type ImportOptions struct {
	Store storage.Store
	// TempDir is a directory for the staged members; on the store's file
	// system when the store is a storage.FileMover (its TempDir), so that
	// admitting them is a rename.
	TempDir string
	// Keys are the verifier keys of the checksum databases this side
	// trusts, by database name.
	Keys map[string]string
	// StateDir holds the trusted tree heads (checksum.ReadTreeHead).
	StateDir string
	// Private reports whether a module path is private here: only such
	// modules may come without a checksum database record.
	Private func(path string) bool
	// DryRun verifies everything and reports what would change, changing
	// nothing.
	DryRun bool
	// Progress, when set, is called with the objects admitted so far and
	// their total.
	Progress func(done, total int)

	// afterAdmit, when set (tests), is called after each admitted group of
	// objects; an error stops the import as a crash would.
	afterAdmit func(keys []string) error
}

// Change is one object an import adds or replaces (or would).
type Change struct {
	Key    string
	Action string // "add", "replace"
}

// ImportReport says what an import changed (or, dry, would change).
type ImportReport struct {
	Modules   int // module versions in the bundle
	Private   int // of them private
	Changes   []Change
	Unchanged int // objects already stored with the same content
	// TreeHeads are the databases whose trusted tree head advanced (or
	// would), with the new tree size.
	TreeHeads map[string]int64
}

// IntegrityError is a member whose content is not what the manifest or
// the checksum database says: it was changed after export.
type IntegrityError struct {
	Key string
	Msg string
}

func (e *IntegrityError) Error() string { return "bundle member " + e.Key + ": " + e.Msg }

// staged is a member written to the staging directory.
type staged struct {
	path string
	size int64
	sha  string
}

// Import verifies the bundle r completely and only then admits its
// objects into the store, each with the store's atomic writes, in an order
// in which a reader never sees a reference before what it names (module
// files and tiles before lookups, vuln/current after the other vuln/
// objects, tree heads last). An import that stops midway leaves whole
// objects; running it again ends as one complete import would.
//
// Refusals change nothing: *FormatError (truncated or malformed archive,
// members not in the manifest), *IntegrityError (a member's size or
// SHA-256, a module's h1: hash, a record not in the tree, a private module
// this side does not hold private), *MissingTileError (a proof lacks a
// tile), *ForkError (the bundle's tree is not consistent with the trusted
// one).
func Import(ctx context.Context, opts ImportOptions, r io.Reader) (*ImportReport, error) {
	if opts.Private == nil {
		opts.Private = func(string) bool { return false }
	}
	dir, err := os.MkdirTemp(opts.TempDir, "import-*")
	if err != nil {
		return nil, fmt.Errorf("bundle staging: %w", err)
	}
	defer os.RemoveAll(dir)
	// While the archive is staged, the zips are hashed on every CPU
	// (joined before going on).
	zh := newZipHasher()
	man, members, err := stage(r, dir, zh.add)
	zh.wait()
	if err != nil {
		return nil, err
	}
	im := &importer{ctx: ctx, opts: opts, man: man, members: members, zipHashes: zh, hashes: map[string]string{}, keep: map[string]bool{}, rep: &ImportReport{TreeHeads: map[string]int64{}}}
	if err := im.verify(); err != nil {
		return nil, err
	}
	if err := im.plan(); err != nil {
		return nil, err
	}
	if opts.DryRun {
		return im.rep, nil
	}
	// On a store that moves the staged files in (a BatchWriter), they are
	// made durable at once, so that admitting them is a rename each (and
	// a sync of the directories they land in); other stores copy them
	// with their own durable writes.
	if _, ok := opts.Store.(storage.BatchWriter); ok {
		paths := make([]string, 0, len(members))
		for _, m := range members {
			paths = append(paths, m.path)
		}
		if err := syncStaged(dir, paths); err != nil {
			return nil, fmt.Errorf("bundle staging: %w", err)
		}
	}
	return im.rep, im.admit()
}

// stage writes every member to dir, hashing it, and returns the manifest.
// Each member is passed to onStaged once it is written and closed.
func stage(r io.Reader, dir string, onStaged func(key, path string)) (*Manifest, map[string]staged, error) {
	members := map[string]staged{}
	var man *Manifest
	err := readArchive(r, func(name string, size int64, body io.Reader) error {
		if name == ManifestName {
			var err error
			man, err = decodeManifest(body)
			return err
		}
		if err := checkMemberKey(name); err != nil {
			return err
		}
		if _, dup := members[name]; dup {
			return &FormatError{Msg: "member " + name + " appears twice"}
		}
		p := filepath.Join(dir, strconv.Itoa(len(members)))
		f, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
		if err != nil {
			return fmt.Errorf("bundle staging: %w", err)
		}
		h := newHash()
		n, err := io.Copy(io.MultiWriter(f, h), body)
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("bundle staging: %w", cerr)
		}
		if err != nil {
			return err
		}
		members[name] = staged{path: p, size: n, sha: h.hex()}
		onStaged(name, p)
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	if man == nil {
		return nil, nil, &FormatError{Msg: "the archive ends before its manifest: it is truncated, or not a bundle"}
	}
	return man, members, nil
}

// checkMemberKey admits the keys a bundle may hold: module files, checksum
// database files, vuln/ and dl/ objects.
func checkMemberKey(key string) error {
	if err := storage.CheckKey(key); err != nil {
		return &FormatError{Msg: fmt.Sprintf("member %q is not a valid store key", key)}
	}
	if strings.HasPrefix(key, "vuln/") || strings.HasPrefix(key, "dl/") || isModuleFile(key) {
		return nil
	}
	if rest, ok := strings.CutPrefix(key, "sumdb/"); ok {
		if req, err := artifact.ParseSumDB(rest); err == nil && req.Key == key {
			return nil
		}
	}
	return &FormatError{Msg: fmt.Sprintf("member %q is no module file, checksum database file, vuln/ or dl/ object", key)}
}

type importer struct {
	ctx       context.Context
	opts      ImportOptions
	man       *Manifest
	members   map[string]staged
	hashes    map[string]string // verified h1: of module files, by key
	zipHashes *zipHasher
	zips      map[string]string // h1: of the staged zips, by key
	keep      map[string]bool   // members not admitted: what is stored stays
	older     []string          // lookup prefixes of databases whose stored records stay
	heads     []head
	rep       *ImportReport
	order     [][]storage.Entry // admission groups, in order
}

// head is a database's tree head to persist after the objects.
type head struct {
	name     string
	old, new []byte
}

func (im *importer) read(key string) ([]byte, error) {
	return os.ReadFile(im.members[key].path)
}

// stagedTiles reads tiles from the staged members.
type stagedTiles struct{ im *importer }

func (t stagedTiles) get(_ context.Context, key string) ([]byte, error) {
	if _, ok := t.im.members[key]; !ok {
		return nil, fs.ErrNotExist
	}
	return t.im.read(key)
}

func (t stagedTiles) wider(_ context.Context, prefix string) ([]string, error) {
	var keys []string
	for k := range t.im.members {
		if strings.HasPrefix(k, prefix) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys, nil
}

func (im *importer) verify() error {
	// The manifest and the members: same set, sizes and hashes.
	for _, m := range im.man.Members {
		s, ok := im.members[m.Key]
		switch {
		case !ok:
			return &FormatError{Msg: "member " + m.Key + " named by the manifest is missing: the archive is truncated or was edited"}
		case s.size != m.Size:
			return &IntegrityError{Key: m.Key, Msg: fmt.Sprintf("%d bytes, the manifest says %d", s.size, m.Size)}
		case s.sha != m.SHA256:
			return &IntegrityError{Key: m.Key, Msg: fmt.Sprintf("SHA-256 %s, the manifest says %s", s.sha, m.SHA256)}
		}
	}
	if len(im.members) != len(im.man.Members) {
		for k := range im.members {
			if _, ok := im.man.member(k); !ok {
				return &FormatError{Msg: "member " + k + " is not in the manifest"}
			}
		}
	}
	// Checksum database files only of the databases the manifest lists
	// (whose tree heads and records are checked below).
	for k := range im.members {
		if rest, ok := strings.CutPrefix(k, "sumdb/"); ok {
			name, _, _ := strings.Cut(rest, "/")
			if !slices.ContainsFunc(im.man.Databases, func(d Database) bool { return d.Name == name }) {
				return &FormatError{Msg: "member " + k + " is of checksum database " + name + ", which the manifest does not list"}
			}
		}
	}
	records := map[string][]byte{} // "path@version" -> record text
	for _, db := range im.man.Databases {
		if err := im.verifyDB(db, records); err != nil {
			return err
		}
	}
	if err := im.verifyModules(records); err != nil {
		return err
	}
	return nil
}

// verifyDB checks a database's tree head against the trusted one and every
// lookup member against the tree head.
func (im *importer) verifyDB(db Database, records map[string][]byte) error {
	key, ok := im.opts.Keys[db.Name]
	if !ok {
		return fmt.Errorf("bundle records are from checksum database %s, which this proxy does not use (configure it in sumdb)", db.Name)
	}
	v, err := note.NewVerifier(key)
	if err != nil {
		return fmt.Errorf("checksum database key: %w", err)
	}
	msg := []byte(db.TreeHead)
	tree, err := openTree(msg, v)
	if err != nil {
		return &IntegrityError{Key: "sumdb/" + db.Name + "/latest", Msg: err.Error()}
	}
	latestKey := "sumdb/" + db.Name + "/latest"
	if b, err := im.read(latestKey); err != nil || !bytes.Equal(b, msg) {
		return &IntegrityError{Key: latestKey, Msg: "missing or not the manifest's tree head"}
	}
	trustedMsg, err := checksum.ReadTreeHead(im.opts.StateDir, db.Name)
	if err != nil {
		return fmt.Errorf("trusted tree head of %s: %w", db.Name, err)
	}
	tiles := []tileSource{stagedTiles{im}, storeTiles{im.opts.Store}}
	if len(trustedMsg) > 0 {
		trusted, err := openTree(trustedMsg, v)
		if err != nil {
			return fmt.Errorf("trusted tree head of %s: %w", db.Name, err)
		}
		older, newer := trusted, tree
		if trusted.N > tree.N {
			older, newer = tree, trusted
		}
		if err := consistent(newTileReader(im.ctx, db.Name, tiles...), older, newer); err != nil {
			if errors.As(err, new(*MissingTileError)) {
				return fmt.Errorf("cannot prove the bundle's tree head consistent with the trusted one (export it --since the last bundle imported here): %w", err)
			}
			return &ForkError{DB: db.Name, Trusted: trusted.N, Bundle: tree.N, Err: err}
		}
		if tree.N > trusted.N {
			im.heads = append(im.heads, head{name: db.Name, old: trustedMsg, new: msg})
		} else {
			// An older (consistent) bundle: its new records are
			// admitted; the tree head and the records served, proved in
			// the newer tree, stay.
			im.keep[latestKey] = true
			im.older = append(im.older, "sumdb/"+db.Name+"/lookup/")
		}
	} else {
		im.heads = append(im.heads, head{name: db.Name, old: trustedMsg, new: msg})
	}
	prefix := "sumdb/" + db.Name + "/lookup/"
	tr := newTileReader(im.ctx, db.Name, tiles...)
	for _, m := range im.man.Members {
		if !strings.HasPrefix(m.Key, prefix) {
			continue
		}
		data, err := im.read(m.Key)
		if err != nil {
			return err
		}
		id, text, signed, err := tlog.ParseRecord(data)
		if err != nil {
			return &IntegrityError{Key: m.Key, Msg: err.Error()}
		}
		if !bytes.Equal(signed, msg) {
			return &IntegrityError{Key: m.Key, Msg: "its signed tree head is not the bundle's"}
		}
		req, _ := artifact.ParseSumDB(strings.TrimPrefix(m.Key, "sumdb/"))
		if err := proveRecord(tr, tree, id, text, "the record of "+req.Module+"@"+req.Version); err != nil {
			if errors.As(err, new(*MissingTileError)) {
				return err
			}
			return &IntegrityError{Key: m.Key, Msg: err.Error()}
		}
		records[req.Module+"@"+req.Version] = text
	}
	return nil
}

// zipHasher computes the h1: hash of staged module zips on every CPU
// while the rest of the bundle is still being staged (hashing is most of an
// import's CPU). add starts a zip's hash, blocking while every CPU is busy;
// wait joins every hash started. Use from one goroutine.
type zipHasher struct {
	g   errgroup.Group
	mu  sync.Mutex
	h1  map[string]string // by key
	err map[string]error
}

func newZipHasher() *zipHasher {
	z := &zipHasher{h1: map[string]string{}, err: map[string]error{}}
	z.g.SetLimit(runtime.GOMAXPROCS(0))
	return z
}

// add starts hashing the member key staged at path, if it is a module zip.
func (z *zipHasher) add(key, path string) {
	if !strings.HasSuffix(key, ".zip") || !isModuleFile(key) {
		return
	}
	z.g.Go(func() error {
		h, err := checksum.HashZipFile(path)
		z.mu.Lock()
		z.h1[key], z.err[key] = h, err
		z.mu.Unlock()
		return nil
	})
}

// wait waits for every hash started.
func (z *zipHasher) wait() { _ = z.g.Wait() }

// hashes returns the h1: hash of every staged zip (after wait); a zip that
// cannot be read as one is an *IntegrityError.
func (z *zipHasher) hashes() (map[string]string, error) {
	keys := slices.Sorted(maps.Keys(z.err))
	for _, k := range keys {
		if err := z.err[k]; err != nil {
			return nil, &IntegrityError{Key: k, Msg: "not a module zip: " + err.Error()}
		}
	}
	return z.h1, nil
}

// verifyModules hashes every module file and compares it with its record.
func (im *importer) verifyModules(records map[string][]byte) error {
	zips, err := im.zipHashes.hashes()
	if err != nil {
		return err
	}
	im.zips = zips
	covered := map[string]bool{}
	for _, mod := range im.man.Modules {
		im.rep.Modules++
		base, err := versionKey(mod.Path, mod.Version)
		if err != nil {
			return &FormatError{Msg: "manifest module " + mod.Path + "@" + mod.Version, Err: err}
		}
		zipH1, modH1 := mod.ZipHash, mod.ModHash
		if mod.Private {
			im.rep.Private++
			if !im.opts.Private(mod.Path) {
				return &IntegrityError{Key: base + "mod", Msg: "marked private, so it carries no checksum database record, but " + mod.Path + " is not private here (verify.private)"}
			}
		} else {
			text, ok := records[mod.Path+"@"+mod.Version]
			if !ok {
				return &IntegrityError{Key: base + "mod", Msg: "no checksum database record in the bundle vouches for " + mod.Path + "@" + mod.Version}
			}
			zipH1, modH1 = recordHashes(text, mod.Path, mod.Version)
		}
		for _, ext := range mod.Files {
			key := base + ext
			if _, ok := im.members[key]; !ok {
				return &FormatError{Msg: "module file " + key + " named by the manifest is missing"}
			}
			covered[key] = true
			if err := im.verifyFile(mod, key, ext, zipH1, modH1); err != nil {
				return err
			}
		}
	}
	for k := range im.members {
		if isModuleFile(k) && !covered[k] {
			return &FormatError{Msg: "module file " + k + " belongs to no module of the manifest"}
		}
	}
	return nil
}

// verifyFile checks one module file. A private module's hashes come from
// the manifest (the exporting side's record, when it had one): its
// members' SHA-256 are what vouch for it.
func (im *importer) verifyFile(mod Module, key, ext, zipH1, modH1 string) error {
	p := im.members[key].path
	switch ext {
	case "info":
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		var info struct{ Version string }
		if json.Unmarshal(data, &info) != nil || info.Version != mod.Version {
			return &IntegrityError{Key: key, Msg: "not the .info of " + mod.Version}
		}
		return nil
	case "mod":
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		h, err := checksum.HashGoMod(data)
		if err != nil {
			return err
		}
		if (modH1 == "" && !mod.Private) || (modH1 != "" && h != modH1) {
			return &IntegrityError{Key: key, Msg: fmt.Sprintf("go.mod hashes to %s, the checksum record says %q", h, modH1)}
		}
		im.hashes[key] = h
	case "zip":
		h := im.zips[key]
		if (zipH1 == "" && !mod.Private) || (zipH1 != "" && h != zipH1) {
			return &IntegrityError{Key: key, Msg: fmt.Sprintf("zip hashes to %s, the checksum record says %q", h, zipH1)}
		}
		im.hashes[key] = h
	}
	return nil
}

// plan decides what changes: module files already stored stay as they are
// (immutable, verified when admitted); other objects are replaced when
// their content differs. Admission groups: each module version (files
// with their hash sidecars), then tiles, lookups, dl/, vuln/, vuln/current,
// tree heads.
func (im *importer) plan() error {
	keys := make([]string, 0, len(im.man.Members))
	for _, m := range im.man.Members {
		keys = append(keys, m.Key)
	}
	rank := func(k string) int {
		switch {
		case isModuleFile(k):
			return 0
		case strings.Contains(k, "/tile/"):
			return 1
		case strings.Contains(k, "/lookup/"):
			return 2
		case strings.HasPrefix(k, "dl/"):
			return 3
		case k == VulnCurrent:
			return 5
		case strings.HasPrefix(k, "vuln/"):
			return 4
		}
		return 6 // sumdb/NAME/latest
	}
	slices.SortStableFunc(keys, func(a, b string) int { return rank(a) - rank(b) })
	var group []storage.Entry
	groupOf := ""
	flush := func() {
		if len(group) > 0 {
			im.order = append(im.order, group)
		}
		group, groupOf = nil, ""
	}
	for _, k := range keys {
		s := im.members[k]
		g := strconv.Itoa(rank(k))
		if rank(k) == 0 {
			g = k[:strings.LastIndexByte(k, '.')]
		}
		if g != groupOf {
			flush()
			groupOf = g
		}
		if h, ok := im.hashes[k]; ok {
			if cur, err := storage.ReadSmall(im.ctx, im.opts.Store, k+".h1", 4096); err != nil || string(cur) != h {
				group = append(group, storage.Entry{Key: k + ".h1", Data: []byte(h), Unsynced: true})
			}
		}
		action, err := im.change(k, s)
		if err != nil {
			return err
		}
		stays := action == "replace" && slices.ContainsFunc(im.older, func(p string) bool { return strings.HasPrefix(k, p) })
		if action == "" || im.keep[k] || stays {
			im.rep.Unchanged++
			continue
		}
		im.rep.Changes = append(im.rep.Changes, Change{Key: k, Action: action})
		group = append(group, storage.Entry{Key: k, Src: s.path, Unsynced: true}) // synced by syncStaged
	}
	flush()
	for _, h := range im.heads {
		tree, _ := tlog.ParseTree(noteText(h.new))
		im.rep.TreeHeads[h.name] = tree.N
	}
	return nil
}

// noteText is the text of a signed note (its signatures cut off).
func noteText(msg []byte) []byte {
	i := bytes.Index(msg, []byte("\n\n"))
	if i < 0 {
		return msg
	}
	return msg[:i+1]
}

// change says what admitting k does: "add", "replace" or "" (nothing).
func (im *importer) change(k string, s staged) (string, error) {
	info, err := im.opts.Store.Stat(im.ctx, k)
	if errors.Is(err, fs.ErrNotExist) {
		return "add", nil
	}
	if err != nil {
		return "", err
	}
	if isModuleFile(k) {
		return "", nil
	}
	if info.Size == s.size {
		sha, err := objectSHA(im.ctx, im.opts.Store, k)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return "", err
		}
		if sha == s.sha {
			return "", nil
		}
	}
	return "replace", nil
}

// admit writes the planned groups in order, then the tree heads.
func (im *importer) admit() error {
	bw, _ := im.opts.Store.(storage.BatchWriter)
	total := 0
	for _, g := range im.order {
		total += len(g)
	}
	done := 0
	for _, g := range im.order {
		if bw != nil {
			if _, err := bw.WriteBatch(im.ctx, g); err != nil {
				return fmt.Errorf("admitting %s: %w", g[len(g)-1].Key, err)
			}
		} else {
			for _, e := range g {
				if err := putEntry(im.ctx, im.opts.Store, e); err != nil {
					return err
				}
			}
		}
		done += len(g)
		if im.opts.Progress != nil {
			im.opts.Progress(done, total)
		}
		if im.opts.afterAdmit != nil {
			keys := make([]string, len(g))
			for i, e := range g {
				keys[i] = e.Key
			}
			if err := im.opts.afterAdmit(keys); err != nil {
				return err
			}
		}
	}
	for _, h := range im.heads {
		if err := checksum.ReplaceTreeHead(im.opts.StateDir, h.name, h.old, h.new); err != nil {
			return fmt.Errorf("trusted tree head of %s: %w", h.name, err)
		}
	}
	return nil
}

func putEntry(ctx context.Context, s storage.Store, e storage.Entry) error {
	var r io.Reader = bytes.NewReader(e.Data)
	if e.Src != "" {
		f, err := os.Open(e.Src)
		if err != nil {
			return err
		}
		defer f.Close()
		r = f
	}
	if _, err := s.Put(ctx, e.Key, r); err != nil {
		return fmt.Errorf("admitting %s: %w", e.Key, err)
	}
	return nil
}
