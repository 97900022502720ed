package cli

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/modproxy/modproxy/internal/goauth"
)

func TestSavedToken(t *testing.T) {
	path := filepath.Join(t.TempDir(), "modproxy", goauth.FileName)
	tok := "mp_" + "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	if err := goauth.Login(path, "https://proxy.corp.example/team", tok); err != nil {
		t.Fatal(err)
	}
	get := savedToken(path)
	if got, err := get("https://proxy.corp.example/team/example.com/a/@v/list"); err != nil || got != tok {
		t.Errorf("below the prefix: %q, %v; want the token", got, err)
	}
	if got, err := get("https://other.example/x"); err != nil || got != "" {
		t.Errorf("other host: %q, %v; want none", got, err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := savedToken(path)("https://proxy.corp.example/team/x"); !errors.Is(err, goauth.ErrPermissions) {
		t.Errorf("file readable by others: %v, want ErrPermissions", err)
	}
}
