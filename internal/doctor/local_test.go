package doctor

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"golang.org/x/mod/module"
	"golang.org/x/mod/sumdb/dirhash"
	modzip "golang.org/x/mod/zip"

	"github.com/modproxy/modproxy/internal/upstream/upstreamtest"
)

func TestNetrc(t *testing.T) {
	for _, tc := range []struct {
		name    string
		goproxy string
		netrc   string
		perm    os.FileMode
		want    []expect
		not     []expect
	}{
		{name: "loose permissions", netrc: "machine proxy.example.com login bob password tok\n", perm: 0o644,
			want: []expect{{IDNetrcPerm, Warning, "permissions 0644"}, {IDNetrcPerm, Warning, "chmod 600"}, {IDNetrcProxy, OK, "sent: netrc machine proxy.example.com"}}},
		{name: "group readable", netrc: "machine proxy.example.com login bob password tok\n", perm: 0o640, want: []expect{{IDNetrcPerm, Warning, "0640"}}},
		{name: "private", netrc: "machine proxy.example.com login bob password tok\n", perm: 0o600,
			want: []expect{{IDNetrc, OK, "1 complete entry, 0 incomplete"}}, not: []expect{{IDNetrcPerm, Warning, ""}, {IDNetrcEntry, Warning, ""}}},
		{name: "missing password", netrc: "machine proxy.example.com login bob\nmachine git.example.com login ann password tok\n", perm: 0o600,
			want: []expect{{IDNetrcEntry, Warning, "no password: the go command ignores the entry and sends no credentials to proxy.example.com"}},
			not:  []expect{{IDNetrcProxy, OK, ""}}},
		{name: "missing login", netrc: "machine proxy.example.com password tok\n", perm: 0o600, want: []expect{{IDNetrcEntry, Warning, "no login"}}},
		{name: "multi-line entry", netrc: "machine proxy.example.com\n  login bob\n  password tok\n", perm: 0o600,
			want: []expect{{IDNetrcProxy, OK, "sent"}}, not: []expect{{IDNetrcEntry, Warning, ""}}},
		{name: "default stops the parse", netrc: "machine a.example.com login a password b\ndefault\nmachine proxy.example.com login bob password tok\n", perm: 0o600,
			want: []expect{{IDNetrcEntry, Warning, "1 later machine entry is ignored"}}, not: []expect{{IDNetrcProxy, OK, ""}}},
		{name: "quoted password", netrc: "machine proxy.example.com login bob password \"tok\"\n", perm: 0o600, want: []expect{{IDNetrcEntry, Warning, "starts with a quote"}}},
		{name: "port mismatch", goproxy: "https://proxy.example.com:8443,direct", netrc: "machine proxy.example.com login bob password tok\n", perm: 0o600,
			want: []expect{{IDNetrcProxy, Warning, "matches host:port"}}},
		{name: "port match", goproxy: "https://proxy.example.com:8443,direct", netrc: "machine proxy.example.com:8443 login bob password tok\n", perm: 0o600,
			want: []expect{{IDNetrcProxy, OK, "sent"}}},
		{name: "http proxy", goproxy: "http://proxy.example.com,direct", netrc: "machine proxy.example.com login bob password tok\n", perm: 0o600,
			want: []expect{{IDNetrcProxy, Warning, "only sent over https"}}},
		{name: "path prefix", goproxy: "https://proxy.example.com/api/go/team,direct", netrc: "machine proxy.example.com/api login bob password tok\n", perm: 0o600,
			want: []expect{{IDNetrcProxy, OK, "sent: netrc machine proxy.example.com/api"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := baseEnv(t)
			if tc.goproxy != "" {
				env["GOPROXY"] = tc.goproxy
			}
			home := t.TempDir()
			writeFile(t, filepath.Join(home, ".netrc"), tc.netrc, tc.perm)
			o := testOptions(t, env)
			o.LookupEnv = mapLookup(map[string]string{"HOME": home})
			rep := mustRun(t, o)
			checkExpect(t, rep, tc.want)
			for _, n := range tc.not {
				absent(t, rep, n.id, n.status)
			}
		})
	}
}

func TestNetrcLocation(t *testing.T) {
	env := baseEnv(t)
	o := testOptions(t, env)
	dir := t.TempDir()
	o.LookupEnv = mapLookup(map[string]string{"HOME": t.TempDir(), "NETRC": filepath.Join(dir, "missing")})
	checkExpect(t, mustRun(t, o), []expect{{IDNetrc, Warning, "NETRC names a file that does not exist"}})

	p := filepath.Join(dir, "custom-netrc")
	writeFile(t, p, "machine proxy.example.com login bob password tok\n", 0o600)
	o.LookupEnv = mapLookup(map[string]string{"HOME": t.TempDir(), "NETRC": p})
	checkExpect(t, mustRun(t, o), []expect{{IDNetrc, OK, "netrc file " + p}, {IDNetrcProxy, OK, "sent"}})

	// GOAUTH=off: netrc is not read at all.
	env["GOAUTH"] = "off"
	rep := mustRun(t, o)
	if len(find(rep, IDNetrc)) != 0 || len(find(rep, IDNetrcProxy)) != 0 {
		t.Errorf("netrc checked with GOAUTH=off:\n%s", dump(rep))
	}
}

func TestParseNetrc(t *testing.T) {
	p := parseNetrc("machine a.example.com login u password p\n" +
		"macdef init\nmachine hidden.example.com login x password y\n\n" +
		"machine b.example.com login v\n" +
		"machine c.example.com login w password q machine d.example.com login z password r\n" +
		"default login anon password none\n" +
		"machine e.example.com login e password e\n")
	var got []string
	for _, e := range p.Entries {
		got = append(got, e.Machine)
	}
	// "default login ..." in a token pair does not stop the go command's
	// parser; a lone trailing "default" does.
	if want := []string{"a.example.com", "c.example.com", "d.example.com", "e.example.com"}; !reflect.DeepEqual(got, want) {
		t.Errorf("entries = %v, want %v", got, want)
	}
	if len(p.Incomplete) != 1 || p.Incomplete[0].Machine != "b.example.com" || p.Incomplete[0].Line != 5 {
		t.Errorf("incomplete = %+v", p.Incomplete)
	}
	if p.Default != 7 || p.Ignored != 0 {
		t.Errorf("default = %d, ignored = %d", p.Default, p.Ignored)
	}
}

func TestCheckZiphash(t *testing.T) {
	good := "h1:" + strings.Repeat("A", 43) + "="
	for _, tc := range []struct {
		in, want string
	}{
		{good, ""},
		{good + "\n", ""},
		{"", "empty"},
		{"h1:YWJj", "hash of 3 bytes"},
		{"h1:abc", "not valid base64"},
		{"h2:" + strings.Repeat("A", 43) + "=", "does not start with h1:"},
		{"h1:" + strings.Repeat("!", 44), "not valid base64"},
		{"h1:\x00" + strings.Repeat("A", 43), "NUL"},
	} {
		if got := checkZiphash([]byte(tc.in)); (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
			t.Errorf("checkZiphash(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// buildCache lays out a module cache with every kind of leftover.
func buildCache(t *testing.T) string {
	dir := t.TempDir()
	dl := filepath.Join(dir, "cache", "download")
	valid := "h1:" + strings.Repeat("A", 43) + "="
	// A clean version: zip, ziphash, tree (with a file named *.tmp inside,
	// which belongs to the module).
	writeFile(t, filepath.Join(dl, "example.com/good/@v/v1.0.0.zip"), "zip", 0o644)
	writeFile(t, filepath.Join(dl, "example.com/good/@v/v1.0.0.ziphash"), valid, 0o644)
	writeFile(t, filepath.Join(dir, "example.com/good@v1.0.0/data.tmp"), "module data", 0o444)
	// Bad ziphash of the wrong length with its zip: recomputed.
	writeFile(t, filepath.Join(dl, "example.com/a/@v/v1.0.0.zip"), "zip", 0o644)
	writeFile(t, filepath.Join(dl, "example.com/a/@v/v1.0.0.ziphash"), "garbage", 0o644)
	// Bad ziphash of the right length: the go command trusts and fails.
	writeFile(t, filepath.Join(dl, "example.com/a/@v/v1.1.0.ziphash"), "h1:"+strings.Repeat("!", 44), 0o644)
	// Interrupted extraction and download.
	writeFile(t, filepath.Join(dl, "example.com/a/@v/v1.2.0.partial"), "", 0o644)
	writeFile(t, filepath.Join(dir, "example.com/a@v1.2.0/go.mod"), "module example.com/a\n", 0o444)
	writeFile(t, filepath.Join(dl, "example.com/a/@v/v1.2.0.zip123456.tmp"), "partial zip", 0o644)
	writeFile(t, filepath.Join(dir, "example.com/a@v1.4.0.tmp-98765/x.go"), "package x\n", 0o644)
	// A tree without its ziphash.
	writeFile(t, filepath.Join(dir, "example.com/!upper@v1.3.0/go.mod"), "module example.com/Upper\n", 0o444)
	// Checksum database cache: not scanned for leftovers.
	writeFile(t, filepath.Join(dl, "sumdb/sum.example.com/lookup/x.tmp"), "x", 0o644)
	t.Cleanup(func() { makeWritable(dir) })
	return dir
}

func makeWritable(dir string) {
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil {
			_ = os.Chmod(p, 0o755)
		}
		return nil
	})
}

func TestModuleCache(t *testing.T) {
	env := baseEnv(t)
	env["GOMODCACHE"] = buildCache(t)
	rep := mustRun(t, testOptions(t, env))
	checkExpect(t, rep, []expect{
		{IDCache, OK, "2 module zips, 3 extracted trees"},
		{IDCacheWritable, OK, "is writable"},
		{IDCachePartial, Warning, "cache/download/example.com/a/@v/v1.2.0.partial"},
		{IDCacheTmp, Warning, "cache/download/example.com/a/@v/v1.2.0.zip123456.tmp"},
		{IDCacheTmp, Warning, "example.com/a@v1.4.0.tmp-98765/"},
		{IDCacheZiphash, Problem, "example.com/a/@v/v1.1.0.ziphash: not valid base64"},
		{IDCacheZiphash, Problem, "example.com/a/@v/v1.0.0.ziphash: does not start with h1:"},
		{IDCacheZiphash, Problem, "(recomputed from the zip)"},
		{IDCacheNoZiphash, Warning, "example.com/!upper@v1.3.0"},
	})
	for _, f := range rep.Findings {
		if strings.Contains(f.Seen, "data.tmp") || strings.Contains(f.Seen, "download/sumdb/") {
			t.Errorf("module or sumdb file reported: %s", f.Seen)
		}
		if f.ID == IDCacheNoZiphash && strings.Contains(f.Seen, "example.com/a@v1.2.0") {
			t.Errorf("partially extracted tree reported as missing its ziphash: %s", f.Seen)
		}
	}
}

func TestModuleCacheStates(t *testing.T) {
	env := baseEnv(t)
	env["GOMODCACHE"] = filepath.Join(t.TempDir(), "not", "yet")
	checkExpect(t, mustRun(t, testOptions(t, env)), []expect{{IDCache, OK, "does not exist yet"}})

	f := filepath.Join(t.TempDir(), "file")
	writeFile(t, f, "x", 0o644)
	env["GOMODCACHE"] = f
	checkExpect(t, mustRun(t, testOptions(t, env)), []expect{{IDCache, Problem, "not a directory"}})

	env["GOMODCACHE"] = ""
	checkExpect(t, mustRun(t, testOptions(t, env)), []expect{{IDCache, Warning, "GOMODCACHE is empty"}})

	if os.Geteuid() == 0 {
		t.Log("running as root: the read-only cache case cannot be tested")
		return
	}
	dir := t.TempDir()
	dl := filepath.Join(dir, "cache", "download")
	if err := os.MkdirAll(dl, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dl, 0o555); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Chmod(dl, 0o755) })
	env["GOMODCACHE"] = dir
	checkExpect(t, mustRun(t, testOptions(t, env)), []expect{{IDCacheWritable, Problem, "not writable"}})
}

// cacheModule stores a real module version (zip, ziphash, mod, info) in a
// module cache laid out as the go command does.
func cacheModule(t *testing.T, dir string, srv *upstreamtest.Server, path, esc, version string) {
	t.Helper()
	base := filepath.Join(dir, "cache", "download", filepath.FromSlash(esc), "@v", version)
	writeFile(t, base+".zip", string(srv.ZipBytes(path, version)), 0o644)
	writeFile(t, base+".mod", string(srv.ModBytes(path, version)), 0o644)
	writeFile(t, base+".info", `{"Version":"`+version+`"}`, 0o644)
	h, err := dirhash.HashZip(base+".zip", dirhash.Hash1)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, base+".ziphash", h, 0o644)
	if err := modzip.Unzip(filepath.Join(dir, filepath.FromSlash(esc)+"@"+version), module.Version{Path: path, Version: version}, base+".zip"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { makeWritable(dir) })
}

func testModules() []upstreamtest.Module {
	return []upstreamtest.Module{
		{Path: "example.com/canary", Version: "v1.0.0", Files: map[string][]byte{"go.mod": []byte("module example.com/canary\n"), "c.go": []byte("package canary\n")}},
		{Path: "example.com/canary", Version: "v1.1.0", Files: map[string][]byte{"go.mod": []byte("module example.com/canary\n"), "c.go": []byte("package canary\n")}},
		{Path: "example.com/Upper/mod", Version: "v0.1.0", Files: map[string][]byte{"go.mod": []byte("module example.com/Upper/mod\n"), "m.go": []byte("package mod\n")}},
	}
}

func TestModuleCached(t *testing.T) {
	srv := upstreamtest.New(t, testModules())
	env := baseEnv(t)
	dir := t.TempDir()
	env["GOMODCACHE"] = dir
	cacheModule(t, dir, srv, "example.com/Upper/mod", "example.com/!upper/mod", "v0.1.0")

	run := func(mod string) Report {
		m, err := ParseModule(mod)
		if err != nil {
			t.Fatal(err)
		}
		o := testOptions(t, env)
		o.Module = m
		return mustRun(t, o)
	}
	rep := run("example.com/Upper/mod@v0.1.0")
	checkExpect(t, rep, []expect{
		{IDModuleCached, Warning, "cached (.info, .mod, .zip, .ziphash, extracted tree"},
		{IDModuleCached, Warning, "modproxy clean --module example.com/Upper/mod@v0.1.0"},
		{IDModuleCached, Warning, "go clean -modcache"},
	})
	absent(t, rep, IDModuleCached, Problem)
	checkExpect(t, run("example.com/Upper/mod@v0.2.0"), []expect{{IDModuleCached, OK, "not cached"}})
	checkExpect(t, run("example.com/Upper/mod"), []expect{{IDModuleCached, OK, "cached versions: v0.1.0"}})
	checkExpect(t, run("example.com/other"), []expect{{IDModuleCached, OK, "no version is cached"}})

	// go.sum disagrees with the cache: a checksum mismatch waiting to happen.
	env["GOMOD"] = writeModule(t, "module example.com/app\n\ngo 1.22\n\nrequire example.com/Upper/mod v0.1.0\n",
		"example.com/Upper/mod v0.1.0 h1:"+strings.Repeat("B", 43)+"=\n")
	checkExpect(t, run("example.com/Upper/mod@v0.1.0"), []expect{{IDModuleCached, Problem, "go.sum has h1:BBBB"}})

	// A ziphash that does not match its zip.
	env["GOMOD"] = os.DevNull
	zh := filepath.Join(dir, "cache", "download", "example.com", "!upper", "mod", "@v", "v0.1.0.ziphash")
	writeFile(t, zh, "h1:"+strings.Repeat("C", 43)+"=", 0o644)
	checkExpect(t, run("example.com/Upper/mod@v0.1.0"), []expect{{IDModuleCached, Problem, "the zip hashes to h1:"}})
}

func TestModuleRouteOffline(t *testing.T) {
	env := baseEnv(t)
	env["GONOPROXY"] = "corp.example.com"
	env["GONOSUMDB"] = ""
	env["GOINSECURE"] = "corp.example.com/insecure"
	o := testOptions(t, env)
	o.Module, _ = ParseModule("corp.example.com/insecure/lib@v1.0.0")
	checkExpect(t, mustRun(t, o), []expect{
		{IDModuleRoute, Problem, `fetched directly from version control: GONOPROXY pattern "corp.example.com" matches`},
		{IDModuleRoute, Problem, "its path is sent to sum.example.com"},
		{IDModuleRoute, Problem, "GOINSECURE pattern"},
	})

	env["GONOSUMDB"] = "corp.example.com"
	checkExpect(t, mustRun(t, o), []expect{{IDModuleRoute, OK, `not looked up in a checksum database (GONOSUMDB pattern "corp.example.com")`}})

	o.Module, _ = ParseModule("example.com/public@v1.0.0")
	checkExpect(t, mustRun(t, o), []expect{
		{IDModuleRoute, OK, "https://proxy.example.com (not asked: --offline; only 404/410 move on)"},
		{IDModuleRoute, OK, "direct: then fetched from version control"},
		{IDModuleRoute, OK, "looked up in the checksum database sum.example.com"},
	})

	env["GOPROXY"] = "off"
	checkExpect(t, mustRun(t, o), []expect{{IDModuleRoute, Warning, "module lookup disabled"}})
	env["GOSUMDB"] = "off"
	o.Module, _ = ParseModule("golang.org/toolchain@v0.0.1-go1.22.0.linux-amd64")
	checkExpect(t, mustRun(t, o), []expect{{IDModuleRoute, Warning, "always verified"}})
}

func TestRunCancelled(t *testing.T) {
	env := baseEnv(t)
	env["GOMODCACHE"] = buildCache(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	o := testOptions(t, env)
	if _, err := Run(ctx, o); err == nil {
		t.Error("Run with a cancelled context: no error")
	}
}
