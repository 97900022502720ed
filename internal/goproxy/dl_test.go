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
func dlServer(t *testing.T) (*httptest.Server, *toolchaintest.Site, toolchaintest.File) {
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
	return srv, site, f
}

func do(t *testing.T, method, url string, header ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

func TestDLListing(t *testing.T) {
	srv, site, _ := dlServer(t)
	direct, want := do(t, "GET", site.URL+"/?mode=json&include=all")
	if direct.StatusCode != 200 {
		t.Fatal(direct.Status)
	}
	for range 2 {
		resp, body := do(t, "GET", srv.URL+"/dl/?mode=json&include=all")
		if resp.StatusCode != 200 || !bytes.Equal(body, want) || resp.Header.Get("Content-Type") != "application/json" {
			t.Fatalf("listing: %s %q\n%s", resp.Status, resp.Header.Get("Content-Type"), body)
		}
	}
	if n := site.Requests("?mode=json&include=all"); n != 2 { // the direct one and one fill
		t.Errorf("%d requests to the site, want 2", n)
	}
	resp, body := do(t, "GET", srv.URL+"/dl?mode=json")
	if resp.StatusCode != 200 || !bytes.Contains(body, []byte(dlFile)) {
		t.Errorf("/dl?mode=json: %s %s", resp.Status, body)
	}
	for _, p := range []string{"/dl/", "/dl/?mode=html", "/dl/?mode=json&include=some"} {
		if resp, _ := do(t, "GET", srv.URL+p); resp.StatusCode != 404 {
			t.Errorf("%s: %s, want 404", p, resp.Status)
		}
	}
}

func TestDLArchive(t *testing.T) {
	srv, site, f := dlServer(t)
	resp, body := do(t, "GET", srv.URL+"/dl/"+dlFile)
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
	resp, body = do(t, "GET", srv.URL+"/dl/"+dlFile, "Range", "bytes=1000000-1000099")
	if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(body, f.Data[1000000:1000100]) ||
		resp.Header.Get("Content-Range") != "bytes 1000000-1000099/2097157" {
		t.Errorf("Range: %s %q, %d bytes", resp.Status, resp.Header.Get("Content-Range"), len(body))
	}
	// A conditional request with the ETag.
	if resp, _ := do(t, "GET", srv.URL+"/dl/"+dlFile, "If-None-Match", `"sha256:`+f.SHA256()+`"`); resp.StatusCode != http.StatusNotModified {
		t.Errorf("If-None-Match: %s", resp.Status)
	}
	resp, body = do(t, "HEAD", srv.URL+"/dl/"+dlFile)
	if resp.StatusCode != 200 || len(body) != 0 || resp.Header.Get("Content-Length") != "2097157" {
		t.Errorf("HEAD: %s, %d bytes, Content-Length %s", resp.Status, len(body), resp.Header.Get("Content-Length"))
	}
	if n := site.Requests(dlFile); n != 1 {
		t.Errorf("%d downloads from the site, want 1", n)
	}
	resp, body = do(t, "GET", srv.URL+"/dl/"+dlFile+".sha256")
	if resp.StatusCode != 200 || string(body) != f.SHA256() {
		t.Errorf(".sha256: %s %q", resp.Status, body)
	}
	// The .sha256 of a file not fetched yet comes from the listing.
	resp, body = do(t, "GET", srv.URL+"/dl/go1.30.1.darwin-arm64.pkg.sha256")
	if resp.StatusCode != 200 || len(body) != 64 || site.Requests("go1.30.1.darwin-arm64.pkg") != 0 {
		t.Errorf(".sha256 from the listing: %s %q", resp.Status, body)
	}
}

func TestDLErrors(t *testing.T) {
	srv, site, f := dlServer(t)
	site.Tamper(dlFile, true)
	resp, body := do(t, "GET", srv.URL+"/dl/"+dlFile)
	if resp.StatusCode != http.StatusBadGateway || !strings.HasPrefix(string(body), "SECURITY: ") ||
		!strings.Contains(string(body), dlFile) || !strings.Contains(string(body), f.SHA256()) || strings.Count(string(body), "sha256 ") != 2 {
		t.Errorf("tampered: %s %s", resp.Status, body)
	}
	for _, p := range []string{"/dl/go1.99.0.linux-amd64.tar.gz", "/dl/go1.99.0.linux-amd64.tar.gz.sha256", "/dl/README", "/dl/../x.zip"} {
		if resp, body := do(t, "GET", srv.URL+p); resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s: %s %s, want 404", p, resp.Status, body)
		}
	}
	if resp, body := do(t, "GET", srv.URL+"/cached-only/dl/"+dlFile); resp.StatusCode != http.StatusNotFound {
		t.Errorf("cache-only miss: %s %s, want 404", resp.Status, body)
	}
	site.SetDown(true)
	resp, body = do(t, "GET", srv.URL+"/dl/go1.30.1.darwin-arm64.pkg")
	if resp.StatusCode != http.StatusBadGateway || resp.Header.Get("Retry-After") == "" {
		t.Errorf("site down: %s %s", resp.Status, body)
	}
	if resp, body := do(t, "POST", srv.URL+"/dl/"+dlFile); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST: %s %s", resp.Status, body)
	}
	// Without a configured site, /dl/ is not there.
	none := httptest.NewServer(goproxy.New(goproxy.Options{Service: failing{}}))
	defer none.Close()
	if resp, body := do(t, "GET", none.URL+"/dl/"+dlFile); resp.StatusCode != http.StatusNotFound {
		t.Errorf("no dl.source: %s %s", resp.Status, body)
	}
}
