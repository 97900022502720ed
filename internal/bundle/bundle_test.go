package bundle_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb"

	"github.com/modproxy/modproxy/internal/bundle"
	"github.com/modproxy/modproxy/internal/checksum"
	"github.com/modproxy/modproxy/internal/storage"
	storagefs "github.com/modproxy/modproxy/internal/storage/fs"
	"github.com/modproxy/modproxy/internal/upstream/upstreamtest"
)

func mod(path, version string) upstreamtest.Module {
	pkg := path[strings.LastIndexByte(path, '/')+1:]
	return upstreamtest.Module{Path: path, Version: version, Files: map[string][]byte{
		"go.mod":    []byte("module " + path + "\n\ngo 1.21\n"),
		pkg + ".go": []byte("package " + pkg + "\n\nconst V = " + fmt.Sprintf("%q", version) + "\n"),
	}}
}

// cache is a modproxy cache directory: its store and its trusted tree heads.
type cache struct {
	dir   string
	store *storagefs.Store
}

func newCache(t *testing.T) *cache {
	t.Helper()
	dir := t.TempDir()
	st, err := storagefs.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	return &cache{dir: dir, store: st}
}

func (c *cache) stateDir() string { return filepath.Join(c.dir, "state", "sumdb") }

// warm fills the cache as a verifying modproxy does: the module files, and
// the checksum database's lookups, tiles and tree head read through the
// cache by a sumdb.Client whose tree head is the cache's state.
func (c *cache) warm(t *testing.T, up *upstreamtest.Server, mods ...upstreamtest.Module) {
	t.Helper()
	name, key := up.SumDB()
	ops := &warmOps{t: t, c: c, up: up, name: name, key: key}
	client := sumdb.NewClient(ops)
	for _, m := range mods {
		for _, ext := range []string{"info", "mod", "zip"} {
			k := m.Path + "/@v/" + m.Version + "." + ext
			c.put(t, k, get(t, up.URL()+"/"+k))
		}
		for _, v := range []string{m.Version, m.Version + "/go.mod"} {
			if _, err := client.Lookup(m.Path, v); err != nil {
				t.Fatalf("lookup %s@%s: %v", m.Path, v, err)
			}
		}
	}
	// The database's current tree head, as a client's /latest fetch leaves it.
	c.put(t, "sumdb/"+name+"/latest", get(t, up.URL()+"/sumdb/"+name+"/latest"))
}

func (c *cache) put(t *testing.T, key string, data []byte) {
	t.Helper()
	if _, err := c.store.Put(context.Background(), key, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
}

func get(t *testing.T, url string) []byte {
	t.Helper()
	b, code := tryGet(url)
	if code != http.StatusOK {
		t.Fatalf("GET %s: %d %s", url, code, b)
	}
	return b
}

func tryGet(url string) ([]byte, int) {
	resp, err := http.Get(url)
	if err != nil {
		return []byte(err.Error()), 0
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return []byte(err.Error()), 0
	}
	return b, resp.StatusCode
}

type warmOps struct {
	t         *testing.T
	c         *cache
	up        *upstreamtest.Server
	name, key string
}

func (o *warmOps) ReadRemote(path string) ([]byte, error) {
	b, code := tryGet(o.up.URL() + "/sumdb/" + o.name + path)
	if code != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %d", path, code)
	}
	o.c.put(o.t, "sumdb/"+o.name+path, b)
	return b, nil
}

func (o *warmOps) ReadConfig(file string) ([]byte, error) {
	if file == "key" {
		return []byte(o.key), nil
	}
	return checksum.ReadTreeHead(o.c.stateDir(), o.name)
}

func (o *warmOps) WriteConfig(file string, old, new []byte) error {
	return checksum.ReplaceTreeHead(o.c.stateDir(), o.name, old, new)
}

func (o *warmOps) ReadCache(string) ([]byte, error) { return nil, fs.ErrNotExist }
func (o *warmOps) WriteCache(string, []byte)        {}
func (o *warmOps) Log(string)                       {}
func (o *warmOps) SecurityError(msg string)         { o.t.Errorf("security error while warming: %s", msg) }

func (c *cache) trusted(t *testing.T, name string) []byte {
	t.Helper()
	b, err := checksum.ReadTreeHead(c.stateDir(), name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (c *cache) export(t *testing.T, up *upstreamtest.Server, since *bundle.Manifest, mods ...upstreamtest.Module) ([]byte, *bundle.Manifest) {
	t.Helper()
	name, key := up.SumDB()
	var vs []bundle.Version
	for _, m := range mods {
		vs = append(vs, bundle.Version{Path: m.Path, Version: m.Version})
	}
	var buf bytes.Buffer
	man, err := bundle.Export(context.Background(), bundle.ExportOptions{
		Store: c.store, DB: bundle.DB{Key: key, Trusted: c.trusted(t, name)}, Versions: vs, Since: since,
		Private: func(p string) bool { return strings.HasPrefix(p, "corp.example/") },
	}, &buf)
	if err != nil {
		t.Fatalf("export: %v", err)
	}
	return buf.Bytes(), man
}

func (c *cache) importOpts(up *upstreamtest.Server) bundle.ImportOptions {
	name, key := up.SumDB()
	return bundle.ImportOptions{Store: c.store, TempDir: c.store.TempDir(), Keys: map[string]string{name: key}, StateDir: c.stateDir(),
		Private: func(p string) bool { return strings.HasPrefix(p, "corp.example/") }}
}

func (c *cache) importBundle(t *testing.T, up *upstreamtest.Server, data []byte) *bundle.ImportReport {
	t.Helper()
	rep, err := bundle.Import(context.Background(), c.importOpts(up), bytes.NewReader(data))
	if err != nil {
		t.Fatalf("import: %v", err)
	}
	return rep
}

// tree returns every file of the cache directory with its SHA-256.
func (c *cache) tree(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(c.dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			if d != nil && d.IsDir() && err == nil {
				rel, _ := filepath.Rel(c.dir, p)
				out[rel+"/"] = "dir"
			}
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		s := sha256.Sum256(b)
		rel, _ := filepath.Rel(c.dir, p)
		out[rel] = hex.EncodeToString(s[:])
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func sameTree(t *testing.T, what string, got, want map[string]string) {
	t.Helper()
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %s differs (%q, want %q)", what, k, got[k], v)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("%s: %s is new", what, k)
		}
	}
}

var projectMods = []upstreamtest.Module{
	mod("example.com/a", "v1.0.0"), mod("example.com/b", "v1.2.0"), mod("example.com/c", "v0.3.1"),
}

// TestRoundTrip: a bundle from one cache imported into an empty one holds
// every file, the lookups all name the bundle's tree head, the sidecars
// hold the verified hashes, and the trusted tree head is the bundle's.
func TestRoundTrip(t *testing.T) {
	up := upstreamtest.New(t, projectMods)
	name, _ := up.SumDB()
	a := newCache(t)
	a.warm(t, up, projectMods...)
	data, man := a.export(t, up, nil, projectMods...)
	if len(man.Modules) != 3 || len(man.Databases) != 1 {
		t.Fatalf("manifest: %d modules, %d databases", len(man.Modules), len(man.Databases))
	}
	b := newCache(t)
	rep := b.importBundle(t, up, data)
	if rep.Modules != 3 || rep.TreeHeads[name] != man.Databases[0].Size {
		t.Errorf("report %+v, want 3 modules and tree size %d", rep, man.Databases[0].Size)
	}
	ctx := context.Background()
	for _, m := range projectMods {
		for _, ext := range []string{"info", "mod", "zip"} {
			k := m.Path + "/@v/" + m.Version + "." + ext
			got, err := storage.ReadSmall(ctx, b.store, k, 1<<30)
			if err != nil || !bytes.Equal(got, get(t, up.URL()+"/"+k)) {
				t.Errorf("%s not imported intact: %v", k, err)
			}
		}
		h1, err := storage.ReadSmall(ctx, b.store, m.Path+"/@v/"+m.Version+".zip.h1", 100)
		if err != nil || !strings.Contains(up.GoSum(m.Path, m.Version), string(h1)+"\n") {
			t.Errorf("zip sidecar %q (%v) is not the go.sum hash %q", h1, err, up.GoSum(m.Path, m.Version))
		}
	}
	if got := b.trusted(t, name); string(got) != man.Databases[0].TreeHead {
		t.Errorf("trusted tree head %q, want the bundle's", got)
	}
	// Importing again changes nothing.
	before := b.tree(t)
	rep = b.importBundle(t, up, data)
	if len(rep.Changes) != 0 || len(rep.TreeHeads) != 0 {
		t.Errorf("second import changed %v, heads %v", rep.Changes, rep.TreeHeads)
	}
	sameTree(t, "second import", b.tree(t), before)
}

// tarMembers splits a bundle into its tar members' byte ranges by
// rewriting it with one member changed.
func rewrite(t *testing.T, data []byte, fn func(name string, body []byte) ([]byte, bool)) []byte {
	t.Helper()
	return rewriteArchive(t, data, fn)
}

// TestRefusals: tampered bundles are refused with their error class and
// change nothing in the importing cache.
func TestRefusals(t *testing.T) {
	up := upstreamtest.New(t, projectMods)
	a := newCache(t)
	a.warm(t, up, projectMods...)
	data, man := a.export(t, up, nil, projectMods...)
	name := man.Databases[0].Name

	// A fork: a database with the same key whose log holds other records
	// in another order.
	signer, verifier := up.SumDBKeys()
	forked := upstreamtest.New(t, []upstreamtest.Module{mod("example.com/z", "v1.9.0"), projectMods[2], projectMods[1], projectMods[0]},
		upstreamtest.WithSumDBKeys(signer, verifier))
	f := newCache(t)
	f.warm(t, forked, mod("example.com/z", "v1.9.0"), projectMods[2], projectMods[1], projectMods[0], mod("example.com/z", "v1.9.0"))
	forkData, _ := f.export(t, forked, nil, projectMods...)

	zipKey := "example.com/b/@v/v1.2.0.zip"
	cases := []struct {
		name   string
		bundle []byte
		check  func(error) bool
	}{
		{"flipped byte in a zip", rewrite(t, data, func(n string, b []byte) ([]byte, bool) {
			if n == "objects/"+zipKey {
				b = slices.Clone(b)
				b[len(b)/2] ^= 1
				return b, true
			}
			return b, false
		}), func(err error) bool { return errors.As(err, new(*bundle.IntegrityError)) }},
		{"flipped byte with the manifest rewritten", rewriteManifestToo(t, data, zipKey), func(err error) bool { return errors.As(err, new(*bundle.IntegrityError)) }},
		{"missing tile", dropTile(t, data, name), func(err error) bool {
			return errors.As(err, new(*bundle.MissingTileError))
		}},
		{"records of a database the manifest does not list", addMember(t, data, "sumdb/other.example/lookup/example.com/a@v1.0.0", []byte("1\nforged\n\n")),
			func(err error) bool { return errors.As(err, new(*bundle.FormatError)) }},
		{"a module file no module entry names", addMember(t, data, "example.com/evil/@v/v1.0.0.mod", []byte("module example.com/evil\n")),
			func(err error) bool { return errors.As(err, new(*bundle.FormatError)) }},
		{"truncated archive", data[:len(data)*2/3], func(err error) bool { return errors.As(err, new(*bundle.FormatError)) }},
		{"truncated at a member boundary", cutManifest(t, data), func(err error) bool { return errors.As(err, new(*bundle.FormatError)) }},
	}
	b := newCache(t)
	b.importBundle(t, forked, forkData) // b trusts the forked database's tree
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := newCache(t)
			before := in.tree(t)
			_, err := bundle.Import(context.Background(), in.importOpts(up), bytes.NewReader(c.bundle))
			if err == nil || !c.check(err) {
				t.Fatalf("import: %v (%T), want a refusal of its class", err, err)
			}
			t.Logf("refused: %v", err)
			sameTree(t, "after refusal", in.tree(t), before)
		})
	}
	t.Run("forked tree head", func(t *testing.T) {
		before := b.tree(t)
		_, err := bundle.Import(context.Background(), b.importOpts(up), bytes.NewReader(data))
		var fe *bundle.ForkError
		if !errors.As(err, &fe) {
			t.Fatalf("import of the honest bundle into a cache trusting a fork: %v, want *ForkError", err)
		}
		t.Logf("refused: %v", err)
		sameTree(t, "after refusal", b.tree(t), before)
	})
}

// TestKilledImport: an import that fails after admitting some objects
// leaves whole objects, and the rerun ends as one clean import.
func TestKilledImport(t *testing.T) {
	up := upstreamtest.New(t, projectMods)
	a := newCache(t)
	a.warm(t, up, projectMods...)
	data, _ := a.export(t, up, nil, projectMods...)

	clean := newCache(t)
	clean.importBundle(t, up, data)

	for _, after := range []int{1, 2, 4, 6} {
		t.Run(fmt.Sprint(after), func(t *testing.T) {
			b := newCache(t)
			opts := b.importOpts(up)
			n := 0
			crash := errors.New("simulated crash")
			opts.SetAfterAdmit(func([]string) error {
				if n++; n == after {
					return crash
				}
				return nil
			})
			if _, err := bundle.Import(context.Background(), opts, bytes.NewReader(data)); !errors.Is(err, crash) {
				t.Fatalf("interrupted import: %v", err)
			}
			b.importBundle(t, up, data)
			sameTree(t, "rerun vs clean import", b.tree(t), clean.tree(t))
		})
	}
}

// TestSince: a second bundle holds only what the first lacked; imported in
// order, the inside has everything and trusts the newer tree head.
func TestSince(t *testing.T) {
	up := upstreamtest.New(t, projectMods)
	name, _ := up.SumDB()
	a := newCache(t)
	a.warm(t, up, projectMods...)
	first, man1 := a.export(t, up, nil, projectMods...)

	extra := mod("example.com/d", "v1.0.0")
	up.Add(extra)
	a.warm(t, up, extra)
	all := append(slices.Clone(projectMods), extra)
	second, man2 := a.export(t, up, man1, all...)
	if len(man2.Modules) != 1 || man2.Modules[0].Path != extra.Path || man2.Since != man1.ID() {
		t.Fatalf("--since bundle: modules %+v, since %q", man2.Modules, man2.Since)
	}
	if man2.Databases[0].Size <= man1.Databases[0].Size {
		t.Fatalf("tree did not grow: %d then %d", man1.Databases[0].Size, man2.Databases[0].Size)
	}
	for _, m := range projectMods {
		if !slices.ContainsFunc(man2.Members, func(mem bundle.Member) bool {
			return mem.Key == "sumdb/"+name+"/lookup/"+m.Path+"@"+m.Version
		}) {
			t.Errorf("the --since bundle lacks the record of %s, proved in its tree", m.Path)
		}
	}
	b := newCache(t)
	b.importBundle(t, up, first)
	b.importBundle(t, up, second)
	if got := b.trusted(t, name); string(got) != man2.Databases[0].TreeHead {
		t.Errorf("trusted tree head is not the second bundle's")
	}
	for _, m := range all {
		if _, err := b.store.Stat(context.Background(), m.Path+"/@v/"+m.Version+".zip"); err != nil {
			t.Errorf("%s@%s: %v", m.Path, m.Version, err)
		}
	}
	// The first again (older, consistent): accepted, the newer tree head
	// stays trusted and served, and so do the records proved in it.
	before := b.tree(t)
	if rep := b.importBundle(t, up, first); len(rep.Changes) != 0 {
		t.Errorf("an older bundle changed %v", rep.Changes)
	}
	sameTree(t, "older bundle", b.tree(t), before)
	if got := b.trusted(t, name); string(got) != man2.Databases[0].TreeHead {
		t.Errorf("an older bundle replaced the trusted tree head")
	}
	if got, err := storage.ReadSmall(context.Background(), b.store, "sumdb/"+name+"/latest", 1<<20); err != nil || string(got) != man2.Databases[0].TreeHead {
		t.Errorf("an older bundle replaced the served tree head (%v)", err)
	}
	// A third bundle of the chain proves its tree consistent with both
	// earlier heads: an inside that imported only the first accepts it.
	third := mod("example.com/e", "v1.0.0")
	up.Add(third)
	a.warm(t, up, third)
	all3 := append(slices.Clone(all), third)
	data3, man3 := a.export(t, up, man2, all3...)
	if got := man3.Databases[0].Previous; len(got) != 2 || got[0] != man2.Databases[0].TreeHead || got[1] != man1.Databases[0].TreeHead {
		t.Errorf("third bundle's previous heads: %d, want the second's and the first's", len(got))
	}
	skip := newCache(t)
	skip.importBundle(t, up, first)
	skip.importBundle(t, up, data3)

	// The second alone, into a cache that trusts nothing, fails: it lacks
	// the first bundle's modules' objects only, but its proofs may need the
	// first's complete tiles; either it imports or it names what is missing.
	c := newCache(t)
	if _, err := bundle.Import(context.Background(), c.importOpts(up), bytes.NewReader(second)); err != nil && !errors.As(err, new(*bundle.MissingTileError)) {
		t.Errorf("second bundle alone: %v", err)
	}
}

// TestPrivateAndExtras: private modules travel without records, marked,
// and are refused where the inside does not hold them private; vuln/ and
// requested dl/ objects travel verbatim, vuln/current admitted last.
func TestPrivateAndExtras(t *testing.T) {
	priv := mod("corp.example/secret", "v1.0.0")
	up := upstreamtest.New(t, append(slices.Clone(projectMods), priv))
	a := newCache(t)
	a.warm(t, up, projectMods...)
	for _, ext := range []string{"info", "mod", "zip"} {
		k := priv.Path + "/@v/" + priv.Version + "." + ext
		a.put(t, k, get(t, up.URL()+"/"+k))
	}
	for k, v := range map[string]string{
		"vuln/index/db.json": "{}", "vuln/ID/GO-1.json": "{\"id\":1}", bundle.VulnCurrent: "x",
		"dl/go1.22.1.linux-amd64.tar.gz": "one", "dl/go1.22.10.linux-amd64.tar.gz": "ten", "dl/listing.json": "[]",
	} {
		a.put(t, k, []byte(v))
	}
	name, key := up.SumDB()
	var buf bytes.Buffer
	man, err := bundle.Export(context.Background(), bundle.ExportOptions{
		Store: a.store, DB: bundle.DB{Key: key, Trusted: a.trusted(t, name)},
		Versions:   []bundle.Version{{Path: priv.Path, Version: priv.Version}, {Path: "example.com/a", Version: "v1.0.0"}},
		Private:    func(p string) bool { return strings.HasPrefix(p, "corp.example/") },
		Toolchains: []string{"go1.22.1"},
	}, &buf)
	if err != nil {
		t.Fatal(err)
	}
	if m, ok := findModule(man, priv.Path); !ok || !m.Private || man.PrivateNote == "" {
		t.Errorf("private module not marked: %+v, note %q", m, man.PrivateNote)
	}
	var keys []string
	for _, m := range man.Members {
		keys = append(keys, m.Key)
	}
	for _, want := range []string{"vuln/index/db.json", "vuln/ID/GO-1.json", bundle.VulnCurrent, "dl/go1.22.1.linux-amd64.tar.gz"} {
		if !slices.Contains(keys, want) {
			t.Errorf("bundle lacks %s", want)
		}
	}
	if slices.Contains(keys, "dl/go1.22.10.linux-amd64.tar.gz") || slices.Contains(keys, "dl/listing.json") {
		t.Errorf("bundle holds toolchain objects not asked for: %v", keys)
	}
	b := newCache(t)
	var order []string
	opts := b.importOpts(up)
	opts.SetAfterAdmit(func(ks []string) error { order = append(order, ks...); return nil })
	if _, err := bundle.Import(context.Background(), opts, bytes.NewReader(buf.Bytes())); err != nil {
		t.Fatal(err)
	}
	cur := slices.Index(order, bundle.VulnCurrent)
	if cur < 0 || cur < slices.Index(order, "vuln/ID/GO-1.json") || cur < slices.Index(order, "vuln/index/db.json") {
		t.Errorf("vuln/current not admitted after the other vuln/ objects: %v", order)
	}
	// An inside that does not hold corp.example private refuses.
	c := newCache(t)
	opts = c.importOpts(up)
	opts.Private = nil
	before := c.tree(t)
	_, err = bundle.Import(context.Background(), opts, bytes.NewReader(buf.Bytes()))
	if !errors.As(err, new(*bundle.IntegrityError)) {
		t.Errorf("private module where it is public: %v, want *IntegrityError", err)
	}
	sameTree(t, "after refusal", c.tree(t), before)
}

func findModule(m *bundle.Manifest, path string) (bundle.Module, bool) {
	for _, mod := range m.Modules {
		if mod.Path == path {
			return mod, true
		}
	}
	return bundle.Module{}, false
}

// TestSelect: --all takes every cached version (go.mod-only ones without a
// zip), --namespace the cached versions of the modules a namespace served,
// --from what the go.mod and go.sum reference.
func TestSelect(t *testing.T) {
	up := upstreamtest.New(t, projectMods)
	a := newCache(t)
	a.warm(t, up, projectMods...)
	ctx := context.Background()
	if err := a.store.Delete(ctx, "example.com/c/@v/v0.3.1.zip"); err != nil {
		t.Fatal(err)
	}
	name, key := up.SumDB()
	var buf bytes.Buffer
	man, err := bundle.Export(ctx, bundle.ExportOptions{Store: a.store, DB: bundle.DB{Key: key, Trusted: a.trusted(t, name)}, All: true}, &buf)
	if err != nil {
		t.Fatal(err)
	}
	if len(man.Modules) != 3 {
		t.Fatalf("--all: %+v", man.Modules)
	}
	if c, _ := findModule(man, "example.com/c"); slices.Contains(c.Files, "zip") || c.ZipHash != "" || c.ModHash == "" {
		t.Errorf("go.mod-only version: %+v", c)
	}
	if _, err := bundle.Import(ctx, newCache(t).importOpts(up), bytes.NewReader(buf.Bytes())); err != nil {
		t.Errorf("import of --all: %v", err)
	}

	_, err = bundle.Export(ctx, bundle.ExportOptions{Store: a.store, DB: bundle.DB{Key: key, Trusted: a.trusted(t, name)},
		Versions: []bundle.Version{{Path: "example.com/c", Version: "v0.3.1"}}}, io.Discard)
	var me *bundle.MissingError
	if !errors.As(err, &me) || len(me.Keys) != 1 || me.Keys[0] != "example.com/c/@v/v0.3.1.zip" {
		t.Errorf("export of an uncached zip: %v", err)
	}

	a.put(t, "ns/prod/example.com/b/@v/list", []byte("v1.2.0\n"))
	vs, err := bundle.NamespaceVersions(ctx, a.store, "prod")
	if err != nil || len(vs) != 1 || vs[0].Path != "example.com/b" || vs[0].Version != "v1.2.0" || vs[0].GoModOnly {
		t.Errorf("namespace prod: %+v, %v", vs, err)
	}
	if _, err := bundle.NamespaceVersions(ctx, a.store, "none"); err == nil {
		t.Errorf("a namespace that served nothing selected something")
	}

	dir := t.TempDir()
	gomod := "module example.com/p\n\ngo 1.21\n\nrequire example.com/a v1.0.0\n"
	gosum := up.GoSum("example.com/a", "v1.0.0") + "example.com/c v0.3.1/go.mod " + strings.Fields(up.GoSum("example.com/c", "v0.3.1"))[5] + "\n"
	for n, c := range map[string]string{"go.mod": gomod, "go.sum": gosum} {
		if err := os.WriteFile(filepath.Join(dir, n), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	vs, err = bundle.VersionsFrom(ctx, []string{dir})
	if err != nil {
		t.Fatal(err)
	}
	want := []bundle.Version{{Path: "example.com/a", Version: "v1.0.0"}, {Path: "example.com/c", Version: "v0.3.1", GoModOnly: true}}
	if !slices.Equal(vs, want) {
		t.Errorf("--from: %+v, want %+v", vs, want)
	}
}
