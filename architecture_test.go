package modproxy_test

import (
	"bufio"
	"go/build"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const modulePath = "github.com/modproxy/modproxy"

// TestImportGraph checks the real import graph of the module's non-test
// code against the dependency table in docs/architecture.md: every package
// has a row, every row names a package that exists, and a package imports
// only the module packages its row allows. An upward or sideways arrow
// therefore fails here before it settles in.
func TestImportGraph(t *testing.T) {
	allowed := readDependencyTable(t, "docs/architecture.md")
	actual := moduleImports(t)

	for pkg := range allowed {
		if _, ok := actual[pkg]; !ok {
			t.Errorf("docs/architecture.md: the dependency table names %s, which is not a package of the module", pkg)
		}
	}
	for _, pkg := range sortedKeys(actual) {
		rules, ok := allowed[pkg]
		if !ok {
			t.Errorf("%s: no row in the dependency table of docs/architecture.md", pkg)
			continue
		}
		for _, imp := range actual[pkg] {
			if !permits(rules, imp) {
				t.Errorf("%s imports %s, which its row in docs/architecture.md does not allow (allowed: %s)", pkg, imp, strings.Join(rules, ", "))
			}
		}
	}
}

// permits reports whether one of rules allows imp. A rule is a package
// name, or NAME/... for NAME and every package below it.
func permits(rules []string, imp string) bool {
	for _, r := range rules {
		if r == imp {
			return true
		}
		if base, ok := strings.CutSuffix(r, "/..."); ok && (imp == base || strings.HasPrefix(imp, base+"/")) {
			return true
		}
	}
	return false
}

// readDependencyTable parses the rows under the "## Dependency table"
// heading: | `pkg` | `a`, `b/...` | (or "—" for nothing).
func readDependencyTable(t *testing.T, file string) map[string][]string {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	table := map[string][]string{}
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "## ") {
			in = line == "## Dependency table"
			continue
		}
		if !in || !strings.HasPrefix(line, "| `") {
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		if len(cells) < 2 {
			t.Fatalf("%s: malformed dependency row %q", file, line)
		}
		pkg := strings.Trim(strings.TrimSpace(cells[0]), "`")
		if _, dup := table[pkg]; dup {
			t.Fatalf("%s: %s has two rows", file, pkg)
		}
		var rules []string
		for _, r := range strings.Split(cells[1], ",") {
			r = strings.Trim(strings.TrimSpace(r), "`")
			if r != "" && r != "—" {
				rules = append(rules, r)
			}
		}
		table[pkg] = rules
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(table) == 0 {
		t.Fatalf("%s: no dependency table found under \"## Dependency table\"", file)
	}
	return table
}

// moduleImports returns, for every package of the module, the module
// packages its non-test files import. Names drop the module path and, for
// packages under internal/, the "internal/" prefix.
func moduleImports(t *testing.T) map[string][]string {
	t.Helper()
	graph := map[string][]string{}
	err := filepath.WalkDir(".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			return nil
		}
		name := d.Name()
		if p != "." && (strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") || name == "testdata" || name == "node_modules") {
			return filepath.SkipDir
		}
		bp, err := build.Default.ImportDir(p, 0)
		if err != nil {
			if _, ok := err.(*build.NoGoError); ok || p == "." {
				return nil
			}
			return err
		}
		if p == "." || len(bp.GoFiles)+len(bp.CgoFiles)+len(bp.TestGoFiles)+len(bp.XTestGoFiles) == 0 {
			return nil // the module root holds only this test
		}
		var deps []string
		for _, imp := range bp.Imports {
			if rel, ok := strings.CutPrefix(imp, modulePath+"/"); ok {
				deps = append(deps, shortName(rel))
			}
		}
		slices.Sort(deps)
		graph[shortName(filepath.ToSlash(p))] = deps
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return graph
}

func shortName(rel string) string {
	if s, ok := strings.CutPrefix(path.Clean(rel), "internal/"); ok {
		return s
	}
	return rel
}

func sortedKeys(m map[string][]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
