package goproxy_test

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/modproxy/modproxy/internal/cachepolicy"
	"github.com/modproxy/modproxy/internal/goproxy"
	"github.com/modproxy/modproxy/internal/metrics"
	"github.com/modproxy/modproxy/internal/proxy"
	storagefs "github.com/modproxy/modproxy/internal/storage/fs"
	"github.com/modproxy/modproxy/internal/upstream"
	"github.com/modproxy/modproxy/internal/upstream/proxyclient"
	"github.com/modproxy/modproxy/internal/upstream/upstreamtest"
)

type fixture struct {
	up       *upstreamtest.Server
	srv      *httptest.Server
	h        http.Handler
	cacheDir string
}

func newFixture(t *testing.T) *fixture { return newFixtureWith(t, nil, nil) }

// newFixtureWith is newFixture with the handler's logger and the metrics
// of handler and service (both may be nil).
func newFixtureWith(t *testing.T, log *slog.Logger, m *metrics.Metrics) *fixture {
	t.Helper()
	return newFixtureOpts(t, nil, goproxy.Options{Logger: log, Metrics: m})
}

// newFixtureOpts serves the fixture's modules and extra with the handler
// options o (Service and MutableMaxAge are the fixture's; o.Metrics is
// also the service's).
func newFixtureOpts(t *testing.T, extra []upstreamtest.Module, o goproxy.Options) *fixture {
	t.Helper()
	mods := []upstreamtest.Module{
		{Path: "example.com/a", Version: "v1.0.0", Files: map[string][]byte{"go.mod": []byte("module example.com/a\n"), "a.go": []byte("package a\n")}},
		{Path: "github.com/Upper/Case", Version: "v1.0.0", Files: map[string][]byte{"go.mod": []byte("module github.com/Upper/Case\n"), "c.go": []byte("package c\n")}},
		{Path: "example.com/inc", Version: "v3.0.0+incompatible", Files: map[string][]byte{"i.go": []byte("package inc\n")}},
		{Path: "golang.org/toolchain", Version: "v0.0.1-go1.99.0.linux-amd64", Files: map[string][]byte{"go/VERSION": []byte("go1.99.0\n")}},
	}
	up := upstreamtest.New(t, append(mods, extra...))
	up.AddQuery("example.com/a", "main", "v1.0.0")
	client, err := proxyclient.New(up.URL(), proxyclient.Options{Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	store, err := storagefs.New(filepath.Join(dir, "cache"))
	if err != nil {
		t.Fatal(err)
	}
	chain := &upstream.Chain{Links: []upstream.Link{{Fetcher: client}}}
	name, _ := up.SumDB()
	svc := proxy.New(proxy.Options{Store: store, Upstream: chain, SumDB: map[string]upstream.Fetcher{name: chain}, TempDir: store.TempDir(), Policy: cachepolicy.Default(), Metrics: o.Metrics})
	t.Cleanup(svc.Close)
	o.Service, o.MutableMaxAge = svc, time.Minute
	h := goproxy.New(o)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &fixture{up: up, srv: srv, h: h, cacheDir: dir}
}

func (f *fixture) do(t *testing.T, method, path string, hdr map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, f.srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the body: %v", method, path, err)
	}
	return resp, b
}

func TestProtocol(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct {
		path, ctype, cc string
		body            []byte
	}{
		{"/example.com/a/@v/list", "text/plain; charset=utf-8", "public, max-age=60", []byte("v1.0.0\n")},
		{"/example.com/a/@latest", "application/json", "public, max-age=60", nil},
		{"/example.com/a/@v/main.info", "application/json", "public, max-age=60", nil},
		{"/example.com/a/@v/v1.0.0.info", "application/json", "public, max-age=31536000, immutable", nil},
		{"/example.com/a/@v/v1.0.0.mod", "text/plain; charset=utf-8", "public, max-age=31536000, immutable", []byte("module example.com/a\n")},
		{"/example.com/a/@v/v1.0.0.zip", "application/zip", "public, max-age=31536000, immutable", f.up.ZipBytes("example.com/a", "v1.0.0")},
		{"/github.com/!upper/!case/@v/v1.0.0.zip", "application/zip", "public, max-age=31536000, immutable", f.up.ZipBytes("github.com/Upper/Case", "v1.0.0")},
		{"/github.com/%21upper/%21case/@v/v1.0.0.mod", "text/plain; charset=utf-8", "public, max-age=31536000, immutable", []byte("module github.com/Upper/Case\n")},
		{"/example.com/inc/@v/v3.0.0+incompatible.mod", "text/plain; charset=utf-8", "public, max-age=31536000, immutable", []byte("module example.com/inc\n")},
		{"/golang.org/toolchain/@v/v0.0.1-go1.99.0.linux-amd64.zip", "application/zip", "public, max-age=31536000, immutable", f.up.ZipBytes("golang.org/toolchain", "v0.0.1-go1.99.0.linux-amd64")},
	} {
		for _, method := range []string{"GET", "HEAD"} {
			resp, body := f.do(t, method, tc.path, nil)
			if resp.StatusCode != 200 {
				t.Errorf("%s %s: %d %s", method, tc.path, resp.StatusCode, body)
				continue
			}
			if got := resp.Header.Get("Content-Type"); got != tc.ctype {
				t.Errorf("%s %s: Content-Type %q, want %q", method, tc.path, got, tc.ctype)
			}
			if got := resp.Header.Get("Cache-Control"); got != tc.cc {
				t.Errorf("%s %s: Cache-Control %q, want %q", method, tc.path, got, tc.cc)
			}
			if resp.Header.Get("ETag") == "" || resp.Header.Get("Last-Modified") == "" || resp.Header.Get("Content-Length") == "" {
				t.Errorf("%s %s: missing ETag/Last-Modified/Content-Length: %v", method, tc.path, resp.Header)
			}
			if method == "GET" && tc.body != nil && !bytes.Equal(body, tc.body) {
				t.Errorf("GET %s: body %q, want %q", tc.path, body, tc.body)
			}
			if method == "HEAD" && len(body) != 0 {
				t.Errorf("HEAD %s: body of %d bytes", tc.path, len(body))
			}
		}
	}
}

func TestRangeAndConditional(t *testing.T) {
	f := newFixture(t)
	const p = "/example.com/a/@v/v1.0.0.zip"
	want := f.up.ZipBytes("example.com/a", "v1.0.0")
	resp, _ := f.do(t, "GET", p, nil)
	etag := resp.Header.Get("ETag")
	resp, body := f.do(t, "GET", p, map[string]string{"Range": "bytes=10-19"})
	if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(body, want[10:20]) {
		t.Errorf("Range: %d %q", resp.StatusCode, body)
	}
	resp, _ = f.do(t, "GET", p, map[string]string{"If-None-Match": etag})
	if resp.StatusCode != http.StatusNotModified {
		t.Errorf("If-None-Match: %d, want 304", resp.StatusCode)
	}
}

func TestErrors(t *testing.T) {
	f := newFixture(t)
	f.up.SetFault("example.com/down/@v/list", upstreamtest.Fault{Kind: upstreamtest.ServerError})
	f.up.SetFault("example.com/slow/@v/list", upstreamtest.Fault{Kind: upstreamtest.Hang})
	f.up.SetFault("example.com/forbidden/@v/list", upstreamtest.Fault{Kind: upstreamtest.Status, Code: 403})
	f.up.SetFault("example.com/a/@v/v1.0.0.info", upstreamtest.Fault{Kind: upstreamtest.WrongVersion})
	for _, tc := range []struct {
		method, path string
		status       int
		bodyHas      string
	}{
		{"GET", "/example.com/missing/@v/list", 404, "not found"},
		{"GET", "/example.com/a/@v/v1.9.9.zip", 404, "not found"},
		{"GET", "/example.com/a/@v/v9.9.9.zip", 404, "invalid version"},
		{"GET", "/example.com/down/@v/list", 502, "500"},
		{"GET", "/example.com/slow/@v/list", 504, "timed out"},
		{"GET", "/example.com/forbidden/@v/list", 403, "403"},
		{"GET", "/example.com/a/@v/v1.0.0.info", 502, "instead of requested version"},
		{"POST", "/example.com/a/@v/list", 405, "method not allowed"},
		{"DELETE", "/example.com/a/@v/v1.0.0.zip", 405, ""},
		{"GET", "/sumdb/unknown.example/supported", 404, "not proxied"},
		{"GET", "/sumdb/sum.test.example/lookup/../../x", 400, ""},
		{"GET", "/sumdb/sum.test.example/tile/8/0/1", 400, ""},
	} {
		resp, body := f.do(t, tc.method, tc.path, nil)
		if resp.StatusCode != tc.status || !strings.Contains(string(body), tc.bodyHas) {
			t.Errorf("%s %s = %d %q, want %d containing %q", tc.method, tc.path, resp.StatusCode, body, tc.status, tc.bodyHas)
		}
		if tc.status >= 500 && resp.Header.Get("Retry-After") == "" && tc.status != 502 {
			t.Errorf("%s: no Retry-After", tc.path)
		}
	}
	if resp, _ := f.do(t, "POST", "/example.com/a/@v/list", nil); resp.Header.Get("Allow") != "GET, HEAD" {
		t.Errorf("405 without Allow header")
	}
}

func TestSumDB(t *testing.T) {
	f := newFixture(t)
	name, _ := f.up.SumDB()
	resp, _ := f.do(t, "GET", "/sumdb/"+name+"/supported", nil)
	if resp.StatusCode != 200 {
		t.Fatalf("supported: %d", resp.StatusCode)
	}
	if n := f.up.Requests("sumdb/" + name + "/supported"); n != 0 {
		t.Errorf("supported was forwarded upstream %d times", n)
	}
	lookup := "/sumdb/" + name + "/lookup/github.com/!upper/!case@v1.0.0"
	for range 2 {
		resp, body := f.do(t, "GET", lookup, nil)
		if resp.StatusCode != 200 || !strings.Contains(string(body), f.up.GoSum("github.com/Upper/Case", "v1.0.0")) {
			t.Fatalf("lookup: %d %q", resp.StatusCode, body)
		}
	}
	if n := f.up.Requests(strings.TrimPrefix(lookup, "/")); n != 1 {
		t.Errorf("lookup went upstream %d times, want 1 (cached)", n)
	}
	resp, body := f.do(t, "GET", "/sumdb/"+name+"/latest", nil)
	if resp.StatusCode != 200 || !strings.HasPrefix(string(body), "go.sum database tree") {
		t.Errorf("latest: %d %q", resp.StatusCode, body)
	}
}

// TestBadPaths sends hostile paths over a raw connection (so no client
// cleans them) and checks that none is a 5xx, none escapes the cache
// directory and nothing is written outside it.
func TestBadPaths(t *testing.T) {
	f := newFixture(t)
	secret := filepath.Join(f.cacheDir, "secret")
	if err := os.WriteFile(secret, []byte("do not serve"), 0o600); err != nil {
		t.Fatal(err)
	}
	paths := []string{
		"/../secret", "/..%2fsecret", "/%2e%2e/secret", "/%2e%2e%2fsecret", "/example.com/a/@v/..%2f..%2f..%2fsecret.info",
		"/example.com/a/../../secret/@v/list", "/example.com\\a/@v/list", "/example.com/a/@v/%00.info",
		"/example.com/a%00/@v/list", "//etc/passwd/@v/list", "/C:/x/@v/list", "/example.com/a/@v/v1.0.0.zip/../../../../secret",
		"/" + strings.Repeat("a/", 1000) + "@v/list", "/example.com/a/@v/" + strings.Repeat("9", 3000) + ".info",
		"/sumdb/../secret", "/sumdb/sum.test.example/../../secret", "/sumdb/sum.test.example/lookup/%2e%2e/x@v1.0.0",
		"/example.com/A/@v/list", "/example.com/a/@v/v1.0.0.info?x=../../secret",
	}
	for _, p := range paths {
		status, body := rawGet(t, f.srv.Listener.Addr().String(), p)
		if status >= 500 || status == 200 && strings.Contains(body, "do not serve") {
			t.Errorf("GET %q = %d %q", p, status, body)
		}
	}
	ents, err := os.ReadDir(f.cacheDir)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 2 {
		t.Errorf("files appeared beside the cache: %v", ents)
	}
}

func rawGet(t *testing.T, addr, path string) (int, string) {
	t.Helper()
	req, err := http.NewRequest("GET", "http://"+addr+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.URL.Opaque = path // sent verbatim
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %q: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %q: reading the body: %v", path, err)
	}
	return resp.StatusCode, string(b)
}
