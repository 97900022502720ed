// Package modrefstest holds the projects that the consumers of package
// modrefs (gc pin sets, modproxy clean, modproxy prefetch) test with, so
// that each of them shows the same answer for the same files.
package modrefstest

import (
	"os"
	"path/filepath"
	"testing"
)

// ReplaceProjects returns projects (name -> file name -> content) in which
// the go command uses mod@replacement where mod@replaced is required:
//
//	module     a single module requiring mod@replaced, with
//	           "replace mod replaced => mod replacement"
//	workspace  a go.work using app, which has that replace directive, and
//	           lib, which requires mod@replaced
//
// In both, mod@replacement is needed whole and nothing of mod@replaced.
func ReplaceProjects(mod, replaced, replacement string) map[string]map[string]string {
	replace := "replace " + mod + " " + replaced + " => " + mod + " " + replacement + "\n"
	require := "require " + mod + " " + replaced + "\n"
	return map[string]map[string]string{
		"module": {
			"go.mod": "module example.com/project\n\ngo 1.22\n\n" + require + "\n" + replace,
		},
		"workspace": {
			"go.work":    "go 1.22\n\nuse (\n\t./app\n\t./lib\n)\n",
			"app/go.mod": "module example.com/app\n\ngo 1.22\n\n" + replace,
			"lib/go.mod": "module example.com/lib\n\ngo 1.22\n\n" + require,
		},
	}
}

// Write writes files (slash-separated names relative to dir) and returns
// dir.
func Write(t testing.TB, dir string, files map[string]string) string {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}
