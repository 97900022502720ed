package e2e

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/modproxy/modproxy/internal/audit"
	"github.com/modproxy/modproxy/internal/upstream/upstreamtest"
)

func mod(path, version, pkg, body string) upstreamtest.Module {
	return upstreamtest.Module{Path: path, Version: version, Files: map[string][]byte{
		"go.mod":    []byte("module " + path + "\n\ngo 1.21\n"),
		pkg + ".go": []byte("package " + pkg + "\n\n" + body + "\n"),
	}}
}

// TestTamperingUpstream: an upstream serves a zip with one changed byte, a
// go.mod with an extra line, a rebuilt zip whose hash differs from the
// database's, and a version the database does not know. modproxy refuses
// each: the go command fails, nothing is stored, each refusal is audited
// and quarantined; afterwards an honest upstream serves them all.
func TestTamperingUpstream(t *testing.T) {
	honestMods := []upstreamtest.Module{
		mod("example.com/flip", "v1.0.0", "flip", "const X = 1"),
		mod("example.com/extra", "v1.0.0", "extra", "const X = 2"),
		mod("example.com/rebuilt", "v1.0.0", "rebuilt", "const X = 3"),
		mod("example.com/unknown", "v1.0.0", "unknown", "const X = 4"),
	}
	honest := upstreamtest.New(t, honestMods)
	name, key := honest.SumDB()
	// The tamperer has no database of its own; the one modproxy uses is the
	// honest upstream's, which does not know example.com/unknown yet.
	tamperMods := append([]upstreamtest.Module(nil), honestMods...)
	tamperMods[2] = mod("example.com/rebuilt", "v1.0.0", "rebuilt", "const X = 666 // backdoor")
	tamperer := upstreamtest.New(t, tamperMods, upstreamtest.WithoutSumDB())
	tamperer.SetFault("example.com/flip/@v/v1.0.0.zip", upstreamtest.Fault{Kind: upstreamtest.CorruptZip})
	tamperer.SetFault("example.com/extra/@v/v1.0.0.mod", upstreamtest.Fault{Kind: upstreamtest.TamperMod})
	// The database must not know example.com/unknown: make the honest
	// upstream answer its lookups 404, as a database that never saw it would.
	honest.SetFault("sumdb/"+name+"/lookup/example.com/unknown@v1.0.0", upstreamtest.Fault{Kind: upstreamtest.NotFound})

	cacheDir := t.TempDir()
	sumdb := key + " " + honest.URL() + "/sumdb/" + name
	// Warming off: the mismatches counted below are those of the go
	// command's own requests (warming would add the zips of graph-only
	// versions, at a time of its own).
	srv := startServer(t, []string{"MODPROXY_VERIFY_PRIVATE=none.invalid", "MODPROXY_WARM_ZIPS=false"}, "--cache-dir", cacheDir, "--upstream", tamperer.URL(), "--sumdb", sumdb)

	g := newGoEnv(t, srv.URL, key)
	g.write(t, "go.mod", "module example.com/proj\n\ngo 1.21\n")
	cases := []struct{ mod, file string }{
		{"example.com/flip", "zip"}, {"example.com/extra", "mod"}, {"example.com/rebuilt", "zip"}, {"example.com/unknown", "mod"},
	}
	for _, c := range cases {
		out, err := g.try("mod", "download", c.mod+"@v1.0.0")
		if err == nil {
			t.Errorf("go mod download %s succeeded through a tampering upstream:\n%s", c.mod, out)
		}
		if !strings.Contains(out, "502") {
			t.Errorf("go mod download %s: want a 502 from modproxy, got:\n%s", c.mod, out)
		}
	}
	for _, c := range cases {
		p := filepath.Join(cacheDir, "objects", c.mod, "@v", "v1.0.0."+c.file)
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s was stored: %v", p, err)
		}
	}
	for _, want := range []string{"checksum mismatch for example.com/rebuilt@v1.0.0 zip", "checksum mismatch for example.com/extra@v1.0.0 go.mod", "example.com/unknown@v1.0.0"} {
		if !srv.logged(want) {
			t.Errorf("server log lacks %q", want)
		}
	}
	events, err := audit.Read(filepath.Join(cacheDir, "audit.log"))
	if err != nil {
		t.Fatal(err)
	}
	audited := map[string]audit.Event{}
	for _, e := range events {
		audited[e.Target] = e
	}
	for _, c := range cases {
		e, ok := audited[c.mod+"@v1.0.0"]
		if !ok || e.Action != "quarantine" {
			t.Errorf("no quarantine audit event for %s: %+v", c.mod, e)
		}
	}
	if e := audited["example.com/rebuilt@v1.0.0"]; e.Hashes["got"] == "" || e.Hashes["want"] == "" || e.Hashes["got"] == e.Hashes["want"] {
		t.Errorf("mismatch audit event lacks both hashes: %+v", e)
	}
	q, _ := os.ReadDir(filepath.Join(cacheDir, "quarantine"))
	if len(q) < len(cases) {
		t.Errorf("quarantine holds %d files, want >= %d", len(q), len(cases))
	}
	if status, body := srv.get(t, "/metrics"); status != 200 || !bytes.Contains(body, []byte(`modproxy_checksum_verifications_total{result="mismatch"} 2`)) {
		t.Errorf("metrics lack 2 mismatches:\n%s", grepLines(body, "verification"))
	}

	// An honest upstream (and a database that now knows every version):
	// the same downloads succeed through the same cache.
	honest.ClearFaults()
	srv.kill()
	srv2 := startServer(t, []string{"MODPROXY_VERIFY_PRIVATE=none.invalid"}, "--cache-dir", cacheDir, "--upstream", honest.URL(), "--sumdb", sumdb)
	g2 := newGoEnv(t, srv2.URL, key)
	g2.write(t, "go.mod", "module example.com/proj\n\ngo 1.21\n")
	for _, c := range cases {
		g2.run(t, "mod", "download", c.mod+"@v1.0.0")
	}
	got, _ := os.ReadFile(filepath.Join(cacheDir, "objects", "example.com/rebuilt", "@v", "v1.0.0.zip"))
	if !bytes.Equal(got, honest.ZipBytes("example.com/rebuilt", "v1.0.0")) {
		t.Error("stored zip is not the honest one")
	}
}

func grepLines(b []byte, sub string) string {
	var out []string
	for l := range strings.SplitSeq(string(b), "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestPrivateModulesNeverReachTheChecksumDatabase: modules matching the
// private patterns are admitted without a lookup, and /sumdb/ lookups for
// them are refused by modproxy without going upstream.
func TestPrivateModulesNeverReachTheChecksumDatabase(t *testing.T) {
	up := upstreamtest.New(t, []upstreamtest.Module{
		mod("corp.example.com/secret", "v1.0.0", "secret", "const Token = 1"),
		mod("example.com/public", "v1.0.0", "public", "const X = 1"),
	})
	name, key := up.SumDB()
	srv := startServer(t, []string{"MODPROXY_VERIFY_PRIVATE=corp.example.com"}, "--cache-dir", t.TempDir(), "--upstream", up.URL(), "--sumdb", key)
	g := newGoEnv(t, srv.URL, key)
	g.vars = append(g.vars, "GONOSUMDB=corp.example.com")
	g.write(t, "go.mod", "module example.com/proj\n\ngo 1.21\n")
	g.run(t, "mod", "download", "corp.example.com/secret@v1.0.0", "example.com/public@v1.0.0")
	// A client that does leak the lookup is stopped at modproxy.
	status, body := srv.get(t, "/sumdb/"+name+"/lookup/corp.example.com/secret@v1.0.0")
	if status != 404 || !strings.Contains(string(body), "private") {
		t.Errorf("lookup of a private module: %d %q", status, body)
	}
	var publicLookups int
	for _, p := range up.Log() {
		if strings.HasPrefix(p, "sumdb/") && strings.Contains(p, "corp.example.com") {
			t.Errorf("private path reached the checksum database: %s", p)
		}
		if strings.HasPrefix(p, "sumdb/"+name+"/lookup/example.com/public@") {
			publicLookups++
		}
	}
	if publicLookups == 0 {
		t.Error("the public module was not verified (no lookup reached the database)")
	}
}

// TestVerifyCommandRepairsCorruptObject: a byte flipped in a stored zip is
// found by `modproxy verify`, quarantined by --repair, and the next request
// fetches and serves the correct zip again.
func TestVerifyCommandRepairsCorruptObject(t *testing.T) {
	up := upstreamtest.New(t, []upstreamtest.Module{mod("example.com/a", "v1.0.0", "a", "const X = 1"), mod("example.com/b", "v1.0.0", "b", "const X = 2")})
	_, key := up.SumDB()
	cacheDir := t.TempDir()
	env := []string{"MODPROXY_VERIFY_PRIVATE=none.invalid"}
	srv := startServer(t, env, "--cache-dir", cacheDir, "--upstream", up.URL(), "--sumdb", key)
	for _, p := range []string{"/example.com/a/@v/v1.0.0.zip", "/example.com/a/@v/v1.0.0.mod", "/example.com/b/@v/v1.0.0.zip"} {
		if status, _ := srv.get(t, p); status != 200 {
			t.Fatalf("GET %s: %d", p, status)
		}
	}
	verify := func(args ...string) (int, string) {
		cmd := exec.Command(binary, append([]string{"verify", "--cache-dir", cacheDir, "--sumdb", key}, args...)...)
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return code, string(out)
	}
	if code, out := verify(); code != 0 || !strings.Contains(out, "checked 3 objects") {
		t.Fatalf("verify on a good cache: exit %d\n%s", code, out)
	}
	zipPath := filepath.Join(cacheDir, "objects", "example.com", "a", "@v", "v1.0.0.zip")
	data, err := os.ReadFile(zipPath)
	if err != nil {
		t.Fatal(err)
	}
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	off, err := zr.File[0].DataOffset()
	if err != nil {
		t.Fatal(err)
	}
	data[off+1] ^= 0x40 // inside the first file's compressed data
	if err := os.WriteFile(zipPath, data, 0o644); err != nil {
		t.Fatal(err)
	}
	code, out := verify("--json")
	if code != 1 {
		t.Fatalf("verify on a corrupt cache: exit %d\n%s", code, out)
	}
	var rep struct {
		Checked  int
		Problems []struct{ Key, Problem, Repaired string }
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("verify --json: %v\n%s", err, out)
	}
	if rep.Checked != 3 || len(rep.Problems) != 1 || rep.Problems[0].Key != "example.com/a/@v/v1.0.0.zip" {
		t.Fatalf("report: %+v", rep)
	}
	code, out = verify("--repair")
	if code != 1 || !strings.Contains(out, "moved to quarantine") {
		t.Fatalf("verify --repair: exit %d\n%s", code, out)
	}
	if _, err := os.Stat(zipPath); !os.IsNotExist(err) {
		t.Fatalf("corrupt zip still in the store: %v", err)
	}
	status, body := srv.get(t, "/example.com/a/@v/v1.0.0.zip")
	if status != 200 || !bytes.Equal(body, up.ZipBytes("example.com/a", "v1.0.0")) {
		t.Fatalf("after repair: %d, %d bytes", status, len(body))
	}
	if n := up.Requests("example.com/a/@v/v1.0.0.zip"); n != 2 {
		t.Errorf("upstream zip requests = %d, want 2 (refetched after repair)", n)
	}
	if code, out := verify(); code != 0 {
		t.Fatalf("verify after refetch: exit %d\n%s", code, out)
	}
}

// TestForkedChecksumDatabaseDetectedAfterRestart: modproxy persists the
// signed tree head it verified against; after a restart, a database
// signing with the same key but presenting a different history is a loud
// security error and the affected requests fail.
func TestForkedChecksumDatabaseDetectedAfterRestart(t *testing.T) {
	// Warming off: one security error is counted, that of the request
	// below (a warm fill of the zip would add its own).
	env := []string{"MODPROXY_VERIFY_PRIVATE=none.invalid", "MODPROXY_WARM_ZIPS=false"}
	first := upstreamtest.New(t, []upstreamtest.Module{mod("example.com/one", "v1.0.0", "one", ""), mod("example.com/two", "v1.0.0", "two", "")})
	skey, vkey := first.SumDBKeys()
	cacheDir := t.TempDir()
	srv := startServer(t, env, "--cache-dir", cacheDir, "--upstream", first.URL(), "--sumdb", vkey)
	for _, p := range []string{"/example.com/one/@v/v1.0.0.mod", "/example.com/two/@v/v1.0.0.mod"} {
		if status, body := srv.get(t, p); status != 200 {
			t.Fatalf("GET %s: %d %s", p, status, body)
		}
	}
	srv.kill()
	if _, err := os.Stat(filepath.Join(cacheDir, "state", "sumdb", "sum.test.example", "latest")); err != nil {
		t.Fatalf("no persisted tree head: %v", err)
	}

	// Same key, another history.
	fork := upstreamtest.New(t, []upstreamtest.Module{mod("example.com/three", "v1.0.0", "three", "")}, upstreamtest.WithSumDBKeys(skey, vkey))
	srv2 := startServer(t, env, "--cache-dir", cacheDir, "--upstream", fork.URL(), "--sumdb", vkey)
	status, body := srv2.get(t, "/example.com/three/@v/v1.0.0.mod")
	if status != 502 {
		t.Fatalf("request verified against a forked database: %d %s", status, body)
	}
	if !srv2.logged("SECURITY ERROR") {
		t.Error("no SECURITY ERROR in the log")
	}
	events, err := audit.Read(filepath.Join(cacheDir, "audit.log"))
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, e := range events {
		found = found || e.Action == "security-error"
	}
	if !found {
		t.Errorf("no security-error audit event: %+v", events)
	}
	if _, m := srv2.get(t, "/metrics"); !bytes.Contains(m, []byte("modproxy_checksum_security_errors_total 1")) {
		t.Errorf("security error not counted:\n%s", grepLines(m, "security"))
	}
	if _, err := os.Stat(filepath.Join(cacheDir, "objects", "example.com", "three", "@v", "v1.0.0.mod")); !os.IsNotExist(err) {
		t.Error("content verified by a forked database was stored")
	}
}
