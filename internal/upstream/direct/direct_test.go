package direct_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	iofs "io/fs"
	"strings"
	"testing"

	"github.com/modproxy/modproxy/internal/upstream/direct"
	"github.com/modproxy/modproxy/internal/upstream/direct/directtest"
)

func TestFetchFromGit(t *testing.T) {
	g := directtest.New(t)
	g.MapHost("corp.example.com")
	g.Repo("lib", []directtest.Commit{
		{Tag: "v1.0.0", Files: map[string]string{"go.mod": "module corp.example.com/lib.git\n\ngo 1.21\n", "lib.go": "package lib\n"}},
		{Tag: "v1.1.0", Files: map[string]string{"lib.go": "package lib\n\nconst V = 2\n"}},
	})
	f, err := direct.New(direct.Options{Dir: t.TempDir(), Env: append(g.Env(), "GOPRIVATE=corp.example.com")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	get := func(p string) (string, error) {
		resp, err := f.Fetch(context.Background(), p)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return string(b), err
	}
	if got, err := get("corp.example.com/lib.git/@v/list"); err != nil || got != "v1.0.0\nv1.1.0\n" {
		t.Fatalf("list = %q, %v", got, err)
	}
	var info struct{ Version string }
	got, err := get("corp.example.com/lib.git/@latest")
	if err != nil || json.Unmarshal([]byte(got), &info) != nil || info.Version != "v1.1.0" {
		t.Fatalf("latest = %q, %v", got, err)
	}
	got, err = get("corp.example.com/lib.git/@v/main.info")
	if err != nil || json.Unmarshal([]byte(got), &info) != nil || info.Version != "v1.1.0" {
		t.Fatalf("branch query = %q, %v", got, err)
	}
	if got, err := get("corp.example.com/lib.git/@v/v1.0.0.mod"); err != nil || got != "module corp.example.com/lib.git\n\ngo 1.21\n" {
		t.Fatalf("mod = %q, %v", got, err)
	}
	resp, err := f.Fetch(context.Background(), "corp.example.com/lib.git/@v/v1.0.0.zip")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Size <= 0 {
		t.Fatalf("zip size %d", resp.Size)
	}
	// Unknown version and unknown repository: not found, with the go command's reason.
	for _, p := range []string{"corp.example.com/lib.git/@v/v9.0.0.info", "corp.example.com/nope.git/@v/list"} {
		_, err := get(p)
		if !errors.Is(err, iofs.ErrNotExist) || !strings.Contains(err.Error(), "direct") {
			t.Errorf("%s: %v, want not found", p, err)
		}
		// No HTTP answer was involved: the text names no status.
		if strings.Contains(err.Error(), "404") {
			t.Errorf("%s: %q names an HTTP status", p, err)
		}
	}
}
