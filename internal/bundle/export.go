package bundle

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"slices"
	"strings"
	"time"

	"golang.org/x/mod/module"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/modproxy/modproxy/internal/artifact"
	"github.com/modproxy/modproxy/internal/checksum"
	"github.com/modproxy/modproxy/internal/storage"
)

// DB is a checksum database: its name and verifier key ("NAME+hash+key"),
// and the signed tree head its side trusts (the verifier's persisted
// state; empty when none yet).
type DB struct {
	Key     string
	Trusted []byte
}

// Version is one module version to export and what of it is needed.
type Version struct {
	Path, Version string
	// GoModOnly: only the .mod (and the .info when cached) is needed.
	GoModOnly bool
}

// ExportOptions configures Export.
type ExportOptions struct {
	Store storage.Store
	// DB is the checksum database whose records vouch for public modules.
	DB DB
	// Private reports whether a module path is private (no checksum
	// database record; included and marked). Nil means none is.
	Private func(path string) bool
	// Versions are the versions to export; with All, every cached version
	// is, and Versions is ignored.
	Versions []Version
	All      bool
	// Since, when set, is the manifest of an earlier bundle: what it held
	// unchanged is left out (the records of its modules come again, proved
	// in the new tree).
	Since *Manifest
	// Toolchains are toolchain versions ("go1.X.Y"): every "dl/" object
	// whose name holds one is included. Every "vuln/" object always is.
	Toolchains []string
	// Progress, when set, is called with the members written so far and
	// their total.
	Progress func(done, total int)
	// Now is the creation time recorded (default time.Now).
	Now func() time.Time
}

// MissingError lists selected module files that are not in the cache.
type MissingError struct {
	Keys []string
}

func (e *MissingError) Error() string {
	return fmt.Sprintf("%d selected module files are not in the cache (first: %s): warm the cache (modproxy prefetch) and export again", len(e.Keys), e.Keys[0])
}

// member is one object to write.
type member struct {
	key  string
	data []byte // nil: read from the store
}

// Export writes a bundle of the selected versions to w and returns its
// manifest. It only reads the store, so it can run beside a live server.
// Errors: *MissingError for selected files not cached, *MissingTileError
// when the cache lacks a tile a proof needs, *ForkError when the cache's
// records are not consistent with its trusted tree head; others are the
// store's or w's.
func Export(ctx context.Context, opts ExportOptions, w io.Writer) (*Manifest, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Private == nil {
		opts.Private = func(string) bool { return false }
	}
	versions := opts.Versions
	if opts.All {
		var err error
		if versions, err = cachedVersions(ctx, opts.Store); err != nil {
			return nil, err
		}
	}
	man := &Manifest{Format: FormatName, Version: FormatVersion, Created: opts.Now().UTC()}
	if opts.Since != nil {
		man.Since = opts.Since.ID()
	}
	var files []member
	var missing []string
	var public []Module
	for _, v := range versions {
		if opts.Since != nil {
			// The earlier bundle has its files; its record comes again,
			// proved in this bundle's tree, so that a client that has
			// seen this tree can still verify it.
			if m, ok := opts.Since.module(v.Path, v.Version); ok {
				if !m.Private {
					public = append(public, m)
				}
				continue
			}
		}
		mod := Module{Path: v.Path, Version: v.Version, Private: opts.Private(v.Path)}
		base, err := versionKey(v.Path, v.Version)
		if err != nil {
			return nil, err
		}
		for _, ext := range []string{"info", "mod", "zip"} {
			if ext == "zip" && v.GoModOnly {
				continue
			}
			_, err := opts.Store.Stat(ctx, base+ext)
			if errors.Is(err, fs.ErrNotExist) {
				if ext != "info" {
					missing = append(missing, base+ext)
				}
				continue
			}
			if err != nil {
				return nil, err
			}
			mod.Files = append(mod.Files, ext)
			files = append(files, member{key: base + ext})
		}
		if mod.Private {
			mod.ModHash = recordedHash(ctx, opts.Store, base+"mod")
			if !v.GoModOnly {
				mod.ZipHash = recordedHash(ctx, opts.Store, base+"zip")
			}
		} else {
			public = append(public, mod)
		}
		man.Modules = append(man.Modules, mod)
	}
	if len(missing) > 0 {
		return nil, &MissingError{Keys: missing}
	}
	var sumdb []member
	if len(public) > 0 {
		db, recs, tiles, err := exportRecords(ctx, opts, public)
		if err != nil {
			return nil, err
		}
		man.Databases = []Database{db}
		for i := range man.Modules {
			if h, ok := recs[man.Modules[i].Path+"@"+man.Modules[i].Version]; ok {
				man.Modules[i].ZipHash, man.Modules[i].ModHash, man.Modules[i].Database = h[0], h[1], db.Name
				if !slices.Contains(man.Modules[i].Files, "zip") {
					man.Modules[i].ZipHash = ""
				}
			}
		}
		sumdb = tiles
	}
	if slices.ContainsFunc(man.Modules, func(m Module) bool { return m.Private }) {
		man.PrivateNote = "modules marked private have no checksum database record: they were admitted on their upstream's word, and an importer admits them only where its own private patterns match them"
	}
	extra, err := extraObjects(ctx, opts)
	if err != nil {
		return nil, err
	}
	// Order: module files, tiles and lookups, extra objects (vuln/current
	// last of them), the tree head.
	all := files
	if len(sumdb) > 0 {
		all = append(all, sumdb[:len(sumdb)-1]...)
	}
	all = append(all, extra...)
	if len(sumdb) > 0 {
		all = append(all, sumdb[len(sumdb)-1])
	}
	aw := newArchiveWriter(w, man.Created)
	for i, m := range all {
		if err := writeMember(ctx, opts, aw, m); err != nil {
			return nil, err
		}
		if opts.Progress != nil {
			opts.Progress(i+1, len(all))
		}
	}
	man.Members = aw.members
	slices.SortFunc(man.Members, func(a, b Member) int { return strings.Compare(a.Key, b.Key) })
	if err := aw.finish(man); err != nil {
		return nil, err
	}
	return man, nil
}

// writeMember writes one object, unless the Since bundle held it unchanged.
func writeMember(ctx context.Context, opts ExportOptions, aw *archiveWriter, m member) error {
	if m.data != nil {
		if opts.Since != nil && opts.Since.has(m.key, sum(m.data)) {
			return nil
		}
		return aw.add(m.key, int64(len(m.data)), strings.NewReader(string(m.data)))
	}
	if opts.Since != nil && !isModuleFile(m.key) {
		sha, err := objectSHA(ctx, opts.Store, m.key)
		if err != nil {
			return err
		}
		if opts.Since.has(m.key, sha) {
			return nil
		}
	}
	o, err := opts.Store.Open(ctx, m.key)
	if err != nil {
		return fmt.Errorf("export %s: %w", m.key, err)
	}
	defer o.Close()
	return aw.add(m.key, o.Info().Size, o)
}

// exportRecords reads the lookup records of the public modules, chooses
// the tree head to prove them against and returns the database entry, the
// hashes by "path@version" and the sumdb members: tiles, lookups (with
// the chosen tree head) and, last, the tree head.
func exportRecords(ctx context.Context, opts ExportOptions, mods []Module) (Database, map[string][2]string, []member, error) {
	v, err := note.NewVerifier(opts.DB.Key)
	if err != nil {
		return Database{}, nil, nil, fmt.Errorf("checksum database key: %w", err)
	}
	name := v.Name()
	type rec struct {
		key  string
		id   int64
		text []byte
		what string
	}
	var recs []rec
	hashes := map[string][2]string{}
	heads := [][]byte{opts.DB.Trusted}
	for _, m := range mods {
		key, err := lookupKey(name, m.Path, m.Version)
		if err != nil {
			return Database{}, nil, nil, err
		}
		data, err := storage.ReadSmall(ctx, opts.Store, key, 1<<20)
		if errors.Is(err, fs.ErrNotExist) {
			return Database{}, nil, nil, fmt.Errorf("%s@%s has no checksum database record in the cache (%s): was it admitted with verification off?", m.Path, m.Version, key)
		}
		if err != nil {
			return Database{}, nil, nil, err
		}
		id, text, signed, err := tlog.ParseRecord(data)
		if err != nil {
			return Database{}, nil, nil, fmt.Errorf("cached record %s: %w", key, err)
		}
		z, md := recordHashes(text, m.Path, m.Version)
		if md == "" || (z == "" && slices.Contains(m.Files, "zip")) {
			return Database{}, nil, nil, fmt.Errorf("cached record %s lacks the h1: hashes of %s@%s", key, m.Path, m.Version)
		}
		hashes[m.Path+"@"+m.Version] = [2]string{z, md}
		recs = append(recs, rec{key: key, id: id, text: text, what: "the record of " + m.Path + "@" + m.Version})
		heads = append(heads, signed)
	}
	if latest, err := storage.ReadSmall(ctx, opts.Store, "sumdb/"+name+"/latest", 1<<20); err == nil {
		heads = append(heads, latest)
	}
	var trusted, since tlog.Tree
	if len(opts.DB.Trusted) > 0 {
		if trusted, err = openTree(opts.DB.Trusted, v); err != nil {
			return Database{}, nil, nil, err
		}
	}
	// The tree heads of the earlier bundles of the --since chain: an inside
	// client may have seen any of them, so the new tree is proved
	// consistent with each (and their tiles travel).
	var previous []string
	var earlier []tlog.Tree
	if opts.Since != nil {
		for _, d := range opts.Since.Databases {
			if d.Name != name {
				continue
			}
			for _, h := range append([]string{d.TreeHead}, d.Previous...) {
				t, err := openTree([]byte(h), v)
				if err != nil {
					return Database{}, nil, nil, fmt.Errorf("the earlier bundle's %w", err)
				}
				if !slices.Contains(previous, h) {
					previous = append(previous, h)
					earlier = append(earlier, t)
				}
			}
			since = earlier[0]
		}
	}
	// Candidate heads, largest first: the first against which every record
	// and the trusted (and earlier bundle's) tree heads are proved wins.
	type cand struct {
		msg  []byte
		tree tlog.Tree
	}
	var cands []cand
	for _, h := range heads {
		if len(h) == 0 {
			continue
		}
		t, err := openTree(h, v)
		if err != nil || t.N < trusted.N || t.N < since.N || slices.ContainsFunc(cands, func(c cand) bool { return c.tree == t }) {
			continue
		}
		cands = append(cands, cand{h, t})
	}
	slices.SortFunc(cands, func(a, b cand) int { return cmp.Compare(b.tree.N, a.tree.N) })
	var firstErr error
	for _, c := range cands {
		tr := newTileReader(ctx, name, storeTiles{opts.Store})
		err := consistent(tr, trusted, c.tree)
		if err != nil && !errors.As(err, new(*MissingTileError)) {
			return Database{}, nil, nil, &ForkError{DB: name, Trusted: trusted.N, Bundle: c.tree.N, Err: err}
		}
		for _, e := range earlier {
			if err != nil {
				break
			}
			if err = consistent(tr, e, c.tree); err != nil && !errors.As(err, new(*MissingTileError)) {
				return Database{}, nil, nil, &ForkError{DB: name, Trusted: e.N, Bundle: c.tree.N, Err: fmt.Errorf("not consistent with the earlier bundle's tree head: %w", err)}
			}
		}
		for _, r := range recs {
			if err != nil {
				break
			}
			err = proveRecord(tr, c.tree, r.id, r.text, r.what)
		}
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		var out []member
		for _, p := range tr.tiles() {
			out = append(out, member{key: "sumdb/" + name + "/" + p, data: tr.read[p]})
		}
		slices.SortFunc(recs, func(a, b rec) int { return strings.Compare(a.key, b.key) })
		for _, r := range recs {
			msg, err := tlog.FormatRecord(r.id, r.text)
			if err != nil {
				return Database{}, nil, nil, err
			}
			out = append(out, member{key: r.key, data: append(msg, c.msg...)})
		}
		out = append(out, member{key: "sumdb/" + name + "/latest", data: c.msg})
		db := Database{Name: name, TreeHead: string(c.msg), Size: c.tree.N, Previous: previous}
		if len(opts.DB.Trusted) > 0 && string(opts.DB.Trusted) != string(c.msg) {
			db.Trusted = string(opts.DB.Trusted)
		}
		return db, hashes, out, nil
	}
	if firstErr == nil {
		firstErr = errors.New("no signed tree head of the database is cached")
	}
	return Database{}, nil, nil, fmt.Errorf("checksum database %s: the cache cannot prove its records: %w", name, firstErr)
}

// extraObjects are the vuln/ objects (vuln/current last) and the dl/
// objects of the requested toolchains.
func extraObjects(ctx context.Context, opts ExportOptions) ([]member, error) {
	var vuln, dl []member
	current := false
	err := opts.Store.Walk(ctx, "vuln/", func(i storage.Info) error {
		if i.Key == VulnCurrent {
			current = true
		} else {
			vuln = append(vuln, member{key: i.Key})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(opts.Toolchains) > 0 {
		err = opts.Store.Walk(ctx, "dl/", func(i storage.Info) error {
			if slices.ContainsFunc(opts.Toolchains, func(v string) bool { return namesToolchain(i.Key, v) }) {
				dl = append(dl, member{key: i.Key})
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	byKey := func(a, b member) int { return strings.Compare(a.key, b.key) }
	slices.SortFunc(vuln, byKey)
	slices.SortFunc(dl, byKey)
	out := append(dl, vuln...)
	if current {
		out = append(out, member{key: VulnCurrent})
	}
	return out, nil
}

// namesToolchain reports whether key holds version ("go1.22.3") as a
// whole: not followed by a digit, so that go1.22.1 does not take go1.22.10.
func namesToolchain(key, version string) bool {
	for rest := key; ; {
		i := strings.Index(rest, version)
		if i < 0 {
			return false
		}
		rest = rest[i+len(version):]
		if rest == "" || rest[0] < '0' || rest[0] > '9' {
			return true
		}
	}
}

// cachedVersions lists every module version with a .mod in the store.
func cachedVersions(ctx context.Context, s storage.Store) ([]Version, error) {
	return cachedVersionsUnder(ctx, s, "")
}

// cachedVersionsUnder lists the module versions with a .mod whose keys
// start with prefix.
func cachedVersionsUnder(ctx context.Context, s storage.Store, prefix string) ([]Version, error) {
	zips := map[module.Version]bool{}
	mods := map[module.Version]bool{}
	err := s.Walk(ctx, prefix, func(i storage.Info) error {
		req, err := artifact.Parse(i.Key)
		if err != nil || (req.Kind != artifact.Mod && req.Kind != artifact.Zip) || req.Key != i.Key {
			return nil
		}
		mv := module.Version{Path: req.Module, Version: req.Version}
		if req.Kind == artifact.Zip {
			zips[mv] = true
		} else {
			mods[mv] = true
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	var out []Version
	for mv := range mods {
		out = append(out, Version{Path: mv.Path, Version: mv.Version, GoModOnly: !zips[mv]})
	}
	SortVersions(out)
	return out, nil
}

// SortVersions sorts by module path, then version text.
func SortVersions(vs []Version) {
	slices.SortFunc(vs, func(a, b Version) int {
		return cmp.Or(strings.Compare(a.Path, b.Path), strings.Compare(a.Version, b.Version))
	})
}

// versionKey is the store key of path@version's files without the
// extension: "ESCAPED/@v/VERSION.".
func versionKey(path, version string) (string, error) {
	ep, ev, err := escape(path, version)
	return ep + "/@v/" + ev + ".", err
}

// lookupKey is the store key of path@version's record in database db.
func lookupKey(db, path, version string) (string, error) {
	ep, ev, err := escape(path, version)
	return "sumdb/" + db + "/lookup/" + ep + "@" + ev, err
}

func escape(path, version string) (ep, ev string, err error) {
	if ep, err = module.EscapePath(path); err == nil {
		ev, err = module.EscapeVersion(version)
	}
	return ep, ev, err
}

func isModuleFile(key string) bool {
	req, err := artifact.Parse(key)
	return err == nil && (req.Kind == artifact.Info || req.Kind == artifact.Mod || req.Kind == artifact.Zip)
}

// recordedHash returns the h1: hash recorded beside key (its sidecar), or
// "" when there is no valid one.
func recordedHash(ctx context.Context, s storage.Store, key string) string {
	b, err := storage.ReadSmall(ctx, s, key+".h1", 4096)
	if err != nil || !checksum.ValidH1(string(b)) {
		return ""
	}
	return string(b)
}

// objectSHA returns the hex SHA-256 of a stored object.
func objectSHA(ctx context.Context, s storage.Store, key string) (string, error) {
	o, err := s.Open(ctx, key)
	if err != nil {
		return "", err
	}
	defer o.Close()
	h := newHash()
	if _, err := io.Copy(h, o); err != nil {
		return "", fmt.Errorf("reading %s: %w", key, err)
	}
	return h.hex(), nil
}
