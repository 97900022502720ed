package explain

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func TestCatalogWellFormed(t *testing.T) {
	cat := Catalog()
	if len(cat) < 45 {
		t.Fatalf("catalog has %d entries, want at least 45", len(cat))
	}
	ids := map[string]bool{}
	idRE := regexp.MustCompile(`^[a-z0-9]+(?:-[a-z0-9]+)*$`)
	cats := map[string]bool{CatProxy: true, CatChecksum: true, CatVersion: true, CatModule: true,
		CatConfig: true, CatToolchain: true, CatVCS: true, CatNetwork: true, CatLocal: true}
	known := map[string]bool{}
	for _, p := range placeholders {
		known[p.name] = true
	}
	tmplRE := regexp.MustCompile(`\{([a-z]+)\}`)
	for _, e := range cat {
		if !idRE.MatchString(e.ID) {
			t.Errorf("bad id %q", e.ID)
		}
		if ids[e.ID] {
			t.Errorf("duplicate id %q", e.ID)
		}
		ids[e.ID] = true
		if e.Title == "" || e.Cause == "" || e.Fix == "" || e.Pattern == "" || e.Example == "" {
			t.Errorf("%s: empty field", e.ID)
		}
		if !cats[e.Category] {
			t.Errorf("%s: unknown category %q", e.ID, e.Category)
		}
		if len(e.needles) == 0 {
			t.Errorf("%s: no needles", e.ID)
		}
		for _, n := range e.needles {
			if n != strings.ToLower(n) {
				t.Errorf("%s: needle %q is not lower-case", e.ID, n)
			}
		}
		if !e.Match(e.Example) {
			t.Errorf("%s: does not match its own example %q", e.ID, e.Example)
		}
		for _, c := range e.Commands {
			for _, m := range tmplRE.FindAllStringSubmatch(c, -1) {
				if !known[m[1]] {
					t.Errorf("%s: command %q uses unknown placeholder %q", e.ID, c, m[1])
				}
			}
		}
	}
	for _, e := range cat {
		for _, f := range e.follows {
			if !ids[f] {
				t.Errorf("%s: follows unknown id %q", e.ID, f)
			}
		}
	}
}

// TestExamplesClassify checks the priorities: every entry's example, taken
// on its own, is explained by that entry and not by a more generic one.
func TestExamplesClassify(t *testing.T) {
	x := New()
	for _, e := range Catalog() {
		got, ok := x.Classify(e.Example)
		if !ok || got.ID != e.ID {
			t.Errorf("Classify(%q) = %q, want %q", e.Example, got.ID, e.ID)
		}
	}
}

func TestCatalogIsACopy(t *testing.T) {
	a := Catalog()
	a[0].ID = "changed"
	a[0].Commands = append(a[0].Commands[:0], "changed")
	b := Catalog()
	if b[0].ID == "changed" || (len(b[0].Commands) > 0 && b[0].Commands[0] == "changed") {
		t.Fatal("Catalog returned shared state")
	}
}

// TestNoPublicServiceHosts enforces that the package, its catalog and its
// samples only name placeholder hosts (example.com and friends) and a few
// code hosts, never the public module mirror or checksum database.
func TestNoPublicServiceHosts(t *testing.T) {
	allowed := map[string]bool{
		"github.com": true, "gitlab.com": true, "bitbucket.org": true, "codeberg.org": true,
		"dev.azure.com": true, "gitee.com": true, "golang.org": true,
	}
	hostRE := regexp.MustCompile(`\b(?:[a-z0-9-]+\.)+(?:org|com|net|io|cn|dev|google)\b`)
	unescape := strings.NewReplacer(`\t`, " ", `\n`, " ", `\r`, " ")
	check := func(where, text string) {
		for _, h := range hostRE.FindAllString(strings.ToLower(unescape.Replace(text)), -1) {
			if allowed[h] || h == "example.com" || h == "example.net" ||
				strings.HasSuffix(h, ".example.com") || strings.HasSuffix(h, ".example.net") {
				continue
			}
			t.Errorf("%s: names host %q; use proxy.example.com / sum.example.com", where, h)
		}
	}
	for _, e := range Catalog() {
		check(e.ID, strings.Join(append([]string{e.Title, e.Pattern, e.Example, e.Cause, e.Fix}, e.Commands...), "\n"))
	}
	var files []string
	for _, pat := range []string{"*.go", filepath.Join("testdata", "samples", "*.txt")} {
		m, err := filepath.Glob(pat)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		check(f, string(b))
	}
}
