package artifact

import (
	"errors"
	"testing"

	"golang.org/x/mod/module"
)

// FuzzParseAgreesWithCheck: what Parse accepts as a module version
// artifact, module.Check accepts too (Parse runs its path check once, in
// UnescapePath, and its version checks itself).
func FuzzParseAgreesWithCheck(f *testing.F) {
	for _, s := range []string{
		"github.com/!burnt!sushi/toml/@v/v1.3.2.zip", "a/@v/v1.0.0+incompatible.mod", "example.com/a/v2/@v/v2.0.0.info",
		"example.com/a/v2/@v/v1.0.0.info", "gopkg.in/yaml.v2/@v/v2.4.0.mod", "example.com/a/@v/v2.0.0.zip",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		r, err := Parse(p)
		if err != nil || (r.Kind != Info && r.Kind != Mod && r.Kind != Zip) {
			return
		}
		if err := module.Check(r.Module, r.Version); err != nil {
			t.Fatalf("Parse accepted %q, which module.Check refuses: %v", p, err)
		}
	})
}

// TestMajorVersionChecked checks the version checks Parse makes itself:
// a version whose major does not match the path's is refused as
// module.Check refuses it.
func TestMajorVersionChecked(t *testing.T) {
	for _, p := range []string{"example.com/a/v2/@v/v1.0.0.info", "example.com/a/@v/v2.0.0.mod", "gopkg.in/yaml.v2/@v/v3.0.0.zip"} {
		_, err := Parse(p)
		var me *module.ModuleError
		if !errors.Is(err, ErrInvalid) || !errors.As(err, &me) {
			t.Errorf("Parse(%q) = %v, want an ErrInvalid *module.ModuleError", p, err)
		}
	}
	for _, p := range []string{"example.com/a/v2/@v/v2.1.0.info", "example.com/a/@v/v2.0.0+incompatible.mod", "gopkg.in/yaml.v2/@v/v2.4.0.zip"} {
		if _, err := Parse(p); err != nil {
			t.Errorf("Parse(%q): %v", p, err)
		}
	}
}
