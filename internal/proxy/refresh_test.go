package proxy_test

import (
	"context"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/modproxy/modproxy/internal/proxy"
	storagefs "github.com/modproxy/modproxy/internal/storage/fs"
	"github.com/modproxy/modproxy/internal/upstream/upstreamtest"
)

// TestRefresh: with a long TTL, a new upstream version is invisible in
// the cached list and @latest, and a version asked before it existed is
// remembered as missing; after Refresh of the module path the next
// requests fetch again and see it. Another module keeps its fresh list.
func TestRefresh(t *testing.T) {
	mod := func(path, version string) upstreamtest.Module {
		return upstreamtest.Module{Path: path, Version: version, Files: map[string][]byte{"go.mod": []byte("module " + path + "\n")}}
	}
	up := upstreamtest.New(t, []upstreamtest.Module{mod("example.com/m", "v1.0.0"), mod("example.com/other", "v1.0.0")}, upstreamtest.WithoutSumDB())
	store, err := storagefs.New(filepath.Join(t.TempDir(), "cache"))
	if err != nil {
		t.Fatal(err)
	}
	svc := newService(t, up, proxy.Options{Store: store, TempDir: store.TempDir()}) // default policy: TTL and negative TTL of minutes
	ctx := context.Background()
	read := func(key string) (string, error) {
		t.Helper()
		res, err := svc.Get(ctx, mustParse(t, key))
		if err != nil {
			return "", err
		}
		defer res.Close()
		b, err := io.ReadAll(res.Object)
		if err != nil {
			t.Fatal(err)
		}
		return string(b), nil
	}
	must := func(key string) string {
		t.Helper()
		s, err := read(key)
		if err != nil {
			t.Fatalf("%s: %v", key, err)
		}
		return s
	}
	if l := must("example.com/m/@v/list"); l != "v1.0.0\n" {
		t.Fatalf("list %q", l)
	}
	must("example.com/m/@latest")
	must("example.com/other/@v/list")
	if _, err := read("example.com/m/@v/v1.1.0.info"); err == nil {
		t.Fatal("v1.1.0 found before it exists")
	}
	up.Add(mod("example.com/m", "v1.1.0"))
	up.Add(mod("example.com/other", "v1.1.0"))
	if l := must("example.com/m/@v/list"); l != "v1.0.0\n" {
		t.Fatalf("list within its TTL %q, want the cached one", l)
	}
	if _, err := read("example.com/m/@v/v1.1.0.info"); err == nil {
		t.Fatal("the remembered not-found was not answered")
	}

	if err := svc.Refresh("example.com/m"); err != nil {
		t.Fatal(err)
	}
	if l := must("example.com/m/@v/list"); l != "v1.0.0\nv1.1.0\n" {
		t.Errorf("list after refresh %q", l)
	}
	if l := must("example.com/m/@latest"); !strings.Contains(l, `"v1.1.0"`) {
		t.Errorf("@latest after refresh %q", l)
	}
	if _, err := read("example.com/m/@v/v1.1.0.info"); err != nil {
		t.Errorf("v1.1.0.info after refresh: %v", err)
	}
	up.ResetCounts()
	if l := must("example.com/m/@v/list"); l != "v1.0.0\nv1.1.0\n" || up.Total() != 0 {
		t.Errorf("list right after its refetch: %q with %d upstream requests, want fresh again", l, up.Total())
	}
	if l := must("example.com/other/@v/list"); l != "v1.0.0\n" {
		t.Errorf("another module's list %q: refreshed too", l)
	}
	if err := svc.Refresh("not a path"); err == nil {
		t.Error("Refresh of an invalid path succeeded")
	}
}
