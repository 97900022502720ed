package scrub_test

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"io"
	iofs "io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/mod/module"
	"golang.org/x/mod/sumdb/dirhash"

	"github.com/modproxy/modproxy/internal/audit"
	"github.com/modproxy/modproxy/internal/checksum"
	"github.com/modproxy/modproxy/internal/quarantine"
	"github.com/modproxy/modproxy/internal/scrub"
	"github.com/modproxy/modproxy/internal/storage"
	storagefs "github.com/modproxy/modproxy/internal/storage/fs"
)

// moduleZip returns a module zip of mod@version and its h1: hash, computed
// by dirhash.HashZip (the go command's own function).
func moduleZip(t *testing.T, mod, version string, files map[string]string) ([]byte, string) {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, name := range slices.Sorted(maps.Keys(files)) {
		// Stored, not deflated, so that a test can flip a byte of content.
		w, err := zw.CreateHeader(&zip.FileHeader{Name: mod + "@" + version + "/" + name, Method: zip.Store})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(w, files[name]); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "m.zip")
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	h, err := dirhash.HashZip(p, dirhash.Hash1)
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), h
}

func modHash(t *testing.T, data string) string {
	t.Helper()
	h, err := checksum.HashGoMod([]byte(data))
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// dbRecord is a cached checksum database lookup answer.
func dbRecord(lines ...string) string {
	return "42\n" + strings.Join(lines, "\n") + "\n\n— sum.test signature\n"
}

// problem is what a test expects of a scrub.Problem.
type problem struct{ key, kind string }

// storeFixture fills a disk store with good and bad objects and returns
// the problems a scrub must find, in key order.
func storeFixture(t *testing.T) (*storagefs.Store, []problem, map[string][]byte) {
	t.Helper()
	s, err := storagefs.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	aZip, aH1 := moduleZip(t, "example.com/a", "v1.0.0", map[string]string{"go.mod": "module example.com/a\n", "a.go": "package a\n"})
	bZip, bH1 := moduleZip(t, "example.com/b", "v1.0.0", map[string]string{"go.mod": "module example.com/b\n", "b.go": "package b\n"})
	cZip, _ := moduleZip(t, "example.com/c", "v1.0.0", map[string]string{"go.mod": "module example.com/c\n"})
	_, otherH1 := moduleZip(t, "example.com/c", "v1.0.0", map[string]string{"go.mod": "module example.com/c\n", "evil.go": "package c\n"})
	tampered := bytes.Clone(bZip)
	i := bytes.Index(tampered, []byte("package b"))
	tampered[i] = 'P' // same size, wrong CRC-32: unreadable
	aMod, cMod, dMod := "module example.com/a\n", "module example.com/c\n", "module example.com/d\n"
	files := map[string][]byte{
		// a: good, hashes recorded at admission.
		"example.com/a/@v/v1.0.0.zip":    aZip,
		"example.com/a/@v/v1.0.0.zip.h1": []byte(aH1),
		"example.com/a/@v/v1.0.0.mod":    []byte(aMod),
		"example.com/a/@v/v1.0.0.mod.h1": []byte(modHash(t, aMod) + "\n"),
		"example.com/a/@v/v1.0.0.info":   []byte(`{"Version":"v1.0.0"}`),
		"example.com/a/@v/list":          []byte("v1.0.0\n"),
		// b: the stored zip is another (valid) zip than the one recorded.
		"example.com/b/@v/v1.0.0.zip":    aZip,
		"example.com/b/@v/v1.0.0.zip.h1": []byte(bH1),
		// c: no recorded hashes; the cached database record disagrees
		// about the zip and agrees about the go.mod.
		"example.com/c/@v/v1.0.0.zip": cZip,
		"example.com/c/@v/v1.0.0.mod": []byte(cMod),
		"sumdb/sum.test/lookup/example.com/c@v1.0.0": []byte(dbRecord(
			"example.com/c v1.0.0 "+otherH1, "example.com/c v1.0.0/go.mod "+modHash(t, cMod))),
		// d: nothing to compare with.
		"example.com/d/@v/v1.0.0.mod": []byte(dMod),
		// e: not a zip at all; f: a zip entry whose CRC does not match.
		"example.com/e/@v/v1.0.0.zip":    []byte("<html>502 Bad Gateway</html>"),
		"example.com/e/@v/v1.0.0.zip.h1": []byte(aH1),
		"example.com/f/@v/v1.0.0.zip":    tampered,
		"example.com/f/@v/v1.0.0.zip.h1": []byte(bH1),
	}
	for k, v := range files {
		if _, err := s.Put(context.Background(), k, bytes.NewReader(v)); err != nil {
			t.Fatal(err)
		}
	}
	want := []problem{
		{"example.com/b/@v/v1.0.0.zip", "recorded-mismatch"},
		{"example.com/c/@v/v1.0.0.zip", "database-mismatch"},
		{"example.com/d/@v/v1.0.0.mod", "unverifiable"},
		{"example.com/e/@v/v1.0.0.zip", "unreadable"},
		{"example.com/f/@v/v1.0.0.zip", "unreadable"},
	}
	return s, want, files
}

// plainObject hides the disk object's ReadAt (and its *os.File), as a
// bucket object would.
type plainObject struct{ storage.Object }

// plainStore serves plainObjects.
type plainStore struct{ *storagefs.Store }

func (p plainStore) Open(ctx context.Context, key string) (storage.Object, error) {
	o, err := p.Store.Open(ctx, key)
	if err != nil {
		return nil, err
	}
	return plainObject{o}, nil
}

func got(rep scrub.Report) []problem {
	var out []problem
	for _, p := range rep.Problems {
		out = append(out, problem{p.Key, p.Problem})
	}
	return out
}

// TestReport: a scrub re-hashes every stored zip and go.mod (not lists,
// .info or database files) and reports those that differ from the
// recorded hash or the cached database record, cannot be verified, or
// cannot be read; it changes nothing without Repair.
func TestReport(t *testing.T) {
	for _, kind := range []string{"disk", "bucket-like"} {
		t.Run(kind, func(t *testing.T) {
			fs, want, files := storeFixture(t)
			var s scrub.Store = fs
			if kind != "disk" {
				s = plainStore{fs}
			}
			var progress [][2]int
			rep, err := scrub.Run(context.Background(), scrub.Options{
				Store: s, SumDBNames: []string{"sum.test"}, TempDir: t.TempDir(),
				Progress: func(done, total int) { progress = append(progress, [2]int{done, total}) },
			})
			if err != nil {
				t.Fatal(err)
			}
			if g := got(rep); !slices.Equal(g, want) {
				t.Errorf("problems %v, want %v", g, want)
			}
			var bytes int64
			checked := 0
			for k, v := range files {
				if !strings.HasPrefix(k, "sumdb/") && (strings.HasSuffix(k, ".zip") || strings.HasSuffix(k, ".mod")) {
					checked++
					bytes += int64(len(v))
				}
			}
			if rep.Checked != checked || rep.Bytes != bytes {
				t.Errorf("checked %d objects, %d bytes; want %d, %d", rep.Checked, rep.Bytes, checked, bytes)
			}
			if len(progress) != checked || progress[len(progress)-1] != [2]int{checked, checked} {
				t.Errorf("progress %v", progress)
			}
			for _, p := range rep.Problems {
				if p.Repaired != "" {
					t.Errorf("%s repaired without Repair", p.Key)
				}
				switch p.Problem {
				case "recorded-mismatch":
					if p.Recorded == "" || p.Got == "" || p.Got == p.Recorded || p.Module != "example.com/b" || p.Version != "v1.0.0" {
						t.Errorf("recorded mismatch %+v", p)
					}
				case "database-mismatch":
					if p.Database == "" || p.Got == "" || p.Got == p.Database {
						t.Errorf("database mismatch %+v", p)
					}
				case "unreadable", "unverifiable":
					if p.Detail == "" {
						t.Errorf("%s without detail: %+v", p.Problem, p)
					}
				}
			}
			for k := range files {
				if _, err := fs.Stat(context.Background(), k); err != nil {
					t.Errorf("a scrub without Repair changed %s: %v", k, err)
				}
			}
		})
	}
}

// TestRepair: with Repair, every bad object goes to quarantine (byte for
// byte), leaves the store with its recorded hash, and is audited; good
// objects stay, and a second scrub finds nothing.
func TestRepair(t *testing.T) {
	s, want, files := storeFixture(t)
	dir := t.TempDir()
	q, err := quarantine.New(filepath.Join(dir, "quarantine"), 0)
	if err != nil {
		t.Fatal(err)
	}
	al, err := audit.Open(filepath.Join(dir, "audit.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer al.Close()
	opts := scrub.Options{Store: s, SumDBNames: []string{"sum.test"}, Repair: true, Quarantine: q, Audit: al, TempDir: t.TempDir()}
	rep, err := scrub.Run(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if g := got(rep); !slices.Equal(g, want) {
		t.Fatalf("problems %v, want %v", g, want)
	}
	bad := map[string]bool{}
	for _, p := range rep.Problems {
		bad[p.Key] = true
		if p.Repaired == "" {
			t.Errorf("%s not repaired", p.Key)
			continue
		}
		b, err := os.ReadFile(p.Repaired)
		if err != nil || !bytes.Equal(b, files[p.Key]) {
			t.Errorf("quarantined %s: %d bytes, %v; want the stored %d", p.Key, len(b), err, len(files[p.Key]))
		}
		for _, k := range []string{p.Key, p.Key + ".h1"} {
			if _, err := s.Stat(context.Background(), k); !errors.Is(err, iofs.ErrNotExist) {
				t.Errorf("%s still stored after repair: %v", k, err)
			}
		}
	}
	for k := range files {
		if bad[k] || bad[strings.TrimSuffix(k, ".h1")] {
			continue
		}
		if _, err := s.Stat(context.Background(), k); err != nil {
			t.Errorf("good object %s: %v", k, err)
		}
	}
	evs, err := audit.Read(al.Path())
	if err != nil {
		t.Fatal(err)
	}
	var targets []string
	for _, e := range evs {
		if e.Actor != "scrub" || e.Action != "quarantine" || e.Hashes["got"] == "" && !strings.HasPrefix(e.Reason, "unreadable") {
			t.Errorf("audit event %+v", e)
		}
		targets = append(targets, e.Target)
	}
	if want := []string{"example.com/b@v1.0.0", "example.com/c@v1.0.0", "example.com/d@v1.0.0", "example.com/e@v1.0.0", "example.com/f@v1.0.0"}; !slices.Equal(targets, want) {
		t.Errorf("audited %q, want %q", targets, want)
	}
	again, err := scrub.Run(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(again.Problems) != 0 || again.Checked != 3 {
		t.Errorf("second scrub: %d checked, problems %v; want 3 and none", again.Checked, got(again))
	}
}

func TestCancelled(t *testing.T) {
	s, _, _ := storeFixture(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := scrub.Run(ctx, scrub.Options{Store: s}); !errors.Is(err, context.Canceled) {
		t.Errorf("Run with a cancelled context = %v, want context.Canceled", err)
	}
}

// fakeLog is a private log of hosted modules for scrub tests.
type fakeLog struct {
	hashes    map[string]string // path@version[/go.mod] -> h1
	published []module.Version
}

func (f fakeLog) IsHosted(p string) bool { return strings.HasPrefix(p, "corp.example.com/") }
func (f fakeLog) Lookup(p, v string, goMod bool) (string, bool) {
	k := p + "@" + v
	if goMod {
		k += "/go.mod"
	}
	h, ok := f.hashes[k]
	return h, ok
}
func (f fakeLog) Published() []module.Version { return f.published }

// TestHostedObjectsCheckedAgainstTheLog: a hosted object whose content and
// recorded hash were both replaced is found through the log; one the log
// does not know is reported, and so is a published file missing from the
// store.
func TestHostedObjectsCheckedAgainstTheLog(t *testing.T) {
	ctx := context.Background()
	s, err := storagefs.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	_, goodH1 := moduleZip(t, "corp.example.com/a", "v1.0.0", map[string]string{"go.mod": "module corp.example.com/a\n"})
	forged, forgedH1 := moduleZip(t, "corp.example.com/a", "v1.0.0", map[string]string{"go.mod": "module corp.example.com/a\n", "x.go": "package a\n"})
	const mod = "module corp.example.com/a\n"
	for key, data := range map[string]string{
		"corp.example.com/a/@v/v1.0.0.zip": string(forged), "corp.example.com/a/@v/v1.0.0.zip.h1": forgedH1,
		"corp.example.com/a/@v/v1.0.0.mod": mod, "corp.example.com/a/@v/v1.0.0.mod.h1": modHash(t, mod),
		"corp.example.com/stray/@v/v1.0.0.mod": "module corp.example.com/stray\n",
	} {
		if _, err := s.Put(ctx, key, strings.NewReader(data)); err != nil {
			t.Fatal(err)
		}
	}
	log := fakeLog{
		hashes: map[string]string{"corp.example.com/a@v1.0.0": goodH1, "corp.example.com/a@v1.0.0/go.mod": modHash(t, mod),
			"corp.example.com/b@v1.0.0": goodH1, "corp.example.com/b@v1.0.0/go.mod": modHash(t, mod)},
		published: []module.Version{{Path: "corp.example.com/a", Version: "v1.0.0"}, {Path: "corp.example.com/b", Version: "v1.0.0"}},
	}
	rep, err := scrub.Run(ctx, scrub.Options{Store: s, TempDir: t.TempDir(), Hosted: log})
	if err != nil {
		t.Fatal(err)
	}
	var got []problem
	for _, p := range rep.Problems {
		got = append(got, problem{p.Key, p.Problem})
	}
	want := []problem{
		{"corp.example.com/a/@v/v1.0.0.zip", "log-mismatch"},
		{"corp.example.com/stray/@v/v1.0.0.mod", "not-in-log"},
		{"corp.example.com/b/@v/v1.0.0.zip", "missing"},
		{"corp.example.com/b/@v/v1.0.0.mod", "missing"},
	}
	if !slices.Equal(got, want) {
		t.Fatalf("problems %v, want %v", got, want)
	}
	if rep.Problems[0].Log != goodH1 || rep.Problems[0].Got != forgedH1 || rep.Problems[0].Recorded != forgedH1 {
		t.Fatalf("log-mismatch problem: %+v", rep.Problems[0])
	}
}
