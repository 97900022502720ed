package cli

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestPublishExitCodes(t *testing.T) {
	t.Setenv("XDG_CONFIG_HOME", t.TempDir()) // no saved credentials
	t.Setenv("HOME", t.TempDir())
	refusing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer tok" {
			http.Error(w, "authentication required", http.StatusUnauthorized)
			return
		}
		http.Error(w, "corp.example.com/m@v1.0.0 is already published with other content", http.StatusConflict)
	}))
	defer refusing.Close()
	mod := t.TempDir()
	if err := os.WriteFile(filepath.Join(mod, "go.mod"), []byte("module corp.example.com/m\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(mod, "m.go"), []byte("package m\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		code int
		want string
	}{
		{"no proxy", nil, []string{"publish", "--version", "v1.0.0", mod}, ExitUsage, "no proxy"},
		{"no go.mod", nil, []string{"publish", "--proxy", refusing.URL, "--version", "v1.0.0", t.TempDir()}, ExitUsage, "no go.mod"},
		{"no version outside git", nil, []string{"publish", "--proxy", refusing.URL, mod}, ExitUsage, "--version is required"},
		{"non-canonical version", nil, []string{"publish", "--proxy", refusing.URL, "--version", "v1.0", mod}, ExitUsage, "not a canonical"},
		{"refused", map[string]string{"MODPROXY_TOKEN": "tok"}, []string{"publish", "--proxy", refusing.URL, "--version", "v1.0.0", mod}, ExitFailure, "409"},
		{"token from the environment is needed", nil, []string{"publish", "--proxy", refusing.URL, "--version", "v1.0.0", mod}, ExitFailure, "401"},
		{"two directories", nil, []string{"publish", mod, mod}, ExitUsage, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := run(t, tc.env, tc.args...)
			if code != tc.code || !strings.Contains(stderr, tc.want) {
				t.Fatalf("exit %d, want %d and %q\n%s", code, tc.code, tc.want, stderr)
			}
		})
	}
}
