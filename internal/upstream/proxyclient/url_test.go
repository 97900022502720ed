package proxyclient_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modproxy/modproxy/internal/artifact"
	"github.com/modproxy/modproxy/internal/upstream/proxyclient"
)

// recorder is an upstream that answers 200 and records every request's
// raw request URI and decoded path.
type recorder struct {
	mu        sync.Mutex
	raw, path []string
}

func (rec *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec.mu.Lock()
	rec.raw = append(rec.raw, r.RequestURI)
	rec.path = append(rec.path, r.URL.Path)
	rec.mu.Unlock()
	io.WriteString(w, "ok")
}

func (rec *recorder) take() (raw, path []string) {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	raw, path = rec.raw, rec.path
	rec.raw, rec.path = nil, nil
	return raw, path
}

// TestRequestURL: the URL sent upstream is built from the parsed module
// path and version with the protocol's escaping only, so the upstream
// decodes exactly the path modproxy parsed.
func TestRequestURL(t *testing.T) {
	rec := &recorder{}
	srv := httptest.NewServer(rec)
	defer srv.Close()
	for _, tc := range []struct {
		base, path string
		want       string // raw request URI
	}{
		{"", "example.com/a/@v/list", "/example.com/a/@v/list"},
		{"", "example.com/a/@latest", "/example.com/a/@latest"},
		{"", "example.com/a/@v/v1.2.3.info", "/example.com/a/@v/v1.2.3.info"},
		{"", "github.com/!burnt!sushi/toml/@v/v1.3.2.zip", "/github.com/%21burnt%21sushi/toml/@v/v1.3.2.zip"},
		{"", "example.com/a/@v/v1.0.0-!r!c1.mod", "/example.com/a/@v/v1.0.0-%21r%21c1.mod"},
		{"", "example.com/a/@v/v2.0.0+incompatible.mod", "/example.com/a/@v/v2.0.0+incompatible.mod"},
		{"", "example.com/a/@v/master.info", "/example.com/a/@v/master.info"},
		// A decoded query's "%" is escaped again: the upstream reads
		// "feat%2fx", one path element, as modproxy did.
		{"", "example.com/a/@v/feat%2fx.info", "/example.com/a/@v/feat%252fx.info"},
		{"", "example.com/a/@v/x%zzy.info", "/example.com/a/@v/x%25zzy.info"},
		{"", "example.com/a/@v/release 1.info", "/example.com/a/@v/release%201.info"},
		{"", "sumdb/sum.example/supported", "/sumdb/sum.example/supported"},
		{"", "sumdb/sum.example/latest", "/sumdb/sum.example/latest"},
		{"", "sumdb/sum.example/lookup/github.com/!burnt!sushi/toml@v1.3.2", "/sumdb/sum.example/lookup/github.com/%21burnt%21sushi/toml@v1.3.2"},
		{"", "sumdb/sum.example/tile/8/0/x001/234.p/5", "/sumdb/sum.example/tile/8/0/x001/234.p/5"},
		// A checksum database's own URL (GOSUMDB="NAME+KEY URL").
		{"/db", "lookup/github.com/!burnt!sushi/toml@v1.3.2", "/db/lookup/github.com/%21burnt%21sushi/toml@v1.3.2"},
		{"/db", "tile/8/1/000.p/5", "/db/tile/8/1/000.p/5"},
		{"/db", "latest", "/db/latest"},
		{"/db", "supported", "/db/supported"},
		// A vulnerability database's URL (vuln.source).
		{"/vulndb", "index/db.json", "/vulndb/index/db.json"},
		{"", "index/modules.json", "/index/modules.json"},
		{"/vulndb/", "ID/GO-2024-0001.json", "/vulndb/ID/GO-2024-0001.json"},
		// A base with a path, with and without a trailing slash.
		{"/ns/prod", "example.com/a/@v/list", "/ns/prod/example.com/a/@v/list"},
		{"/ns/prod/", "example.com/a/@v/feat%2fx.info", "/ns/prod/example.com/a/@v/feat%252fx.info"},
	} {
		c, err := proxyclient.New(srv.URL+tc.base, proxyclient.Options{Timeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		resp, err := c.Fetch(context.Background(), tc.path)
		if err != nil {
			t.Errorf("Fetch(%q): %v", tc.path, err)
			continue
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		raw, path := rec.take()
		wantPath := strings.TrimSuffix(tc.base, "/") + "/" + tc.path
		if len(raw) != 1 || raw[0] != tc.want || path[0] != wantPath {
			t.Errorf("Fetch(%q) with base %q sent %q (decoded %q), want %q (decoded %q)", tc.path, tc.base, raw, path, tc.want, wantPath)
		}
	}
}

// TestRequestURLRefusesInvalidPaths: what is not a valid protocol path
// (traversals, control characters, queries that decode into either) is
// never sent.
func TestRequestURLRefusesInvalidPaths(t *testing.T) {
	rec := &recorder{}
	srv := httptest.NewServer(rec)
	defer srv.Close()
	c, err := proxyclient.New(srv.URL, proxyclient.Options{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{
		"example.com/a/@v/..%2f..%2fadmin%2fsecret.info",
		"example.com/a/@v/x%0ay.info",
		"../x/@v/list",
		"example.com/a/@v/../../admin/secret.info",
		"sumdb/sum.example/lookup/../../admin@v1.0.0",
		"sumdb/sum.example/tile/../x",
		"lookup/../../admin@v1.0.0",
		"tile/8/0/../../x",
		"healthz",
		"ID/../index/db.json",
		"ID/GO-1%2f..%2fx.json",
		"index/vulns.json",
	} {
		resp, err := c.Fetch(context.Background(), p)
		if err == nil {
			resp.Body.Close()
			t.Errorf("Fetch(%q) succeeded", p)
			continue
		}
		if !errors.Is(err, artifact.ErrInvalid) {
			t.Errorf("Fetch(%q): %v does not wrap artifact.ErrInvalid", p, err)
		}
	}
	if raw, _ := rec.take(); len(raw) != 0 {
		t.Errorf("invalid paths reached the upstream: %q", raw)
	}
}
