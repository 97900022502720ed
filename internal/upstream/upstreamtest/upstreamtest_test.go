package upstreamtest_test

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/mod/module"
	"golang.org/x/mod/sumdb"
	"golang.org/x/mod/sumdb/dirhash"
	modzip "golang.org/x/mod/zip"

	"github.com/modproxy/modproxy/internal/upstream/upstreamtest"
)

// ---- helpers ----

func loadTestdata(t *testing.T) []upstreamtest.Module {
	t.Helper()
	mods, err := upstreamtest.LoadDir("testdata")
	if err != nil {
		t.Fatal(err)
	}
	return mods
}

func newServer(t *testing.T, opts ...upstreamtest.Option) *upstreamtest.Server {
	t.Helper()
	return upstreamtest.New(t, loadTestdata(t), opts...)
}

// newClient returns an HTTP client with its own connection pool.
func newClient(t *testing.T) *http.Client {
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

type result struct {
	code   int
	header http.Header
	body   []byte
}

// fetch does one request and reads the whole answer; a transport error fails the test.
func fetch(t *testing.T, c *http.Client, method, url string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, url, err)
	}
	if resp.Header.Get("Content-Length") == "" {
		t.Errorf("%s %s: no Content-Length", method, url)
	}
	if method != http.MethodHead && resp.ContentLength != int64(len(body)) {
		t.Errorf("%s %s: Content-Length %d, body %d bytes", method, url, resp.ContentLength, len(body))
	}
	return result{resp.StatusCode, resp.Header, body}
}

func get(t *testing.T, c *http.Client, s *upstreamtest.Server, p string) result {
	t.Helper()
	return fetch(t, c, http.MethodGet, s.URL()+"/"+p)
}

type info struct {
	Version string
	Time    time.Time
}

func parseInfo(t *testing.T, body []byte) info {
	t.Helper()
	var i info
	if err := json.Unmarshal(body, &i); err != nil {
		t.Fatalf("info %q: %v", body, err)
	}
	return i
}

func zipNames(t *testing.T, z []byte) []string {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(z), int64(len(z)))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range zr.File {
		names = append(names, f.Name)
	}
	return names
}

func zipFile(t *testing.T, z []byte, name string) ([]byte, bool) {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(z), int64(len(z)))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range zr.File {
		if f.Name == name {
			rc, err := f.Open()
			if err != nil {
				t.Fatal(err)
			}
			defer rc.Close()
			data, err := io.ReadAll(rc)
			if err != nil {
				t.Fatal(err)
			}
			return data, true
		}
	}
	return nil, false
}

func writeTemp(t *testing.T, name string, data []byte) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return file
}

func escPath(t *testing.T, p string) string {
	t.Helper()
	e, err := module.EscapePath(p)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func escVersion(t *testing.T, v string) string {
	t.Helper()
	e, err := module.EscapeVersion(v)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// waitRequests waits until the server has received n requests for p.
func waitRequests(t *testing.T, s *upstreamtest.Server, p string, n int) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for s.Requests(p) < n {
		if time.Now().After(deadline) {
			t.Fatalf("server never received %d requests for %s (log %q)", n, p, s.Log())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// fatalTB records the first Fatalf and ends the calling goroutine, like testing.T.
type fatalTB struct {
	testing.TB
	mu       sync.Mutex
	msg      string
	cleanups []func()
}

func (f *fatalTB) Helper() {}
func (f *fatalTB) Fatalf(format string, args ...any) {
	f.mu.Lock()
	f.msg = fmt.Sprintf(format, args...)
	f.mu.Unlock()
	runtime.Goexit()
}
func (f *fatalTB) Cleanup(fn func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cleanups = append(f.cleanups, fn)
}
func (f *fatalTB) cleanup() {
	for i := len(f.cleanups) - 1; i >= 0; i-- {
		f.cleanups[i]()
	}
}

// inGoroutine runs fn in its own goroutine, which Fatalf may end, and waits for it.
func inGoroutine(fn func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn()
	}()
	<-done
}

// ---- module.go ----

func TestParseTxtar(t *testing.T) {
	good := `# a comment
module example.com/m
version v1.2.3
time 2024-05-06T07:08:09Z

-- go.mod --
module example.com/m
-- m.go --
package m
-- sub/x.go --
package sub
`
	m, err := upstreamtest.ParseTxtar([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if m.Path != "example.com/m" || m.Version != "v1.2.3" || !m.Time.Equal(time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)) {
		t.Errorf("got %s %s %v", m.Path, m.Version, m.Time)
	}
	want := map[string]string{"go.mod": "module example.com/m\n", "m.go": "package m\n", "sub/x.go": "package sub\n"}
	if len(m.Files) != len(want) {
		t.Errorf("files %v, want %v", m.Files, want)
	}
	for name, data := range want {
		if string(m.Files[name]) != data {
			t.Errorf("file %s = %q, want %q", name, m.Files[name], data)
		}
	}

	noTime, err := upstreamtest.ParseTxtar([]byte("module example.com/m\nversion v0.0.0-20240102030405-abcdefabcdef\n"))
	if err != nil {
		t.Fatal(err)
	}
	if !noTime.Time.IsZero() || len(noTime.Files) != 0 {
		t.Errorf("got %+v", noTime)
	}

	bad := map[string]string{
		"no module":          "version v1.0.0\n",
		"no version":         "module example.com/m\n",
		"non-canonical":      "module example.com/m\nversion v1.0\n",
		"not semver":         "module example.com/m\nversion master\n",
		"bad path":           "module example.com//m\nversion v1.0.0\n",
		"major mismatch":     "module example.com/m/v2\nversion v1.0.0\n",
		"v2 without suffix":  "module example.com/m\nversion v2.0.0\n",
		"unknown directive":  "module example.com/m\nversion v1.0.0\nauthor me\n",
		"empty value":        "module\nversion v1.0.0\n",
		"bad time":           "module example.com/m\nversion v1.0.0\ntime yesterday\n",
		"duplicate file":     "module example.com/m\nversion v1.0.0\n-- a.go --\npackage a\n-- a.go --\npackage a\n",
		"upper-case escaped": "module github.com/!upper/!case\nversion v1.0.0\n",
	}
	for name, data := range bad {
		t.Run(name, func(t *testing.T) {
			if m, err := upstreamtest.ParseTxtar([]byte(data)); err == nil {
				t.Errorf("ParseTxtar succeeded: %+v", m)
			}
		})
	}
}

func TestLoadDir(t *testing.T) {
	mods := loadTestdata(t)
	var got []string
	for _, m := range mods {
		got = append(got, m.Path+"@"+m.Version)
	}
	want := []string{
		"example.com/a@v1.0.0",
		"example.com/a@v1.1.0",
		"example.com/a@v1.2.0-pre",
		"example.com/b/v2@v2.0.0",
		"example.com/c@v3.0.0+incompatible",
		"github.com/Upper/Case@v1.0.0",
	}
	if !slices.Equal(got, want) {
		t.Errorf("LoadDir = %q, want %q", got, want)
	}
	for _, m := range mods {
		if _, ok := m.Files["go.mod"]; ok == (m.Path == "example.com/c") {
			t.Errorf("%s: has go.mod = %v", m.Path, ok)
		}
	}

	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "bad.txtar"), []byte("module example.com/x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := upstreamtest.LoadDir(dir); err == nil || !strings.Contains(err.Error(), "bad.txtar") {
		t.Errorf("LoadDir of a bad file: err = %v, want one naming the file", err)
	}
	if mods, err := upstreamtest.LoadDir(t.TempDir()); err != nil || len(mods) != 0 {
		t.Errorf("LoadDir of an empty dir = %v, %v", mods, err)
	}
}

// ---- the protocol ----

func TestProtocol(t *testing.T) {
	s := newServer(t)
	c := newClient(t)
	aMod := "module example.com/a\n\ngo 1.21\n"
	tests := []struct {
		path        string
		code        int
		contentType string
		body        string // exact, unless prefix is set
		prefix      bool
	}{
		{"example.com/a/@v/list", 200, "text/plain", "v1.0.0\nv1.1.0\nv1.2.0-pre\n", false},
		{"example.com/a/@latest", 200, "application/json", `{"Version":"v1.1.0","Time":"2024-02-03T04:05:06Z"}` + "\n", false},
		{"example.com/a/@v/v1.0.0.info", 200, "application/json", `{"Version":"v1.0.0","Time":"2024-01-02T03:04:05Z"}` + "\n", false},
		{"example.com/a/@v/v1.2.0-pre.info", 200, "application/json", `{"Version":"v1.2.0-pre","Time":"2024-03-04T05:06:07Z"}` + "\n", false},
		{"example.com/a/@v/v1.0.0.mod", 200, "text/plain", aMod, false},
		{"github.com/!upper/!case/@v/list", 200, "text/plain", "v1.0.0\n", false},
		{"github.com/!upper/!case/@latest", 200, "application/json", `{"Version":"v1.0.0","Time":"2024-01-05T00:00:00Z"}` + "\n", false},
		{"github.com/!upper/!case/@v/v1.0.0.mod", 200, "text/plain", "module github.com/Upper/Case\n\ngo 1.21\n", false},
		{"example.com/b/v2/@v/list", 200, "text/plain", "v2.0.0\n", false},
		{"example.com/b/v2/@v/v2.0.0.mod", 200, "text/plain", "module example.com/b/v2\n\ngo 1.21\n", false},
		{"example.com/c/@v/list", 200, "text/plain", "v3.0.0+incompatible\n", false},
		{"example.com/c/@v/v3.0.0+incompatible.mod", 200, "text/plain", "module example.com/c\n", false},
		{"example.com/c/@latest", 200, "application/json", `{"Version":"v3.0.0+incompatible","Time":"2024-01-07T00:00:00Z"}` + "\n", false},
		// Not found: one line, "not found: ...".
		{"github.com/Upper/Case/@v/list", 404, "text/plain", "not found: ", true},
		{"github.com/Upper/Case/@v/v1.0.0.info", 404, "text/plain", "not found: ", true},
		{"example.com/nope/@v/list", 404, "text/plain", "not found: ", true},
		{"example.com/nope/@latest", 404, "text/plain", "not found: ", true},
		{"example.com/a/@v/v9.9.9.info", 404, "text/plain", "not found: ", true},
		{"example.com/a/@v/v9.9.9.zip", 404, "text/plain", "not found: ", true},
		{"example.com/a/@v/v1.0.0.txt", 404, "text/plain", "not found: ", true},
		{"example.com/a/@v/v1.0.0", 404, "text/plain", "not found: ", true},
		{"example.com/a/@v/master.info", 404, "text/plain", "not found: ", true},
		{"example.com/a/@v/v1.0.info", 404, "text/plain", "not found: ", true},
		{"example.com/a", 404, "text/plain", "not found: ", true},
		{"", 404, "text/plain", "not found: ", true},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			r := get(t, c, s, tt.path)
			if r.code != tt.code {
				t.Errorf("code %d, want %d (body %q)", r.code, tt.code, r.body)
			}
			if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, tt.contentType) {
				t.Errorf("Content-Type %q, want %q", ct, tt.contentType)
			}
			if tt.prefix {
				if !bytes.HasPrefix(r.body, []byte(tt.body)) || bytes.Count(r.body, []byte("\n")) != 1 || !bytes.HasSuffix(r.body, []byte("\n")) {
					t.Errorf("body %q, want one line starting with %q", r.body, tt.body)
				}
			} else if string(r.body) != tt.body {
				t.Errorf("body %q, want %q", r.body, tt.body)
			}
		})
	}
}

func TestZips(t *testing.T) {
	s := newServer(t)
	c := newClient(t)
	for _, m := range loadTestdata(t) {
		t.Run(m.Path+"@"+m.Version, func(t *testing.T) {
			base := escPath(t, m.Path) + "/@v/" + escVersion(t, m.Version)
			r := get(t, c, s, base+".zip")
			if r.code != 200 || r.header.Get("Content-Type") != "application/zip" {
				t.Fatalf("code %d, Content-Type %q", r.code, r.header.Get("Content-Type"))
			}
			if !bytes.Equal(r.body, s.ZipBytes(m.Path, m.Version)) {
				t.Error("served zip differs from ZipBytes")
			}
			prefix := m.Path + "@" + m.Version + "/"
			names := zipNames(t, r.body)
			for _, name := range names {
				if !strings.HasPrefix(name, prefix) {
					t.Errorf("zip entry %q lacks prefix %q", name, prefix)
				}
			}
			if len(names) != len(m.Files) {
				t.Errorf("zip entries %q, want one per file of %v", names, slices.Collect(mapsKeys(m.Files)))
			}

			mod := get(t, c, s, base+".mod")
			if !bytes.Equal(mod.body, s.ModBytes(m.Path, m.Version)) {
				t.Errorf(".mod %q differs from ModBytes %q", mod.body, s.ModBytes(m.Path, m.Version))
			}
			inZip, ok := zipFile(t, r.body, prefix+"go.mod")
			if _, has := m.Files["go.mod"]; has {
				if !ok || !bytes.Equal(inZip, mod.body) {
					t.Errorf("go.mod in zip %q (present %v), want .mod %q", inZip, ok, mod.body)
				}
			} else {
				if ok {
					t.Errorf("zip has a go.mod %q, but the module has none", inZip)
				}
				if want := "module " + m.Path + "\n"; string(mod.body) != want {
					t.Errorf(".mod = %q, want %q", mod.body, want)
				}
			}

			// The zip is a valid module zip, and GoSum holds dirhash.HashZip of it.
			file := writeTemp(t, "m.zip", r.body)
			if _, err := modzip.CheckZip(module.Version{Path: m.Path, Version: m.Version}, file); err != nil {
				t.Errorf("CheckZip: %v", err)
			}
			zipHash, err := dirhash.HashZip(file, dirhash.DefaultHash)
			if err != nil {
				t.Fatal(err)
			}
			modHash, err := dirhash.Hash1([]string{"go.mod"}, func(string) (io.ReadCloser, error) {
				return io.NopCloser(bytes.NewReader(mod.body)), nil
			})
			if err != nil {
				t.Fatal(err)
			}
			want := fmt.Sprintf("%s %s %s\n%s %s/go.mod %s\n", m.Path, m.Version, zipHash, m.Path, m.Version, modHash)
			if got := s.GoSum(m.Path, m.Version); got != want {
				t.Errorf("GoSum = %q, want %q", got, want)
			}

			// The .info reports the version asked, with the txtar's time.
			if i := parseInfo(t, get(t, c, s, base+".info").body); i.Version != m.Version || !i.Time.Equal(m.Time) {
				t.Errorf(".info = %+v, want %s %v", i, m.Version, m.Time)
			}
		})
	}
	if s.ZipBytes("example.com/a", "v9.0.0") != nil || s.ModBytes("example.com/nope", "v1.0.0") != nil || s.GoSum("example.com/a", "v9.0.0") != "" {
		t.Error("ZipBytes/ModBytes/GoSum of an unknown version are not empty")
	}
	// Callers get copies.
	z := s.ZipBytes("example.com/a", "v1.0.0")
	z[0] ^= 0xff
	if bytes.Equal(z, s.ZipBytes("example.com/a", "v1.0.0")) {
		t.Error("ZipBytes returns the server's own slice")
	}
}

func mapsKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func TestPercentEncodedAndMethods(t *testing.T) {
	s := newServer(t)
	c := newClient(t)

	// The go command sends "!" as %21 in module URLs; "+" arrives literally or as %2B.
	for _, p := range []string{
		"github.com/%21upper/%21case/@v/v1.0.0.info",
		"example.com/c/@v/v3.0.0%2Bincompatible.info",
	} {
		r := fetch(t, c, http.MethodGet, s.URL()+"/"+p)
		if r.code != 200 {
			t.Errorf("%s: code %d %q", p, r.code, r.body)
		}
	}
	if n := s.Requests("github.com/!upper/!case/@v/v1.0.0.info"); n != 1 {
		t.Errorf("Requests of the decoded path = %d, want 1 (log %q)", n, s.Log())
	}
	if n := s.Requests("example.com/c/@v/v3.0.0+incompatible.info"); n != 1 {
		t.Errorf("Requests of the decoded +incompatible path = %d, want 1 (log %q)", n, s.Log())
	}

	// HEAD: headers and Content-Length, no body.
	zipLen := len(s.ZipBytes("example.com/a", "v1.0.0"))
	r := fetch(t, c, http.MethodHead, s.URL()+"/example.com/a/@v/v1.0.0.zip")
	if r.code != 200 || len(r.body) != 0 || r.header.Get("Content-Length") != fmt.Sprint(zipLen) {
		t.Errorf("HEAD: code %d, body %d bytes, Content-Length %q, want 200, 0, %d", r.code, len(r.body), r.header.Get("Content-Length"), zipLen)
	}

	// Other methods: 405 with Allow.
	for _, method := range []string{http.MethodPost, http.MethodPut, http.MethodDelete} {
		r := fetch(t, c, method, s.URL()+"/example.com/a/@v/list")
		if r.code != http.StatusMethodNotAllowed || !strings.Contains(r.header.Get("Allow"), "GET") {
			t.Errorf("%s: code %d, Allow %q", method, r.code, r.header.Get("Allow"))
		}
	}
	r = fetch(t, c, http.MethodPost, s.URL()+"/sumdb/"+upstreamtest.DefaultSumDBName+"/supported")
	if r.code != http.StatusMethodNotAllowed {
		t.Errorf("POST supported: code %d", r.code)
	}
}

func TestLatestAndList(t *testing.T) {
	pseudoOld := "v0.0.0-20230101000000-aaaaaaaaaaaa"
	pseudoNew := "v0.0.0-20240101000000-bbbbbbbbbbbb"
	mods := []upstreamtest.Module{
		{Path: "example.com/pseudo", Version: pseudoOld},
		{Path: "example.com/pseudo", Version: pseudoNew},
		{Path: "example.com/pre", Version: pseudoNew},
		{Path: "example.com/pre", Version: "v0.1.0-rc.1"},
		{Path: "example.com/pre", Version: "v0.1.0-beta"},
		{Path: "example.com/rel", Version: "v1.10.0"},
		{Path: "example.com/rel", Version: "v1.9.0"},
		{Path: "example.com/rel", Version: "v1.11.0-pre"},
		{Path: "example.com/rel", Version: "v1.9.1-0.20240101000000-bbbbbbbbbbbb"},
		{Path: "example.com/rel", Version: "v2.0.0+incompatible"},
	}
	s := upstreamtest.New(t, mods, upstreamtest.WithoutSumDB())
	c := newClient(t)

	for _, tt := range []struct{ mod, list, latest string }{
		{"example.com/pseudo", "", pseudoNew},
		{"example.com/pre", "v0.1.0-beta\nv0.1.0-rc.1\n", "v0.1.0-rc.1"},
		{"example.com/rel", "v1.9.0\nv1.10.0\nv1.11.0-pre\nv2.0.0+incompatible\n", "v2.0.0+incompatible"},
	} {
		r := get(t, c, s, tt.mod+"/@v/list")
		if r.code != 200 || string(r.body) != tt.list {
			t.Errorf("%s list: %d %q, want 200 %q", tt.mod, r.code, r.body, tt.list)
		}
		if i := parseInfo(t, get(t, c, s, tt.mod+"/@latest").body); i.Version != tt.latest {
			t.Errorf("%s @latest = %s, want %s", tt.mod, i.Version, tt.latest)
		}
	}

	// A pseudo-version without Time reports the time it encodes; a
	// version without Time reports a fixed one.
	if i := parseInfo(t, get(t, c, s, "example.com/pseudo/@v/"+pseudoNew+".info").body); !i.Time.Equal(time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("pseudo .info Time = %v", i.Time)
	}
	if i := parseInfo(t, get(t, c, s, "example.com/rel/@v/v1.9.0.info").body); i.Time.IsZero() {
		t.Errorf(".info Time is zero")
	}
	// A module with no files: .mod is synthesized, the zip is empty but valid.
	if r := get(t, c, s, "example.com/rel/@v/v1.9.0.zip"); r.code != 200 || len(zipNames(t, r.body)) != 0 {
		t.Errorf("empty module zip: %d, entries %q", r.code, zipNames(t, r.body))
	}
}

func TestAdd(t *testing.T) {
	s := newServer(t)
	c := newClient(t)
	s.Add(upstreamtest.Module{
		Path:    "example.com/a",
		Version: "v1.3.0",
		Files:   map[string][]byte{"go.mod": []byte("module example.com/a\n"), "a.go": []byte("package a\n")},
	})
	if r := get(t, c, s, "example.com/a/@v/list"); string(r.body) != "v1.0.0\nv1.1.0\nv1.2.0-pre\nv1.3.0\n" {
		t.Errorf("list after Add = %q", r.body)
	}
	if i := parseInfo(t, get(t, c, s, "example.com/a/@latest").body); i.Version != "v1.3.0" {
		t.Errorf("@latest after Add = %s", i.Version)
	}

	// A new module.
	s.Add(upstreamtest.Module{Path: "example.com/new", Version: "v0.1.0"})
	if r := get(t, c, s, "example.com/new/@v/list"); r.code != 200 || string(r.body) != "v0.1.0\n" {
		t.Errorf("list of an added module = %d %q", r.code, r.body)
	}

	// Replacing a version's content.
	before := s.ZipBytes("example.com/a", "v1.3.0")
	files := map[string][]byte{"go.mod": []byte("module example.com/a\n"), "a.go": []byte("package a // v2 of the content\n")}
	s.Add(upstreamtest.Module{Path: "example.com/a", Version: "v1.3.0", Files: files})
	after := get(t, c, s, "example.com/a/@v/v1.3.0.zip").body
	if bytes.Equal(before, after) || !bytes.Equal(after, s.ZipBytes("example.com/a", "v1.3.0")) {
		t.Error("Add of an existing version did not replace its zip")
	}
	// The server keeps its own copy of the files.
	files["a.go"][0] = 'X'
	if got, _ := zipFile(t, s.ZipBytes("example.com/a", "v1.3.0"), "example.com/a@v1.3.0/a.go"); got[0] != 'p' {
		t.Error("Add did not copy the files")
	}
}

func TestAddQuery(t *testing.T) {
	s := newServer(t)
	c := newClient(t)
	s.AddQuery("example.com/a", "main", "v1.1.0")
	s.AddQuery("example.com/a", "v1.0", "v1.0.0")
	s.AddQuery("example.com/a", "0123abcd", "v1.2.0-pre")
	s.AddQuery("github.com/Upper/Case", "Feature", "v1.0.0")
	s.AddQuery("example.com/a", "gone", "v1.9.0")

	for query, want := range map[string]string{
		"example.com/a/@v/main.info":               "v1.1.0",
		"example.com/a/@v/v1.0.info":               "v1.0.0",
		"example.com/a/@v/0123abcd.info":           "v1.2.0-pre",
		"github.com/!upper/!case/@v/!feature.info": "v1.0.0",
	} {
		r := get(t, c, s, query)
		if r.code != 200 {
			t.Errorf("%s: code %d %q", query, r.code, r.body)
			continue
		}
		if i := parseInfo(t, r.body); i.Version != want {
			t.Errorf("%s reports %s, want %s", query, i.Version, want)
		}
	}
	for _, p := range []string{
		"example.com/a/@v/gone.info",  // resolves to an unserved version
		"example.com/a/@v/main.zip",   // queries resolve only for .info
		"example.com/a/@v/main.mod",   //
		"example.com/a/@v/other.info", // unknown query
	} {
		if r := get(t, c, s, p); r.code != 404 {
			t.Errorf("%s: code %d, want 404", p, r.code)
		}
	}
	// Resolved at request time: serving the version later makes the query work.
	s.Add(upstreamtest.Module{Path: "example.com/a", Version: "v1.9.0"})
	if r := get(t, c, s, "example.com/a/@v/gone.info"); r.code != 200 || parseInfo(t, r.body).Version != "v1.9.0" {
		t.Errorf("gone.info after Add: %d %q", r.code, r.body)
	}
	// Queries never appear in the list.
	if r := get(t, c, s, "example.com/a/@v/list"); strings.Contains(string(r.body), "main") {
		t.Errorf("list %q contains a query", r.body)
	}
}

func TestFatalMisuse(t *testing.T) {
	run := func(fn func(tb *fatalTB)) string {
		tb := &fatalTB{TB: t}
		defer tb.cleanup()
		inGoroutine(func() { fn(tb) })
		tb.mu.Lock()
		defer tb.mu.Unlock()
		return tb.msg
	}
	for name, fn := range map[string]func(tb *fatalTB){
		"New non-canonical": func(tb *fatalTB) {
			upstreamtest.New(tb, []upstreamtest.Module{{Path: "example.com/x", Version: "v1.0"}})
		},
		"New bad file name": func(tb *fatalTB) {
			upstreamtest.New(tb, []upstreamtest.Module{{Path: "example.com/x", Version: "v1.0.0", Files: map[string][]byte{"../x.go": nil}}})
		},
		"New bad sumdb name": func(tb *fatalTB) {
			upstreamtest.New(tb, nil, upstreamtest.WithSumDBName("has+plus"))
		},
		"Add major mismatch": func(tb *fatalTB) {
			upstreamtest.New(tb, nil).Add(upstreamtest.Module{Path: "example.com/x/v2", Version: "v1.0.0"})
		},
		"AddQuery non-canonical": func(tb *fatalTB) {
			upstreamtest.New(tb, nil).AddQuery("example.com/x", "main", "v1")
		},
		"SetFault zero kind": func(tb *fatalTB) {
			upstreamtest.New(tb, nil).SetFault("ALL", upstreamtest.Fault{})
		},
		"SetFault bad pattern": func(tb *fatalTB) {
			upstreamtest.New(tb, nil).SetFault("example.com/[", upstreamtest.Fault{Kind: upstreamtest.NotFound})
		},
		"SetFault bad status": func(tb *fatalTB) {
			upstreamtest.New(tb, nil).SetFault("ALL", upstreamtest.Fault{Kind: upstreamtest.Status, Code: 42})
		},
		"SetFault negative Times": func(tb *fatalTB) {
			upstreamtest.New(tb, nil).SetFault("ALL", upstreamtest.Fault{Kind: upstreamtest.Gone, Times: -1})
		},
	} {
		t.Run(name, func(t *testing.T) {
			if msg := run(fn); msg == "" {
				t.Error("no Fatalf")
			} else {
				t.Logf("Fatalf: %s", msg)
			}
		})
	}
	if msg := run(func(tb *fatalTB) { upstreamtest.New(tb, loadTestdata(t)) }); msg != "" {
		t.Errorf("valid New: Fatalf %s", msg)
	}
}

// ---- faults ----

func TestStatusFaults(t *testing.T) {
	const p = "example.com/a/@v/v1.0.0.zip"
	for _, tt := range []struct {
		fault      upstreamtest.Fault
		code       int
		retryAfter string
	}{
		{upstreamtest.Fault{Kind: upstreamtest.NotFound}, 404, ""},
		{upstreamtest.Fault{Kind: upstreamtest.Gone}, 410, ""},
		{upstreamtest.Fault{Kind: upstreamtest.ServerError}, 500, ""},
		{upstreamtest.Fault{Kind: upstreamtest.Status, Code: 403}, 403, ""},
		{upstreamtest.Fault{Kind: upstreamtest.Status, Code: 200}, 200, ""},
		{upstreamtest.Fault{Kind: upstreamtest.Status}, 500, ""},
		{upstreamtest.Fault{Kind: upstreamtest.RetryAfter, Code: 7}, 503, "7"},
	} {
		t.Run(fmt.Sprintf("%v/%d", tt.fault.Kind, tt.fault.Code), func(t *testing.T) {
			s := newServer(t)
			c := newClient(t)
			s.SetFault(p, tt.fault)
			for range 3 {
				r := get(t, c, s, p)
				if r.code != tt.code {
					t.Errorf("code %d, want %d", r.code, tt.code)
				}
				if got := r.header.Get("Retry-After"); got != tt.retryAfter {
					t.Errorf("Retry-After %q, want %q", got, tt.retryAfter)
				}
				if bytes.Count(r.body, []byte("\n")) != 1 || bytes.Equal(r.body, s.ZipBytes("example.com/a", "v1.0.0")) {
					t.Errorf("body %q, want one line of text", r.body)
				}
				if tt.code == 404 && !bytes.HasPrefix(r.body, []byte("not found: ")) {
					t.Errorf("404 body %q", r.body)
				}
			}
			if n := s.Requests(p); n != 3 {
				t.Errorf("Requests = %d, want 3 (faulted requests count)", n)
			}
			// Other paths are not affected.
			if r := get(t, c, s, "example.com/a/@v/v1.0.0.mod"); r.code != 200 {
				t.Errorf("unfaulted path: %d", r.code)
			}
		})
	}
}

func TestFaultTimesAndMatching(t *testing.T) {
	s := newServer(t)
	c := newClient(t)
	const list = "example.com/a/@v/list"

	s.SetFault(list, upstreamtest.Fault{Kind: upstreamtest.ServerError, Times: 2})
	var codes []int
	for range 4 {
		codes = append(codes, get(t, c, s, list).code)
	}
	if !slices.Equal(codes, []int{500, 500, 200, 200}) {
		t.Errorf("codes with Times 2 = %v", codes)
	}
	// Setting the key again restarts Times.
	s.SetFault(list, upstreamtest.Fault{Kind: upstreamtest.Gone, Times: 1})
	if a, b := get(t, c, s, list).code, get(t, c, s, list).code; a != 410 || b != 200 {
		t.Errorf("codes after re-set = %d %d", a, b)
	}
	s.ClearFaults()

	// Exact beats pattern beats ALL; a healed exact fault lets the pattern through.
	s.SetFault("ALL", upstreamtest.Fault{Kind: upstreamtest.ServerError})
	s.SetFault("example.com/a/@v/*.zip", upstreamtest.Fault{Kind: upstreamtest.NotFound})
	s.SetFault("example.com/a/@v/v1.0.0.zip", upstreamtest.Fault{Kind: upstreamtest.Gone, Times: 1})
	for _, tt := range []struct {
		path string
		code int
	}{
		{"example.com/a/@v/v1.0.0.zip", 410},
		{"example.com/a/@v/v1.0.0.zip", 404},
		{"example.com/a/@v/v1.1.0.zip", 404},
		{"example.com/a/@v/v1.1.0.mod", 500},
		{"example.com/a/@latest", 500},
		{"github.com/!upper/!case/@v/v1.0.0.zip", 500},
		{"sumdb/" + upstreamtest.DefaultSumDBName + "/supported", 500},
		{"example.com/nope/@v/list", 500},
	} {
		if r := get(t, c, s, tt.path); r.code != tt.code {
			t.Errorf("%s: code %d, want %d", tt.path, r.code, tt.code)
		}
	}
	// "*" does not cross "/": a pattern for one module's files leaves others alone.
	s.ClearFaults()
	s.SetFault("example.com/*/@v/list", upstreamtest.Fault{Kind: upstreamtest.NotFound})
	if r := get(t, c, s, "example.com/a/@v/list"); r.code != 404 {
		t.Errorf("pattern: code %d, want 404", r.code)
	}
	if r := get(t, c, s, "example.com/b/v2/@v/list"); r.code != 200 {
		t.Errorf("pattern crossing /: code %d, want 200", r.code)
	}
	s.ClearFaults()
	if r := get(t, c, s, "example.com/a/@v/list"); r.code != 200 {
		t.Errorf("after ClearFaults: code %d", r.code)
	}
}

func TestFaultHang(t *testing.T) {
	s := newServer(t)
	c := newClient(t)
	const p = "example.com/a/@v/v1.0.0.info"
	s.SetFault(p, upstreamtest.Fault{Kind: upstreamtest.Hang})

	// Until the client gives up.
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.URL()+"/"+p, nil)
	if resp, err := c.Do(req); !errors.Is(err, context.DeadlineExceeded) {
		if resp != nil {
			resp.Body.Close()
		}
		t.Fatalf("hung request: err = %v, want deadline exceeded", err)
	}

	// Until the server stops.
	errc := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.URL()+"/"+p, nil)
		resp, err := c.Do(req)
		if err == nil {
			resp.Body.Close()
			err = fmt.Errorf("got a response: %s", resp.Status)
		}
		errc <- err
	}()
	waitRequests(t, s, p, 2)
	s.Stop() // must not wait for the hung handler's client
	if err := <-errc; errors.Is(err, context.DeadlineExceeded) || strings.Contains(err.Error(), "got a response") {
		t.Errorf("hung request after Stop: %v, want a connection error", err)
	}
	s.Start()
	s.ClearFaults()
	if r := get(t, c, s, p); r.code != 200 {
		t.Errorf("after restart: code %d", r.code)
	}
}

func TestFaultDelay(t *testing.T) {
	s := newServer(t)
	c := newClient(t)
	const p = "example.com/a/@v/v1.0.0.mod"

	s.SetFault(p, upstreamtest.Fault{Kind: upstreamtest.Delay, Delay: time.Hour})
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.URL()+"/"+p, nil)
	if resp, err := c.Do(req); !errors.Is(err, context.DeadlineExceeded) {
		if resp != nil {
			resp.Body.Close()
		}
		t.Fatalf("delayed request: err = %v, want deadline exceeded", err)
	}

	s.SetFault(p, upstreamtest.Fault{Kind: upstreamtest.Delay, Delay: 10 * time.Millisecond})
	if r := get(t, c, s, p); r.code != 200 || !bytes.Equal(r.body, s.ModBytes("example.com/a", "v1.0.0")) {
		t.Errorf("short delay: %d %q", r.code, r.body)
	}
}

func TestFaultReset(t *testing.T) {
	s := newServer(t)
	c := newClient(t)
	const p = "example.com/a/@v/v1.1.0.zip"
	honest := s.ZipBytes("example.com/a", "v1.1.0")
	s.SetFault(p, upstreamtest.Fault{Kind: upstreamtest.Reset, Times: 1})

	resp, err := c.Get(s.URL() + "/" + p)
	if err != nil {
		t.Fatalf("want 200 headers before the reset, got %v", err)
	}
	if resp.StatusCode != 200 || resp.ContentLength != int64(len(honest)) {
		t.Errorf("status %d, Content-Length %d, want 200, %d", resp.StatusCode, resp.ContentLength, len(honest))
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err == nil {
		t.Fatalf("read %d bytes without error, want a reset", len(body))
	}
	if !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("read error %v, want unexpected EOF or connection reset", err)
	}
	if len(body) >= len(honest) || !bytes.Equal(body, honest[:len(body)]) {
		t.Errorf("got %d bytes, want an honest prefix shorter than %d", len(body), len(honest))
	}
	t.Logf("reset after %d of %d bytes: %v", len(body), len(honest), err)

	// Healed after Times; the client recovers on a new connection.
	if r := get(t, c, s, p); r.code != 200 || !bytes.Equal(r.body, honest) {
		t.Errorf("after heal: %d, %d bytes", r.code, len(r.body))
	}
}

func TestFaultSlowBody(t *testing.T) {
	s := newServer(t)
	c := newClient(t)
	const p = "example.com/a/@v/v1.1.0.zip"
	honest := s.ZipBytes("example.com/a", "v1.1.0")

	// Small delay: the whole body arrives, intact.
	s.SetFault(p, upstreamtest.Fault{Kind: upstreamtest.SlowBody, Chunk: 100, Delay: time.Millisecond})
	if r := get(t, c, s, p); r.code != 200 || !bytes.Equal(r.body, honest) {
		t.Errorf("slow body: %d, %d bytes, want 200, the honest %d", r.code, len(r.body), len(honest))
	}

	// Long delay: headers and the first chunk at once, then nothing.
	const chunk = 10
	s.SetFault(p, upstreamtest.Fault{Kind: upstreamtest.SlowBody, Chunk: chunk, Delay: time.Hour})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.URL()+"/"+p, nil)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.ContentLength != int64(len(honest)) {
		t.Errorf("Content-Length %d, want %d", resp.ContentLength, len(honest))
	}
	first := make([]byte, chunk)
	if _, err := io.ReadFull(resp.Body, first); err != nil || !bytes.Equal(first, honest[:chunk]) {
		t.Fatalf("first chunk %q, %v", first, err)
	}
	time.AfterFunc(50*time.Millisecond, cancel)
	if n, err := io.ReadFull(resp.Body, make([]byte, chunk)); err == nil {
		t.Errorf("read a second chunk (%d bytes) within the delay", n)
	}
}

func TestFaultWrongVersion(t *testing.T) {
	s := newServer(t)
	c := newClient(t)
	s.SetFault("ALL", upstreamtest.Fault{Kind: upstreamtest.WrongVersion})

	// Another served version: the highest other one.
	if i := parseInfo(t, get(t, c, s, "example.com/a/@v/v1.0.0.info").body); i.Version != "v1.2.0-pre" {
		t.Errorf("wrong .info reports %s, want v1.2.0-pre", i.Version)
	}
	if i := parseInfo(t, get(t, c, s, "example.com/a/@latest").body); i.Version == "v1.1.0" {
		t.Errorf("wrong @latest reports the honest %s", i.Version)
	}
	r := get(t, c, s, "example.com/a/@v/v1.0.0.zip")
	if !bytes.Equal(r.body, s.ZipBytes("example.com/a", "v1.2.0-pre")) {
		t.Errorf("wrong .zip is not that of v1.2.0-pre: entries %q", zipNames(t, r.body))
	}
	// The list is honest.
	if r := get(t, c, s, "example.com/a/@v/list"); string(r.body) != "v1.0.0\nv1.1.0\nv1.2.0-pre\n" {
		t.Errorf("list %q", r.body)
	}

	// No other version: a made-up one of the same major version.
	for _, tt := range []struct{ path, vers, other string }{
		{"github.com/Upper/Case", "v1.0.0", "v1.999.0"},
		{"example.com/b/v2", "v2.0.0", "v2.999.0"},
		{"example.com/c", "v3.0.0+incompatible", "v3.999.0+incompatible"},
	} {
		base := escPath(t, tt.path) + "/@v/" + tt.vers
		if i := parseInfo(t, get(t, c, s, base+".info").body); i.Version != tt.other {
			t.Errorf("%s .info reports %s, want %s", tt.path, i.Version, tt.other)
		}
		if i := parseInfo(t, get(t, c, s, escPath(t, tt.path)+"/@latest").body); i.Version != tt.other {
			t.Errorf("%s @latest reports %s, want %s", tt.path, i.Version, tt.other)
		}
		z := get(t, c, s, base+".zip")
		names := zipNames(t, z.body)
		if len(names) == 0 {
			t.Errorf("%s: empty zip", tt.path)
		}
		for _, name := range names {
			if !strings.HasPrefix(name, tt.path+"@"+tt.other+"/") {
				t.Errorf("%s: zip entry %q, want version %s", tt.path, name, tt.other)
			}
		}
	}

	// Query .info too.
	s.AddQuery("example.com/a", "main", "v1.1.0")
	if i := parseInfo(t, get(t, c, s, "example.com/a/@v/main.info").body); i.Version == "v1.1.0" {
		t.Errorf("wrong query .info reports the honest %s", i.Version)
	}
}

func TestFaultCorruptZip(t *testing.T) {
	s := newServer(t)
	c := newClient(t)
	s.SetFault("ALL", upstreamtest.Fault{Kind: upstreamtest.CorruptZip})
	for _, m := range loadTestdata(t) {
		base := escPath(t, m.Path) + "/@v/" + escVersion(t, m.Version)
		honest := s.ZipBytes(m.Path, m.Version)
		got := get(t, c, s, base+".zip").body
		if len(got) != len(honest) {
			t.Fatalf("%s: corrupt zip is %d bytes, want %d", m.Path, len(got), len(honest))
		}
		diff := 0
		for i := range got {
			if got[i] != honest[i] {
				diff++
			}
		}
		if diff != 1 {
			t.Errorf("%s: %d bytes differ, want 1", m.Path, diff)
		}
		// Always detected: hashing fails or differs from go.sum.
		h, err := dirhash.HashZip(writeTemp(t, "c.zip", got), dirhash.DefaultHash)
		if err == nil && strings.Contains(s.GoSum(m.Path, m.Version), h) {
			t.Errorf("%s: corrupt zip has the honest hash", m.Path)
		}
		// Other files are untouched.
		if r := get(t, c, s, base+".mod"); !bytes.Equal(r.body, s.ModBytes(m.Path, m.Version)) {
			t.Errorf("%s: .mod changed by CorruptZip", m.Path)
		}
	}
}

func TestFaultTamperMod(t *testing.T) {
	s := newServer(t)
	c := newClient(t)
	s.SetFault("*/*/@v/*.mod", upstreamtest.Fault{Kind: upstreamtest.TamperMod})
	honest := s.ModBytes("example.com/a", "v1.0.0")
	r := get(t, c, s, "example.com/a/@v/v1.0.0.mod")
	if !bytes.HasPrefix(r.body, honest) || bytes.Count(r.body, []byte("\n")) != bytes.Count(honest, []byte("\n"))+1 {
		t.Errorf("tampered .mod %q, want %q plus one line", r.body, honest)
	}
	if r := get(t, c, s, "example.com/a/@v/v1.0.0.zip"); !bytes.Equal(r.body, s.ZipBytes("example.com/a", "v1.0.0")) {
		t.Error(".zip changed by TamperMod")
	}
}

// ---- counting, lifecycle ----

func TestCounting(t *testing.T) {
	s := newServer(t)
	c := newClient(t)
	name, _ := s.SumDB()
	s.SetFault("example.com/a/@v/v1.0.0.zip", upstreamtest.Fault{Kind: upstreamtest.NotFound})
	paths := []string{
		"example.com/a/@v/list",
		"example.com/a/@v/v1.0.0.zip",
		"example.com/a/@v/list",
		"sumdb/" + name + "/supported",
		"sumdb/" + name + "/lookup/github.com/!upper/!case@v1.0.0",
		"example.com/nope/@v/list",
	}
	for _, p := range paths {
		get(t, c, s, p)
	}
	fetch(t, c, http.MethodPost, s.URL()+"/example.com/a/@v/list")
	if got := s.Log(); !slices.Equal(got, append(slices.Clone(paths), "example.com/a/@v/list")) {
		t.Errorf("Log = %q", got)
	}
	if s.Total() != 7 {
		t.Errorf("Total = %d, want 7", s.Total())
	}
	for p, n := range map[string]int{
		"example.com/a/@v/list":                                    3,
		"/example.com/a/@v/list":                                   3,
		"example.com/a/@v/v1.0.0.zip":                              1,
		"sumdb/" + name + "/lookup/github.com/!upper/!case@v1.0.0": 1,
		"example.com/a/@v/v1.1.0.zip":                              0,
	} {
		if got := s.Requests(p); got != n {
			t.Errorf("Requests(%q) = %d, want %d", p, got, n)
		}
	}
	log := s.Log()
	log[0] = "mutated"
	if s.Log()[0] == "mutated" {
		t.Error("Log returns the server's own slice")
	}
	s.ResetCounts()
	if s.Total() != 0 || len(s.Log()) != 0 || s.Requests("example.com/a/@v/list") != 0 {
		t.Errorf("after ResetCounts: Total %d, Log %q", s.Total(), s.Log())
	}
}

func TestStopStart(t *testing.T) {
	s := newServer(t)
	c := newClient(t)
	url := s.URL()
	if !strings.HasPrefix(url, "http://127.0.0.1:") || strings.HasSuffix(url, "/") {
		t.Errorf("URL = %q", url)
	}
	addr := strings.TrimPrefix(url, "http://")
	get(t, c, s, "example.com/a/@v/list") // leaves an idle keep-alive connection
	s.SetFault("example.com/a/@latest", upstreamtest.Fault{Kind: upstreamtest.Gone})

	s.Stop()
	s.Stop() // no-op
	conn, err := net.Dial("tcp", addr)
	if err == nil {
		conn.Close()
		t.Fatal("dial after Stop succeeded")
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("dial after Stop: %v, want connection refused", err)
	}
	if resp, err := c.Get(url + "/example.com/a/@v/list"); err == nil {
		resp.Body.Close()
		t.Error("request after Stop succeeded (over an old connection?)")
	}

	s.Start()
	s.Start() // no-op
	if s.URL() != url {
		t.Errorf("URL after Start = %q, want %q", s.URL(), url)
	}
	if r := get(t, c, s, "example.com/a/@v/list"); r.code != 200 {
		t.Errorf("after Start: code %d", r.code)
	}
	if r := get(t, c, s, "example.com/a/@latest"); r.code != 410 {
		t.Errorf("fault after Start: code %d, want 410", r.code)
	}
	if n := s.Requests("example.com/a/@v/list"); n != 2 {
		t.Errorf("Requests across restart = %d, want 2", n)
	}
}

func TestConcurrent(t *testing.T) {
	s := newServer(t)
	c := newClient(t)
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for i := range 16 {
		wg.Go(func() {
			for j := range 5 {
				vers := fmt.Sprintf("v1.5.%d", i*10+j)
				s.Add(upstreamtest.Module{Path: "example.com/a", Version: vers})
				s.SetFault("example.com/a/@v/"+vers+".mod", upstreamtest.Fault{Kind: upstreamtest.Gone, Times: 1})
				for _, p := range []string{"example.com/a/@v/list", "example.com/a/@latest", "example.com/a/@v/v1.1.0.zip"} {
					resp, err := c.Get(s.URL() + "/" + p)
					if err != nil {
						errs <- err
						return
					}
					body, err := io.ReadAll(resp.Body)
					resp.Body.Close()
					if err != nil || resp.StatusCode != 200 {
						errs <- fmt.Errorf("%s: %d, %v", p, resp.StatusCode, err)
						return
					}
					if p == "example.com/a/@v/v1.1.0.zip" && !bytes.Equal(body, s.ZipBytes("example.com/a", "v1.1.0")) {
						errs <- fmt.Errorf("%s: bad zip", p)
					}
				}
				_ = s.Log()
				_ = s.Requests("example.com/a/@v/list")
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := s.Requests("example.com/a/@v/list"); n != 16*5 {
		t.Errorf("Requests = %d, want %d", n, 16*5)
	}
}

// ---- sumdb ----

// sumdbOps is an in-memory sumdb.ClientOps reading from a Server.
type sumdbOps struct {
	t      *testing.T
	client *http.Client
	base   string // URL()+"/sumdb/"+name
	key    string
	mu     sync.Mutex
	config map[string][]byte
	cache  map[string][]byte
}

func (o *sumdbOps) ReadRemote(p string) ([]byte, error) {
	resp, err := o.client.Get(o.base + p)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != 200 {
		return nil, fmt.Errorf("GET %s: %s: %s", p, resp.Status, body)
	}
	return body, nil
}

func (o *sumdbOps) ReadConfig(file string) ([]byte, error) {
	if file == "key" {
		return []byte(o.key), nil
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.config[file], nil
}

func (o *sumdbOps) WriteConfig(file string, old, new []byte) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if !bytes.Equal(o.config[file], old) {
		return sumdb.ErrWriteConflict
	}
	o.config[file] = new
	return nil
}

func (o *sumdbOps) ReadCache(file string) ([]byte, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if data, ok := o.cache[file]; ok {
		return data, nil
	}
	return nil, fs.ErrNotExist
}

func (o *sumdbOps) WriteCache(file string, data []byte) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.cache[file] = data
}

func (o *sumdbOps) Log(msg string)           { o.t.Log(msg) }
func (o *sumdbOps) SecurityError(msg string) { o.t.Error(msg) }

func TestSumDB(t *testing.T) {
	s := newServer(t)
	c := newClient(t)
	name, key := s.SumDB()
	if name != upstreamtest.DefaultSumDBName || !strings.HasPrefix(key, name+"+") {
		t.Fatalf("SumDB() = %q, %q", name, key)
	}
	if r := get(t, c, s, "sumdb/"+name+"/supported"); r.code != 200 {
		t.Errorf("supported: %d", r.code)
	}
	if r := get(t, c, s, "sumdb/other.example/supported"); r.code != 404 {
		t.Errorf("supported of another database: %d", r.code)
	}

	ops := &sumdbOps{t: t, client: c, base: s.URL() + "/sumdb/" + name, key: key,
		config: map[string][]byte{}, cache: map[string][]byte{}}
	client := sumdb.NewClient(ops)
	for _, m := range loadTestdata(t) {
		want := strings.Split(strings.TrimSuffix(s.GoSum(m.Path, m.Version), "\n"), "\n")
		lines, err := client.Lookup(m.Path, m.Version)
		if err != nil {
			t.Fatalf("Lookup %s@%s: %v", m.Path, m.Version, err)
		}
		if !slices.Equal(lines, want[:1]) {
			t.Errorf("Lookup %s@%s = %q, want %q", m.Path, m.Version, lines, want[:1])
		}
		lines, err = client.Lookup(m.Path, m.Version+"/go.mod")
		if err != nil || !slices.Equal(lines, want[1:]) {
			t.Errorf("Lookup %s@%s/go.mod = %q, %v, want %q", m.Path, m.Version, lines, err, want[1:])
		}
	}
	// A version added later is looked up, and the tree grows consistently.
	s.Add(upstreamtest.Module{Path: "example.com/late", Version: "v1.0.0"})
	if lines, err := client.Lookup("example.com/late", "v1.0.0"); err != nil || len(lines) != 1 {
		t.Errorf("Lookup of an added version = %q, %v", lines, err)
	}
	if _, err := client.Lookup("example.com/nope", "v1.0.0"); err == nil {
		t.Error("Lookup of an unknown version succeeded")
	}
	if r := get(t, c, s, "sumdb/"+name+"/lookup/example.com/nope@v1.0.0"); r.code != 404 {
		t.Errorf("lookup of an unknown version: %d %q", r.code, r.body)
	}
	if r := get(t, c, s, "sumdb/"+name+"/latest"); r.code != 200 || !strings.Contains(string(r.body), name) {
		t.Errorf("latest: %d %q", r.code, r.body)
	}
	if n := s.Requests("sumdb/" + name + "/lookup/github.com/!upper/!case@v1.0.0"); n != 1 {
		t.Errorf("lookup requests for the upper-case module = %d, want 1 (log %q)", n, s.Log())
	}
}

func TestSumDBOptions(t *testing.T) {
	c := newClient(t)
	s := newServer(t, upstreamtest.WithSumDBName("sum.other.test"))
	if name, key := s.SumDB(); name != "sum.other.test" || !strings.HasPrefix(key, "sum.other.test+") {
		t.Errorf("SumDB() = %q, %q", name, key)
	}
	if r := get(t, c, s, "sumdb/sum.other.test/supported"); r.code != 200 {
		t.Errorf("supported: %d", r.code)
	}
	if r := get(t, c, s, "sumdb/"+upstreamtest.DefaultSumDBName+"/supported"); r.code != 404 {
		t.Errorf("supported of the default name: %d", r.code)
	}

	s = newServer(t, upstreamtest.WithoutSumDB())
	if name, key := s.SumDB(); name != "" || key != "" {
		t.Errorf("SumDB() without one = %q, %q", name, key)
	}
	if r := get(t, c, s, "sumdb/"+upstreamtest.DefaultSumDBName+"/supported"); r.code != 404 {
		t.Errorf("supported without sumdb: %d", r.code)
	}
}

// ---- the real go command ----

// goCommand returns the go command, or skips the test.
func goCommand(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("runs the go command")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go command: %v", err)
	}
	return goBin
}

// goEnv is a hermetic environment for the go command talking only to s.
func goEnv(t *testing.T, goBin string, s *upstreamtest.Server) []string {
	t.Helper()
	tmp := t.TempDir()
	// Share the build cache (content-addressed, safe to share) to avoid
	// recompiling the standard library; everything else is fresh.
	gocache := filepath.Join(tmp, "gocache")
	if out, err := exec.Command(goBin, "env", "GOCACHE").Output(); err == nil {
		if dir := strings.TrimSpace(string(out)); filepath.IsAbs(dir) {
			gocache = dir
		}
	}
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "GO") || strings.HasPrefix(k, "CGO_") || k == "HOME" || strings.HasPrefix(k, "XDG_") {
			continue
		}
		env = append(env, kv)
	}
	_, key := s.SumDB()
	return append(env,
		"HOME="+filepath.Join(tmp, "home"),
		"GOPATH="+filepath.Join(tmp, "gopath"),
		"GOMODCACHE="+filepath.Join(tmp, "modcache"),
		"GOCACHE="+gocache,
		"GOENV=off",
		"GOPROXY="+s.URL(),
		"GOSUMDB="+key,
		"GONOSUMDB=",
		"GOPRIVATE=",
		"GONOPROXY=",
		"GOINSECURE=",
		"GOWORK=off",
		"GOFLAGS=-mod=mod -modcacherw", // -modcacherw lets t.TempDir remove the cache
		"GOTOOLCHAIN=local",
		"GOTELEMETRY=off",
		"CGO_ENABLED=0",
	)
}

func runGo(t *testing.T, goBin, dir string, env []string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goBin, args...)
	cmd.Dir = dir
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func writeProject(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func envValue(env []string, key string) string {
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, key+"="); ok {
			return v
		}
	}
	return ""
}

func TestGoModDownload(t *testing.T) {
	goBin := goCommand(t)
	s := newServer(t)
	name, _ := s.SumDB()
	env := goEnv(t, goBin, s)
	dir := writeProject(t, map[string]string{
		"go.mod": `module example.com/consumer

go 1.21

require (
	example.com/a v1.1.0
	example.com/b/v2 v2.0.0
	example.com/c v3.0.0+incompatible
	github.com/Upper/Case v1.0.0
)
`,
		"main.go": `package main

import (
	"fmt"

	"example.com/a"
	"example.com/a/sub"
	b "example.com/b/v2"
	"example.com/c"
	upper "github.com/Upper/Case"
)

func main() { fmt.Println(a.Hello(), sub.Name, b.Major, c.Old, upper.Shout) }
`,
	})

	if out, err := runGo(t, goBin, dir, env, "mod", "download"); err != nil {
		t.Fatalf("go mod download: %v\n%s", err, out)
	}
	if out, err := runGo(t, goBin, dir, env, "build", "-o", filepath.Join(t.TempDir(), "consumer"), "."); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := runGo(t, goBin, dir, env, "run", ".")
	if err != nil || strings.TrimSpace(out) != "hello from a v1.1.0 sub 2 true HELLO" {
		t.Errorf("go run: %v\n%s", err, out)
	}
	out, err = runGo(t, goBin, dir, env, "list", "-m", "-versions", "example.com/a")
	if err != nil || strings.TrimSpace(out) != "example.com/a v1.0.0 v1.1.0 v1.2.0-pre" {
		t.Errorf("go list -m -versions: %v\n%s", err, out)
	}

	// The checksum database was found through the proxy and consulted for every module.
	if s.Requests("sumdb/"+name+"/supported") == 0 {
		t.Errorf("the go command never asked sumdb/%s/supported; log %q", name, s.Log())
	}
	gosum, err := os.ReadFile(filepath.Join(dir, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	modcache := envValue(env, "GOMODCACHE")
	for _, m := range []module.Version{
		{Path: "example.com/a", Version: "v1.1.0"},
		{Path: "example.com/b/v2", Version: "v2.0.0"},
		{Path: "example.com/c", Version: "v3.0.0+incompatible"},
		{Path: "github.com/Upper/Case", Version: "v1.0.0"},
	} {
		lookup := "sumdb/" + name + "/lookup/" + escPath(t, m.Path) + "@" + escVersion(t, m.Version)
		if s.Requests(lookup) == 0 {
			t.Errorf("no checksum database lookup %s; log %q", lookup, s.Log())
		}
		for _, line := range strings.SplitAfter(strings.TrimSuffix(s.GoSum(m.Path, m.Version), "\n"), "\n") {
			if !strings.Contains(string(gosum), strings.TrimSuffix(line, "\n")+"\n") {
				t.Errorf("go.sum lacks %q:\n%s", line, gosum)
			}
		}
		cached, err := os.ReadFile(filepath.Join(modcache, "cache", "download", escPath(t, m.Path), "@v", escVersion(t, m.Version)+".zip"))
		if err != nil || !bytes.Equal(cached, s.ZipBytes(m.Path, m.Version)) {
			t.Errorf("cached zip of %s differs from the served one (%v)", m, err)
		}
	}
	t.Logf("%d requests: %q", s.Total(), s.Log())
}

func TestGoModDownloadDetectsFaults(t *testing.T) {
	goBin := goCommand(t)
	for _, tt := range []struct {
		name  string
		path  string
		fault upstreamtest.Fault
		want  string // in the go command's output; alternatives separated by "|"
	}{
		{"TamperMod", "example.com/a/@v/v1.0.0.mod", upstreamtest.Fault{Kind: upstreamtest.TamperMod}, "checksum mismatch"},
		{"CorruptZip", "example.com/a/@v/v1.0.0.zip", upstreamtest.Fault{Kind: upstreamtest.CorruptZip}, "not a valid zip file|checksum mismatch|corrupt input"},
		{"WrongVersion", "example.com/a/@v/v1.0.0.info", upstreamtest.Fault{Kind: upstreamtest.WrongVersion}, "instead of requested version"},
		{"NotFound", "example.com/a/@v/v1.0.0.info", upstreamtest.Fault{Kind: upstreamtest.NotFound}, "404 Not Found"},
		{"ServerError", "example.com/a/@v/v1.0.0.zip", upstreamtest.Fault{Kind: upstreamtest.ServerError}, "500 Internal Server Error"},
		{"SumDBDown", "sumdb/" + upstreamtest.DefaultSumDBName + "/lookup/example.com/a@v1.0.0", upstreamtest.Fault{Kind: upstreamtest.ServerError}, "/lookup/example.com/a@v1.0.0: 500 Internal Server Error"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := newServer(t)
			env := goEnv(t, goBin, s)
			dir := writeProject(t, map[string]string{"go.mod": "module example.com/consumer\n\ngo 1.21\n"})
			s.SetFault(tt.path, tt.fault)
			out, err := runGo(t, goBin, dir, env, "mod", "download", "example.com/a@v1.0.0")
			if err == nil {
				t.Fatalf("go mod download succeeded despite %v on %s:\n%s", tt.fault.Kind, tt.path, out)
			}
			if !slices.ContainsFunc(strings.Split(tt.want, "|"), func(w string) bool { return strings.Contains(out, w) }) {
				t.Errorf("output lacks %q:\n%s", tt.want, out)
			}
			// Healed, the same download works.
			s.ClearFaults()
			if out, err := runGo(t, goBin, dir, env, "mod", "download", "example.com/a@v1.0.0"); err != nil {
				t.Errorf("after ClearFaults: %v\n%s", err, out)
			}
		})
	}
}
