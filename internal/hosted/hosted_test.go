package hosted_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/module"
	modzip "golang.org/x/mod/zip"

	"github.com/modproxy/modproxy/internal/event"
	"github.com/modproxy/modproxy/internal/hosted"
	storagefs "github.com/modproxy/modproxy/internal/storage/fs"
)

type sink struct{ got []event.Event }

func (s *sink) Emit(e event.Event) { s.got = append(s.got, e) }

type fixture struct {
	svc      *hosted.Service
	store    *storagefs.Store
	stateDir string
	events   *sink
	upstream map[string]bool // path@version an upstream serves
	opts     hosted.Options
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	st, err := storagefs.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{store: st, stateDir: filepath.Join(t.TempDir(), "hosted"), events: &sink{}, upstream: map[string]bool{}}
	f.opts = hosted.Options{
		Store: st, TempDir: st.TempDir(), StateDir: f.stateDir,
		Patterns: []hosted.Pattern{{Match: "corp.example.com/*"}, {Match: "team.example.com", Namespace: "team"}},
		Upstream: func(_ context.Context, _, path, version string) (bool, error) {
			return f.upstream[path+"@"+version], nil
		},
		Events: f.events,
		Now:    func() time.Time { return time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC) },
	}
	f.reopen(t)
	return f
}

func (f *fixture) reopen(t *testing.T) {
	t.Helper()
	svc, err := hosted.New(f.opts)
	if err != nil {
		t.Fatal(err)
	}
	f.svc = svc
}

// moduleZip builds the zip of a module from files with x/mod.
func moduleZip(t *testing.T, path, version string, files map[string]string) ([]byte, []byte) {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	if err := modzip.CreateFromDir(&buf, module.Version{Path: path, Version: version}, dir); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), []byte(files["go.mod"])
}

func (f *fixture) publish(ns, path, version string, zip, mod []byte) (hosted.Result, error) {
	return f.svc.Publish(context.Background(), hosted.Upload{Namespace: ns, Module: path, Version: version, Mod: mod, Zip: bytes.NewReader(zip), Identity: "ci"})
}

func libFiles(body string) map[string]string {
	return map[string]string{"go.mod": "module corp.example.com/lib\n\ngo 1.22\n", "lib.go": "package lib\n\n" + body + "\n"}
}

func TestPublishImmutable(t *testing.T) {
	f := newFixture(t)
	zip, mod := moduleZip(t, "corp.example.com/lib", "v1.0.0", libFiles("const X = 1"))
	res, err := f.publish("", "corp.example.com/lib", "v1.0.0", zip, mod)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Created || res.Index != 0 || !strings.HasPrefix(res.Zip, "h1:") || !strings.HasPrefix(res.Mod, "h1:") {
		t.Fatalf("first publish: %+v", res)
	}
	ctx := context.Background()
	for key, want := range map[string]string{
		"corp.example.com/lib/@v/v1.0.0.zip": string(zip), "corp.example.com/lib/@v/v1.0.0.mod": string(mod),
		"corp.example.com/lib/@v/v1.0.0.zip.h1": res.Zip, "corp.example.com/lib/@v/v1.0.0.mod.h1": res.Mod,
		"corp.example.com/lib/@v/v1.0.0.info": `{"Version":"v1.0.0","Time":"2026-12-04T12:00:00Z"}`,
	} {
		obj, err := f.store.Open(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(obj)
		obj.Close()
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != want {
			t.Errorf("%s = %q, want %q", key, got, want)
		}
	}
	again, err := f.publish("", "corp.example.com/lib", "v1.0.0", zip, mod)
	if err != nil || again.Created || again.Zip != res.Zip || again.Index != 0 {
		t.Fatalf("same bytes again: %+v, %v", again, err)
	}
	zip2, mod2 := moduleZip(t, "corp.example.com/lib", "v1.0.0", libFiles("const X = 2"))
	if _, err := f.publish("", "corp.example.com/lib", "v1.0.0", zip2, mod2); !errors.Is(err, hosted.ErrConflict) {
		t.Fatalf("other bytes: %v, want ErrConflict", err)
	}
	if len(f.events.got) != 1 || f.events.got[0].Type != event.Published || f.events.got[0].Version != "v1.0.0" || f.events.got[0].Identity != "ci" {
		t.Fatalf("events: %+v", f.events.got)
	}
	// The log survives a restart and still decides.
	f.reopen(t)
	if _, err := f.publish("", "corp.example.com/lib", "v1.0.0", zip2, mod2); !errors.Is(err, hosted.ErrConflict) {
		t.Fatalf("other bytes after restart: %v, want ErrConflict", err)
	}
	if e, ok := f.svc.Log().Lookup("corp.example.com/lib", "v1.0.0"); !ok || e.Zip != res.Zip || e.Mod != res.Mod {
		t.Fatalf("log lookup: %+v %v", e, ok)
	}
	if tree, err := f.svc.Log().Check(context.Background()); err != nil || tree.N != 1 {
		t.Fatalf("log check: %+v %v", tree, err)
	}
}

func TestPublishRefusals(t *testing.T) {
	f := newFixture(t)
	zip, mod := moduleZip(t, "corp.example.com/lib", "v1.0.0", libFiles("const X = 1"))
	other, otherMod := moduleZip(t, "public.example.com/x", "v1.0.0", map[string]string{"go.mod": "module public.example.com/x\n", "x.go": "package x\n"})
	team, teamMod := moduleZip(t, "team.example.com", "v1.0.0", map[string]string{"go.mod": "module team.example.com\n", "x.go": "package x\n"})
	f.upstream["corp.example.com/lib@v1.1.0"] = true
	zip11, mod11 := moduleZip(t, "corp.example.com/lib", "v1.1.0", libFiles("const X = 1"))
	for _, tc := range []struct {
		name, ns, path, version string
		zip, mod                []byte
		want                    error
	}{
		{"outside the patterns", "", "public.example.com/x", "v1.0.0", other, otherMod, hosted.ErrNotHosted},
		{"hosted in another namespace", "", "team.example.com", "v1.0.0", team, teamMod, hosted.ErrNotHosted},
		{"pseudo-version", "", "corp.example.com/lib", "v0.0.0-20260101000000-abcdefabcdef", zip, mod, hosted.ErrInvalid},
		{"non-canonical", "", "corp.example.com/lib", "v1.0", zip, mod, hosted.ErrInvalid},
		{"zip of another version", "", "corp.example.com/lib", "v1.0.1", zip, mod, hosted.ErrInvalid},
		{"mod differs from the zip's", "", "corp.example.com/lib", "v1.0.0", zip, []byte("module corp.example.com/lib\n"), hosted.ErrInvalid},
		{"mod of another module", "", "corp.example.com/lib", "v1.0.0", zip, []byte("module corp.example.com/other\n"), hosted.ErrInvalid},
		{"not a zip", "", "corp.example.com/lib", "v1.0.0", []byte("not a zip"), mod, hosted.ErrInvalid},
		{"served upstream", "", "corp.example.com/lib", "v1.1.0", zip11, mod11, hosted.ErrConflict},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := f.publish(tc.ns, tc.path, tc.version, tc.zip, tc.mod); !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
	if res, err := f.publish("team", "team.example.com", "v1.0.0", team, teamMod); err != nil || !res.Created {
		t.Fatalf("in its namespace: %+v %v", res, err)
	}
	if tree, _ := f.svc.Log().Head(); tree.N != 1 {
		t.Fatalf("log size %d after refusals, want 1", tree.N)
	}
}

func TestPublishSizeLimit(t *testing.T) {
	f := newFixture(t)
	f.opts.MaxZipSize = 100
	f.reopen(t)
	zip, mod := moduleZip(t, "corp.example.com/lib", "v1.0.0", libFiles(strings.Repeat("// padding\n", 100)))
	if _, err := f.publish("", "corp.example.com/lib", "v1.0.0", zip, mod); !errors.Is(err, hosted.ErrInvalid) {
		t.Fatalf("oversized zip: %v", err)
	}
	if ents, err := os.ReadDir(f.store.TempDir()); err != nil || len(ents) != 0 {
		t.Fatalf("spool left behind: %v %v", ents, err)
	}
}

func TestPurgeBlocksRepublish(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	zip, mod := moduleZip(t, "corp.example.com/lib", "v1.0.0", libFiles("const X = 1"))
	if _, err := f.publish("", "corp.example.com/lib", "v1.0.0", zip, mod); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.Purged(ctx, "admin", "corp.example.com/lib", only("v1.0.0"), "leaked a secret", false); err != nil {
		t.Fatal(err)
	}
	f.reopen(t) // the mark is persisted
	if _, err := f.publish("", "corp.example.com/lib", "v1.0.0", zip, mod); !errors.Is(err, hosted.ErrPurged) {
		t.Fatalf("re-publish after purge: %v, want ErrPurged", err)
	}
	if got := list(t, f, "corp.example.com/lib/@v/list"); got != "" {
		t.Fatalf("list after purge = %q", got)
	}
	if err := f.svc.Purged(ctx, "admin", "corp.example.com/lib", only("v1.0.0"), "fixed", true); err != nil {
		t.Fatal(err)
	}
	zip2, mod2 := moduleZip(t, "corp.example.com/lib", "v1.0.0", libFiles("const X = 2"))
	res, err := f.publish("", "corp.example.com/lib", "v1.0.0", zip2, mod2)
	if err != nil || !res.Created || res.Index != 1 {
		t.Fatalf("re-publish allowed by the purge: %+v %v", res, err)
	}
	if _, err := f.publish("", "corp.example.com/lib", "v1.0.0", zip, mod); !errors.Is(err, hosted.ErrConflict) {
		t.Fatalf("the allowance is used up: %v", err)
	}
	var types []event.Type
	for _, e := range f.events.got {
		types = append(types, e.Type)
	}
	if want := []event.Type{event.Published, event.Purged, event.Purged, event.Published}; !slices.Equal(types, want) {
		t.Fatalf("events %v, want %v", types, want)
	}
}

func only(version string) func(string) bool { return func(v string) bool { return v == version } }

func list(t *testing.T, f *fixture, path string) string {
	t.Helper()
	resp, err := f.svc.Fetcher("").Fetch(context.Background(), path)
	if err != nil {
		t.Fatalf("fetch %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestFetcherListsPublished(t *testing.T) {
	f := newFixture(t)
	for _, v := range []string{"v1.1.0", "v1.0.0", "v1.2.0-rc.1"} {
		zip, mod := moduleZip(t, "corp.example.com/lib", v, libFiles("const X = 1"))
		if _, err := f.publish("", "corp.example.com/lib", v, zip, mod); err != nil {
			t.Fatal(err)
		}
	}
	if got := list(t, f, "corp.example.com/lib/@v/list"); got != "v1.0.0\nv1.1.0\nv1.2.0-rc.1\n" {
		t.Fatalf("list = %q", got)
	}
	if got := list(t, f, "corp.example.com/lib/@latest"); !strings.Contains(got, `"Version":"v1.1.0"`) {
		t.Fatalf("latest = %q", got)
	}
	if got := list(t, f, "corp.example.com/other/@v/list"); got != "" {
		t.Fatalf("list of an unpublished hosted module = %q", got)
	}
	for _, p := range []string{"corp.example.com/other/@latest", "corp.example.com/lib/@v/v9.0.0.info", "corp.example.com/lib/@v/master.info", "public.example.com/x/@v/list"} {
		if _, err := f.svc.Fetcher("").Fetch(context.Background(), p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("fetch %s: %v, want not found", p, err)
		}
	}
}
