package e2e

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/modproxy/modproxy/internal/browsertest"
	"github.com/modproxy/modproxy/internal/upstream/upstreamtest"
)

// TestDashboardOnRunningServer loads the admin dashboard of the built
// binary in headless Chromium after some traffic, checks its numbers
// against the admin API, and saves a screenshot.
func TestDashboardOnRunningServer(t *testing.T) {
	bin := browsertest.Find(t)
	up := upstreamtest.New(t, []upstreamtest.Module{mod("example.com/a", "v1.0.0", "a", ""), mod("example.com/b", "v1.0.0", "b", "")})
	_, key := up.SumDB()
	cfg := filepath.Join(t.TempDir(), "modproxy.toml")
	os.WriteFile(cfg, []byte("[admin]\nlisten = \"127.0.0.1:0\"\n[verify]\nprivate = []\n"), 0o644)
	srv := startServer(t, nil, "--config", cfg, "--cache-dir", t.TempDir(), "--upstream", up.URL(), "--sumdb", key)
	for _, p := range []string{"/example.com/a/@v/v1.0.0.zip", "/example.com/a/@v/v1.0.0.zip", "/example.com/b/@v/v1.0.0.mod", "/example.com/a/@v/v1.0.0.zip"} {
		if status, _ := srv.get(t, p); status != 200 {
			t.Fatalf("GET %s: %d", p, status)
		}
	}
	if !srv.logged(`"msg":"admin listening"`) {
		t.Fatal("no admin listener")
	}
	m := regexp.MustCompile(`"msg":"admin listening","addr":"([^"]+)"`).FindStringSubmatch(srv.logs.String())
	adminURL := "http://" + m[1]
	time.Sleep(1500 * time.Millisecond) // let the index flush its batch

	var stats struct {
		TotalHits int64 `json:"total_hits"`
		TotalMiss int64 `json:"total_misses"`
	}
	var status struct {
		Store struct{ Objects, Versions int64 }
	}
	getJSON(t, adminURL+"/api/stats", &stats)
	getJSON(t, adminURL+"/api/status", &status)
	if stats.TotalHits != 2 || stats.TotalMiss != 2 || status.Store.Versions != 2 {
		t.Fatalf("API: %+v %+v; want 2 hits, 2 misses, 2 versions", stats, status)
	}

	dom := string(browsertest.Run(t, bin, "--dump-dom", adminURL+"/"))
	for id, want := range map[string]int64{"total-hits": stats.TotalHits, "total-misses": stats.TotalMiss, "store-objects": status.Store.Objects, "store-versions": status.Store.Versions} {
		re := regexp.MustCompile(`<[^>]*\bid="` + id + `"[^>]*>`)
		tag := re.FindString(dom)
		v := regexp.MustCompile(`data-value="([^"]*)"`).FindStringSubmatch(tag)
		if v == nil {
			t.Errorf("%s not on the page (tag %q)", id, tag)
			continue
		}
		if got, _ := strconv.ParseFloat(v[1], 64); int64(got) != want {
			t.Errorf("page shows %s = %s, the API says %d", id, v[1], want)
		}
	}
	dir := os.Getenv("MODPROXY_ARTIFACTS")
	if dir == "" {
		dir = t.TempDir()
	}
	os.MkdirAll(dir, 0o755)
	shot := filepath.Join(dir, "dashboard-running-server.png")
	browsertest.Run(t, bin, "--screenshot="+shot, "--window-size=1280,1600", adminURL+"/")
	if st, err := os.Stat(shot); err != nil || st.Size() < 10_000 {
		t.Fatalf("screenshot %s: %v", shot, err)
	}
	t.Logf("screenshot: %s", shot)
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d", url, resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}
