package vulndb_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/modproxy/modproxy/internal/policy"
	"github.com/modproxy/modproxy/internal/storage"
	storagefs "github.com/modproxy/modproxy/internal/storage/fs"
	"github.com/modproxy/modproxy/internal/upstream/proxyclient"
	"github.com/modproxy/modproxy/internal/vulndb"
	"github.com/modproxy/modproxy/internal/vulndb/vulndbtest"
)

var t0 = time.Date(2099, 1, 2, 3, 4, 5, 0, time.UTC)

func entryA(modified time.Time) vulndbtest.Entry {
	return vulndbtest.Entry{ID: "GO-2099-0001", Modified: modified, Aliases: []string{"CVE-2099-0001"}, Summary: "a is bad",
		Affected: []vulndbtest.Affected{{Module: "example.com/a", Fixed: "1.1.0",
			Packages: []vulndbtest.Package{{Path: "example.com/a", Symbols: []string{"Hello"}}}}}}
}

func entryB(modified time.Time) vulndbtest.Entry {
	return vulndbtest.Entry{ID: "GO-2099-0002", Modified: modified,
		Affected: []vulndbtest.Affected{{Module: "example.com/b/v2", Introduced: "2.0.0", Fixed: "2.0.1"},
			{Module: "example.com/a", Introduced: "1.2.0-pre"}}}
}

func newStore(t *testing.T) storage.Store {
	t.Helper()
	st, err := storagefs.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func newMirror(t *testing.T, st storage.Store, url string) *vulndb.DB {
	t.Helper()
	c, err := proxyclient.New(url, proxyclient.Options{Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return vulndb.New(vulndb.Options{Store: st, Source: c, SourceName: url})
}

// read returns a served file of db, failing the test when it cannot.
func read(t *testing.T, db *vulndb.DB, name string) []byte {
	t.Helper()
	f, _, err := db.Open(context.Background(), name)
	if err != nil {
		t.Fatalf("Open(%s): %v", name, err)
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// served checks that db serves exactly files.
func served(t *testing.T, db *vulndb.DB, files vulndbtest.Files) {
	t.Helper()
	for name, want := range files {
		if got := read(t, db, name); !bytes.Equal(got, want) {
			t.Errorf("%s served %q, want %q", name, got, want)
		}
	}
}

// contents is every object under vuln/ with its content.
func contents(t *testing.T, st storage.Store) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := st.Walk(context.Background(), "vuln/", func(info storage.Info) error {
		o, err := st.Open(context.Background(), info.Key)
		if err != nil {
			return err
		}
		defer o.Close()
		b, err := io.ReadAll(o)
		out[info.Key] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestMirror(t *testing.T) {
	ctx := context.Background()
	st := newStore(t)
	files := vulndbtest.Build(t, entryA(t0))
	src := vulndbtest.NewServer(t, files)
	db := newMirror(t, st, src.URL())
	if _, _, err := db.Open(ctx, "index/db.json"); !errors.Is(err, vulndb.ErrNoDatabase) || !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Open before any refresh: %v, want ErrNoDatabase", err)
	}
	if err := db.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	served(t, db, files)
	if _, mod, err := db.Open(ctx, "ID/GO-2099-0001.json"); err != nil || !mod.Equal(t0) {
		t.Errorf("entry modified %v, %v; want %v", mod, err, t0)
	}
	if _, _, err := db.Open(ctx, "ID/GO-2099-9999.json"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("unknown entry: %v, want not exist", err)
	}
	advs, err := db.Advisories(ctx, "example.com/a")
	want := []policy.Advisory{{ID: "GO-2099-0001", Aliases: []string{"CVE-2099-0001"},
		Ranges: []policy.Range{{Events: []policy.Event{{Introduced: "0"}, {Fixed: "v1.1.0"}}}}}}
	if err != nil || !reflect.DeepEqual(advs, want) {
		t.Errorf("Advisories = %+v, %v; want %+v", advs, err, want)
	}
	if advs, err := db.Advisories(ctx, "example.com/none"); err != nil || advs != nil {
		t.Errorf("Advisories of an unnamed module = %v, %v", advs, err)
	}
	gen1 := db.Status().Generation

	// Unchanged db.json: nothing else is fetched, the generation stays.
	if err := db.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if n := src.Requests("index/modules.json"); n != 1 {
		t.Errorf("modules.json fetched %d times, want 1 (db.json unchanged)", n)
	}
	if g := db.Status().Generation; g != gen1 {
		t.Errorf("generation %s after an unchanged refresh, want %s", g, gen1)
	}

	// A new entry: a new generation; the unchanged entry is not fetched again.
	files2 := vulndbtest.Build(t, entryA(t0), entryB(t0.Add(time.Hour)))
	src.Set(files2)
	if err := db.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	served(t, db, files2)
	if n := src.Requests("ID/GO-2099-0001.json"); n != 1 {
		t.Errorf("unchanged entry fetched %d times, want 1", n)
	}
	advs, _ = db.Advisories(ctx, "example.com/a")
	if len(advs) != 2 || advs[1].ID != "GO-2099-0002" || advs[1].Ranges[0].Events[0].Introduced != "v1.2.0-pre" {
		t.Errorf("Advisories after the update = %+v", advs)
	}
	gen2 := db.Status().Generation

	// A third generation removes the first (the previous one stays).
	files3 := vulndbtest.Build(t, entryA(t0.Add(2*time.Hour)), entryB(t0.Add(time.Hour)))
	src.Set(files3)
	if err := db.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	served(t, db, files3)
	objs := contents(t, st)
	for key := range objs {
		if bytes.HasPrefix([]byte(key), []byte("vuln/gen/"+gen1)) {
			t.Errorf("%s of the first generation is still stored", key)
		}
	}
	if _, ok := objs["vuln/gen/"+gen2+"/manifest.json"]; !ok {
		t.Errorf("the previous generation %s was removed; it stays for readers in flight", gen2)
	}

	// Another process on the same store loads the current generation.
	other := vulndb.New(vulndb.Options{Store: st})
	if err := other.Load(ctx); err != nil {
		t.Fatal(err)
	}
	served(t, other, files3)
	if st := other.Status(); st.Entries != 2 || st.Source != src.URL() {
		t.Errorf("Status = %+v", st)
	}
}

// mirroredA is a mirror that has admitted the database of entryA.
func mirroredA(t *testing.T) (storage.Store, vulndbtest.Files, *vulndbtest.Server, *vulndb.DB) {
	t.Helper()
	st := newStore(t)
	files := vulndbtest.Build(t, entryA(t0))
	src := vulndbtest.NewServer(t, files)
	db := newMirror(t, st, src.URL())
	if err := db.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	return st, files, src, db
}

func TestRefreshFailureKeepsServing(t *testing.T) {
	ctx := context.Background()
	st, files, src, db := mirroredA(t)
	before := contents(t, st)
	for i, fail := range []string{"index/db.json", "index/modules.json", "ID/GO-2099-0002.json"} {
		src.Set(vulndbtest.Build(t, entryA(t0), entryB(t0.Add(time.Duration(i+1)*time.Hour))))
		src.Fail(fail, 500)
		if err := db.Refresh(ctx); err == nil {
			t.Fatalf("refresh with %s failing succeeded", fail)
		}
		src.Fail(fail, 0)
		if n := db.Failures(); n != int64(i+1) {
			t.Errorf("Failures = %d, want %d", n, i+1)
		}
		served(t, db, files)
		if after := contents(t, st); !reflect.DeepEqual(after, before) {
			t.Errorf("a failed refresh (%s) changed the store:\nbefore %v\nafter  %v", fail, keys(before), keys(after))
		}
	}
	if err := db.Refresh(ctx); err != nil {
		t.Fatalf("refresh after recovery: %v", err)
	}
	if _, _, err := db.Open(ctx, "ID/GO-2099-0002.json"); err != nil {
		t.Errorf("the recovered refresh did not admit the new entry: %v", err)
	}
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestConsistency: a database whose index names an entry that is missing
// or does not parse (or is another ID's) is refused whole.
func TestConsistency(t *testing.T) {
	ctx := context.Background()
	for name, spoil := range map[string]func(vulndbtest.Files){
		"missing entry": func(f vulndbtest.Files) { delete(f, "ID/GO-2099-0002.json") },
		"corrupt entry": func(f vulndbtest.Files) { f["ID/GO-2099-0002.json"] = []byte(`{"id": "GO-2099-0002", "affected": [`) },
		"other id":      func(f vulndbtest.Files) { f["ID/GO-2099-0002.json"] = f["ID/GO-2099-0001.json"] },
		"bad version": func(f vulndbtest.Files) {
			f["ID/GO-2099-0002.json"] = bytes.ReplaceAll(f["ID/GO-2099-0002.json"], []byte(`"2.0.1"`), []byte(`"two"`))
		},
		"corrupt modules": func(f vulndbtest.Files) { f["index/modules.json"] = []byte(`[{"path":`) },
		"corrupt db":      func(f vulndbtest.Files) { f["index/db.json"] = []byte(`{}`) },
	} {
		t.Run(name, func(t *testing.T) {
			st, files, src, db := mirroredA(t)
			before := contents(t, st)
			bad := vulndbtest.Build(t, entryA(t0), entryB(t0.Add(time.Hour)))
			spoil(bad)
			src.Set(bad)
			if err := db.Refresh(ctx); err == nil {
				t.Fatal("an inconsistent database was admitted")
			}
			served(t, db, files)
			if after := contents(t, st); !reflect.DeepEqual(after, before) {
				t.Errorf("the refused refresh changed the store: %v -> %v", keys(before), keys(after))
			}
		})
	}
}

func TestImport(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st := newStore(t)
	db := vulndb.New(vulndb.Options{Store: st})
	good := vulndbtest.Build(t, entryA(t0), entryB(t0))
	zipPath := filepath.Join(dir, "vulndb.zip")
	good.WriteZip(t, zipPath)
	if err := db.Import(ctx, zipPath); err != nil {
		t.Fatal(err)
	}
	served(t, db, good)
	if advs, _ := db.Advisories(ctx, "example.com/b/v2"); len(advs) != 1 || advs[0].Ranges[0].Events[1].Fixed != "v2.0.1" {
		t.Errorf("Advisories(example.com/b/v2) = %+v", advs)
	}
	before := contents(t, st)
	newer := vulndbtest.Build(t, entryA(t0), entryB(t0.Add(time.Hour)))

	corrupt := map[string]func(t *testing.T) string{
		"not a zip": func(t *testing.T) string {
			p := filepath.Join(dir, "garbage.zip")
			writeFile(t, p, []byte("PK\x03\x04 this is not a zip archive"))
			return p
		},
		"truncated": func(t *testing.T) string {
			p := filepath.Join(dir, "truncated.zip")
			newer.WriteZip(t, p)
			b := readFile(t, p)
			writeFile(t, p, b[:len(b)/2])
			return p
		},
		"corrupt entry": func(t *testing.T) string {
			f := vulndbtest.Build(t, entryA(t0), entryB(t0.Add(time.Hour)))
			f["ID/GO-2099-0002.json"] = []byte("{not json")
			p := filepath.Join(dir, "entry.zip")
			f.WriteZip(t, p)
			return p
		},
		"unlisted corrupt entry": func(t *testing.T) string {
			f := vulndbtest.Build(t, entryA(t0), entryB(t0.Add(time.Hour)))
			f["ID/GO-2099-0003.json"] = []byte(`{"id": "GO-2099-0004"}`)
			p := filepath.Join(dir, "unlisted.zip")
			f.WriteZip(t, p)
			return p
		},
		"missing entry": func(t *testing.T) string {
			f := vulndbtest.Build(t, entryA(t0), entryB(t0.Add(time.Hour)))
			delete(f, "ID/GO-2099-0002.json")
			p := filepath.Join(dir, "missing.zip")
			f.WriteZip(t, p)
			return p
		},
		"bad checksum": func(t *testing.T) string {
			p := filepath.Join(dir, "crc.zip")
			newer.WriteZip(t, p)
			b := readFile(t, p)
			// Change a byte of an entry's data (stored deflated): the CRC
			// or the deflate stream no longer matches.
			i := bytes.Index(b, []byte("ID/GO-2099-0002.json"))
			b[i+len("ID/GO-2099-0002.json")+8] ^= 0xff
			writeFile(t, p, b)
			return p
		},
	}
	for name, make := range corrupt {
		t.Run(name, func(t *testing.T) {
			p := make(t)
			err := db.Import(ctx, p)
			var ae *vulndb.ArchiveError
			t.Log(err)
			if !errors.As(err, &ae) {
				t.Fatalf("Import = %v, want an *ArchiveError", err)
			}
			served(t, db, good)
			if after := contents(t, st); !reflect.DeepEqual(after, before) {
				t.Errorf("a refused import changed the store: %v -> %v", keys(before), keys(after))
			}
		})
	}
	if err := db.Import(ctx, filepath.Join(dir, "absent.zip")); err == nil {
		t.Error("importing a missing file succeeded")
	}
}

func writeFile(t *testing.T, p string, b []byte) {
	t.Helper()
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestImportRepairsBrokenPointer: a pointer naming a generation that
// cannot be read serves nothing, and an import replaces it.
func TestImportRepairsBrokenPointer(t *testing.T) {
	ctx := context.Background()
	st := newStore(t)
	if _, err := st.Put(ctx, "vuln/current", bytes.NewReader([]byte(`{"generation": "gone"}`))); err != nil {
		t.Fatal(err)
	}
	db := vulndb.New(vulndb.Options{Store: st})
	if err := db.Load(ctx); err == nil {
		t.Fatal("Load of a pointer to a missing generation succeeded")
	}
	if _, _, err := db.Open(ctx, "index/db.json"); !errors.Is(err, vulndb.ErrNoDatabase) {
		t.Fatalf("Open: %v, want ErrNoDatabase", err)
	}
	files := vulndbtest.Build(t, entryA(t0))
	p := filepath.Join(t.TempDir(), "vulndb.zip")
	files.WriteZip(t, p)
	if err := db.Import(ctx, p); err != nil {
		t.Fatal(err)
	}
	served(t, db, files)
}
