package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/modproxy/modproxy/internal/admin"
	"github.com/modproxy/modproxy/internal/config"
	"github.com/modproxy/modproxy/internal/upstream/upstreamtest"
	"github.com/modproxy/modproxy/internal/vulndb/vulndbtest"
)

// TestVulnImportAndAffected: an imported database answers "who is
// affected" offline with the cached versions and their last download; a
// corrupt archive is refused (exit 1) and changes nothing.
func TestVulnImportAndAffected(t *testing.T) {
	dir := t.TempDir()
	up := upstreamtest.New(t, []upstreamtest.Module{
		{Path: "example.com/a", Version: "v1.0.0", Files: map[string][]byte{"a.go": []byte("package a\n")}},
		{Path: "example.com/a", Version: "v1.1.0", Files: map[string][]byte{"a.go": []byte("package a\n")}},
	})
	cs := newCacheServer(t, dir, func(c *config.Config) { c.Upstream = up.URL() })
	cs.serve(t)
	for _, v := range []string{"v1.0.0", "v1.1.0"} {
		cs.get(t, "/example.com/a/@v/"+v+".info")
		cs.get(t, "/example.com/a/@v/"+v+".zip")
	}
	cs.stop()

	files := vulndbtest.Build(t, vulndbtest.Entry{ID: "GO-2099-0001", Modified: time.Date(2099, 1, 2, 3, 4, 5, 0, time.UTC),
		Aliases: []string{"CVE-2099-0001"}, Summary: "a is bad",
		Affected: []vulndbtest.Affected{{Module: "example.com/a", Fixed: "1.1.0"}}})
	good := filepath.Join(t.TempDir(), "vulndb.zip")
	files.WriteZip(t, good)
	flags := []string{"--cache-dir", dir, "--sumdb", "off"}
	env := cliEnv()

	if code, stdout, stderr := run(t, env, append([]string{"vuln", "import", good}, flags...)...); code != ExitOK || !strings.Contains(stdout, "imported 1 advisories") {
		t.Fatalf("vuln import: exit %d\nstdout %q\nstderr %q", code, stdout, stderr)
	}
	bad := filepath.Join(t.TempDir(), "bad.zip")
	if err := os.WriteFile(bad, []byte("PK\x03\x04garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := run(t, env, append([]string{"vuln", "import", bad}, flags...)...); code != ExitFailure || !strings.Contains(stderr, "refused, nothing changed") {
		t.Errorf("vuln import of a corrupt archive: exit %d, stderr %q", code, stderr)
	}

	code, stdout, stderr := run(t, env, append([]string{"vuln", "affected", "GO-2099-0001", "--json"}, flags...)...)
	if code != ExitOK {
		t.Fatalf("vuln affected: exit %d\nstderr %q", code, stderr)
	}
	var a admin.Advisory
	if err := json.Unmarshal([]byte(stdout), &a); err != nil {
		t.Fatalf("vuln affected --json: %v\n%s", err, stdout)
	}
	if a.ID != "GO-2099-0001" || len(a.Versions) != 1 || a.Versions[0].Version != "v1.0.0" || a.Versions[0].LastDownload.IsZero() ||
		len(a.Modules) != 1 || a.Modules[0].Ranges[0] != "<v1.1.0" {
		t.Errorf("vuln affected = %+v", a)
	}
	if code, stdout, _ := run(t, env, append([]string{"vuln", "affected"}, flags...)...); code != ExitOK ||
		!strings.Contains(stdout, "GO-2099-0001 (CVE-2099-0001): a is bad") || !strings.Contains(stdout, "cached  example.com/a v1.0.0  last downloaded ") ||
		strings.Contains(stdout, "v1.1.0  last") {
		t.Errorf("vuln affected (all): exit %d\n%s", code, stdout)
	}
	if code, _, stderr := run(t, env, append([]string{"vuln", "affected", "GO-2099-9999"}, flags...)...); code != ExitUsage || !strings.Contains(stderr, "not in the vulnerability database") {
		t.Errorf("vuln affected of an unknown ID: exit %d, stderr %q", code, stderr)
	}
}
