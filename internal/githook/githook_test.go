package githook

import (
	"context"
	"errors"
	"io/fs"
	"slices"
	"strings"
	"testing"
)

func TestTag(t *testing.T) {
	for _, tc := range []struct {
		ref, dir, version string
		ok                bool
	}{
		{"refs/tags/v1.2.3", "", "v1.2.3", true},
		{"refs/tags/v2.0.0-rc.1", "", "v2.0.0-rc.1", true},
		{"refs/tags/sub/v0.1.0", "sub", "v0.1.0", true},
		{"refs/tags/a/b/v1.0.0", "a/b", "v1.0.0", true},
		{"refs/tags/v1.2", "", "", false}, // not canonical: the go command ignores it
		{"refs/tags/release", "", "", false},
		{"refs/heads/v1.0.0", "", "", false},
		{"refs/tags/v1.0.0+meta", "", "", false},
	} {
		dir, version, ok := Tag(tc.ref)
		if dir != tc.dir || version != tc.version || ok != tc.ok {
			t.Errorf("Tag(%q) = %q, %q, %v; want %q, %q, %v", tc.ref, dir, version, ok, tc.dir, tc.version, tc.ok)
		}
	}
}

// TestPostReceive: version tags of the root module, a subdirectory
// module and a major-version subdirectory are refreshed once each (the
// module path read from go.mod at the pushed commit; a deleted tag at its
// old one); branches and other tags are ignored; a tag without go.mod and
// a failing refresh are warnings, and the rest goes on.
func TestPostReceive(t *testing.T) {
	const zero = "0000000000000000000000000000000000000000"
	files := map[string]string{
		"new1:go.mod":       "module corp.example.com/repo\n\ngo 1.22\n",
		"new1:sub/go.mod":   "module corp.example.com/repo/sub\n",
		"new1:v3/go.mod":    "module corp.example.com/repo/v3\n",
		"old1:tools/go.mod": "module corp.example.com/repo/tools\n",
		"new1:down/go.mod":  "module corp.example.com/down\n",
	}
	in := strings.Join([]string{
		"old0 new1 refs/heads/main",
		"" + zero + " new1 refs/tags/v1.1.0",
		zero + " new1 refs/tags/v1.1.1", // same module again
		zero + " new1 refs/tags/sub/v0.2.0",
		zero + " new1 refs/tags/v3.0.0",
		"old1 " + zero + " refs/tags/tools/v1.0.0", // deleted
		zero + " new1 refs/tags/nomod/v1.0.0",
		zero + " new1 refs/tags/down/v1.0.0",
		zero + " new1 refs/tags/nightly",
		"garbage",
	}, "\n") + "\n"
	updates, err := ParseUpdates(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	var refreshed, warnings []string
	got := PostReceive(context.Background(), updates, Options{
		Show: func(ctx context.Context, rev, path string) ([]byte, error) {
			if s, ok := files[rev+":"+path]; ok {
				return []byte(s), nil
			}
			return nil, fs.ErrNotExist
		},
		Refresh: func(ctx context.Context, mod string) error {
			refreshed = append(refreshed, mod)
			if mod == "corp.example.com/down" {
				return errors.New("connection refused")
			}
			return nil
		},
		Warn: func(msg string) { warnings = append(warnings, msg) },
		Info: func(string) {},
	})
	want := []string{"corp.example.com/repo", "corp.example.com/repo/sub", "corp.example.com/repo/v3", "corp.example.com/repo/tools"}
	if !slices.Equal(got, want) {
		t.Errorf("refreshed %q, want %q", got, want)
	}
	if !slices.Equal(refreshed, append(want, "corp.example.com/down")) {
		t.Errorf("Refresh calls %q", refreshed)
	}
	if len(warnings) != 2 || !strings.Contains(warnings[0], "nomod/v1.0.0: no go.mod") || !strings.Contains(warnings[1], "connection refused") {
		t.Errorf("warnings %q", warnings)
	}
}
