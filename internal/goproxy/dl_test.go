package goproxy_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/modproxy/modproxy/internal/goproxy"
	storagefs "github.com/modproxy/modproxy/internal/storage/fs"
	"github.com/modproxy/modproxy/internal/toolchain"
	"github.com/modproxy/modproxy/internal/toolchain/toolchaintest"
	"github.com/modproxy/modproxy/internal/upstream/proxyclient"
)

const dlFile = "go1.30.1.linux-amd64.tar.gz"

// dlServer is a GOPROXY handler mirroring a fake distribution site.
func dlServer(t *testing.T) (*fixture, *toolchaintest.Site, toolchaintest.File) {
	t.Helper()
	f := toolchaintest.Archive("go1.30.1", dlFile, 2<<20+5)
	site := toolchaintest.New(t, f, toolchaintest.Archive("go1.30.1", "go1.30.1.darwin-arm64.pkg", 1<<20))
	store, err := storagefs.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	client, err := proxyclient.NewSite(site.URL, proxyclient.Options{})
	if err != nil {
		t.Fatal(err)
	}
	svc := toolchain.New(toolchain.Options{Site: client, Store: store, TempDir: store.TempDir()})
	t.Cleanup(svc.Close)
	srv := httptest.NewServer(goproxy.New(goproxy.Options{Service: failing{}, Toolchains: svc}))
	t.Cleanup(srv.Close)
	return &fixture{srv: srv}, site, f
}

func TestDLListing(t *testing.T) {
	srv, site, _ := dlServer(t)
	direct, err := http.Get(site.URL + "/?mode=json&include=all")
	if err != nil {
		t.Fatal(err)
	}
	want, err := io.ReadAll(direct.Body)
	direct.Body.Close()
	if err != nil || direct.StatusCode != 200 {
		t.Fatal(direct.Status, err)
	}
	for range 2 {
		resp, body := srv.do(t, "GET", "/dl/?mode=json&include=all", nil)
		if resp.StatusCode != 200 || !bytes.Equal(body, want) || resp.Header.Get("Content-Type") != "application/json" {
			t.Fatalf("listing: %s %q\n%s", resp.Status, resp.Header.Get("Content-Type"), body)
		}
	}
	if n := site.Requests("?mode=json&include=all"); n != 2 { // the direct one and one fill
		t.Errorf("%d requests to the site, want 2", n)
	}
	resp, body := srv.do(t, "GET", "/dl?mode=json", nil)
	if resp.StatusCode != 200 || !bytes.Contains(body, []byte(dlFile)) {
		t.Errorf("/dl?mode=json: %s %s", resp.Status, body)
	}
	for _, p := range []string{"/dl/", "/dl/?mode=html", "/dl/?mode=json&include=some"} {
		if resp, _ := srv.do(t, "GET", p, nil); resp.StatusCode != 404 {
			t.Errorf("%s: %s, want 404", p, resp.Status)
		}
	}
}

func TestDLArchive(t *testing.T) {
	srv, site, f := dlServer(t)
	resp, body := srv.do(t, "GET", "/dl/"+dlFile, nil)
	if resp.StatusCode != 200 || !bytes.Equal(body, f.Data) {
		t.Fatalf("GET: %s, %d bytes", resp.Status, len(body))
	}
	sum := sha256.Sum256(body)
	if got := hex.EncodeToString(sum[:]); got != f.SHA256() || resp.Header.Get("ETag") != `"sha256:`+got+`"` {
		t.Errorf("sha256 %s, ETag %s", got, resp.Header.Get("ETag"))
	}
	if resp.Header.Get("Content-Length") != "2097157" || !strings.Contains(resp.Header.Get("Cache-Control"), "immutable") {
		t.Errorf("headers %v", resp.Header)
	}
	// Range: the client resumes a download.
	resp, body = srv.do(t, "GET", "/dl/"+dlFile, map[string]string{"Range": "bytes=1000000-1000099"})
	if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(body, f.Data[1000000:1000100]) ||
		resp.Header.Get("Content-Range") != "bytes 1000000-1000099/2097157" {
		t.Errorf("Range: %s %q, %d bytes", resp.Status, resp.Header.Get("Content-Range"), len(body))
	}
	// A conditional request with the ETag.
	if resp, _ := srv.do(t, "GET", "/dl/"+dlFile, map[string]string{"If-None-Match": `"sha256:` + f.SHA256() + `"`}); resp.StatusCode != http.StatusNotModified {
		t.Errorf("If-None-Match: %s", resp.Status)
	}
	resp, body = srv.do(t, "HEAD", "/dl/"+dlFile, nil)
	if resp.StatusCode != 200 || len(body) != 0 || resp.Header.Get("Content-Length") != "2097157" {
		t.Errorf("HEAD: %s, %d bytes, Content-Length %s", resp.Status, len(body), resp.Header.Get("Content-Length"))
	}
	if n := site.Requests(dlFile); n != 1 {
		t.Errorf("%d downloads from the site, want 1", n)
	}
	resp, body = srv.do(t, "GET", "/dl/"+dlFile+".sha256", nil)
	if resp.StatusCode != 200 || string(body) != f.SHA256() {
		t.Errorf(".sha256: %s %q", resp.Status, body)
	}
	// The .sha256 of a file not fetched yet comes from the listing.
	resp, body = srv.do(t, "GET", "/dl/go1.30.1.darwin-arm64.pkg.sha256", nil)
	if resp.StatusCode != 200 || len(body) != 64 || site.Requests("go1.30.1.darwin-arm64.pkg") != 0 {
		t.Errorf(".sha256 from the listing: %s %q", resp.Status, body)
	}
}

func TestDLErrors(t *testing.T) {
	srv, site, f := dlServer(t)
	site.Tamper(dlFile, true)
	resp, body := srv.do(t, "GET", "/dl/"+dlFile, nil)
	if resp.StatusCode != http.StatusBadGateway || !strings.HasPrefix(string(body), "SECURITY: ") ||
		!strings.Contains(string(body), dlFile) || !strings.Contains(string(body), f.SHA256()) || strings.Count(string(body), "sha256 ") != 2 {
		t.Errorf("tampered: %s %s", resp.Status, body)
	}
	for _, p := range []string{"/dl/go1.99.0.linux-amd64.tar.gz", "/dl/go1.99.0.linux-amd64.tar.gz.sha256", "/dl/README", "/dl/../x.zip"} {
		if resp, body := srv.do(t, "GET", p, nil); resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s: %s %s, want 404", p, resp.Status, body)
		}
	}
	if resp, body := srv.do(t, "GET", "/cached-only/dl/"+dlFile, nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("cache-only miss: %s %s, want 404", resp.Status, body)
	}
	site.SetDown(true)
	resp, body = srv.do(t, "GET", "/dl/go1.30.1.darwin-arm64.pkg", nil)
	if resp.StatusCode != http.StatusBadGateway || resp.Header.Get("Retry-After") == "" {
		t.Errorf("site down: %s %s", resp.Status, body)
	}
	if resp, body := srv.do(t, "POST", "/dl/"+dlFile, nil); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST: %s %s", resp.Status, body)
	}
	// Without a configured site, /dl/ is not there.
	none := httptest.NewServer(goproxy.New(goproxy.Options{Service: failing{}}))
	defer none.Close()
	if resp, body := (&fixture{srv: none}).do(t, "GET", "/dl/"+dlFile, nil); resp.StatusCode != http.StatusNotFound || !strings.Contains(string(body), "dl.source is not set") {
		t.Errorf("no dl.source: %s %s", resp.Status, body)
	}
}

// TestDLUnderNamespace: a namespace's handler has no toolchain mirror
// whether or not dl.source is set; its 404 says where the mirror is
// rather than claiming dl.source is unset.
func TestDLUnderNamespace(t *testing.T) {
	ns := httptest.NewServer(goproxy.New(goproxy.Options{Service: failing{}, Namespace: "team"}))
	defer ns.Close()
	resp, body := (&fixture{srv: ns}).do(t, "GET", "/dl/"+dlFile, nil)
	if resp.StatusCode != http.StatusNotFound || strings.Contains(string(body), "dl.source is not set") || !strings.Contains(string(body), "/dl/ only") {
		t.Errorf("under a namespace: %s %s", resp.Status, body)
	}
}
