package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"testing"

	"github.com/modproxy/modproxy/internal/toolchain/toolchaintest"
)

// TestToolchainMirror: the built binary with dl.source (from the
// environment) serves setup-go's view of a fake distribution site: the
// listing at /dl/?mode=json&include=all and an archive whose SHA-256 is the
// listing's; a second server on the same cache directory, offline, serves
// the stored archive and nothing else.
func TestToolchainMirror(t *testing.T) {
	f := toolchaintest.Archive("go1.30.1", "go1.30.1.linux-amd64.tar.gz", 4<<20)
	other := toolchaintest.Archive("go1.30.1", "go1.30.1.windows-amd64.zip", 1<<20)
	site := toolchaintest.New(t, f, other)
	cacheDir := t.TempDir()
	srv := startServer(t, []string{"MODPROXY_DL_SOURCE=" + site.URL}, "--cache-dir", cacheDir, "--upstream", "off", "--sumdb", "off")

	code, body := srv.get(t, "/dl/?mode=json&include=all")
	if code != 200 {
		t.Fatalf("listing: %d %s", code, body)
	}
	var releases []struct {
		Version string
		Files   []struct{ Filename, SHA256 string }
	}
	if err := json.Unmarshal(body, &releases); err != nil {
		t.Fatalf("listing: %v\n%s", err, body)
	}
	want := ""
	for _, r := range releases {
		for _, lf := range r.Files {
			if lf.Filename == f.Name {
				want = lf.SHA256
			}
		}
	}
	code, body = srv.get(t, "/dl/"+f.Name)
	sum := sha256.Sum256(body)
	if code != 200 || want == "" || hex.EncodeToString(sum[:]) != want {
		t.Fatalf("archive: %d, %d bytes, sha256 %x; the listing says %q", code, len(body), sum, want)
	}
	if code, body := srv.get(t, "/dl/"+f.Name+".sha256"); code != 200 || string(body) != want {
		t.Errorf(".sha256: %d %q", code, body)
	}
	if err := srv.stop(t); err != nil {
		t.Fatalf("stop: %v", err)
	}

	off := startServer(t, []string{"MODPROXY_DL_SOURCE=" + site.URL, "MODPROXY_OFFLINE=true"}, "--cache-dir", cacheDir, "--upstream", "off", "--sumdb", "off")
	if code, body := off.get(t, "/dl/"+f.Name); code != 200 || len(body) != len(f.Data) {
		t.Errorf("offline, stored: %d, %d bytes", code, len(body))
	}
	if code, _ := off.get(t, "/dl/"+other.Name); code != 404 {
		t.Errorf("offline, not stored: %d, want 404", code)
	}
	if n := site.Requests(f.Name) + site.Requests(other.Name); n != 1 {
		t.Errorf("%d downloads from the site, want 1", n)
	}
}
