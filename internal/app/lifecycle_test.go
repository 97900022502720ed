package app_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modproxy/modproxy/internal/admin"
	"github.com/modproxy/modproxy/internal/audit"
	"github.com/modproxy/modproxy/internal/config"
	"github.com/modproxy/modproxy/internal/upstream/upstreamtest"
)

func manyMods(n int) []upstreamtest.Module {
	var mods []upstreamtest.Module
	for i := range n {
		mods = append(mods, upstreamtest.Module{Path: fmt.Sprintf("example.com/m%02d", i%5), Version: fmt.Sprintf("v1.%d.0", i/5),
			Files: map[string][]byte{"x.go": bytes.Repeat([]byte(fmt.Sprintf("// %d\n", i)), 500)}})
	}
	return mods
}

// TestMetricsAfterWorkload scrapes /metrics after a scripted workload and
// checks the counters.
func TestMetricsAfterWorkload(t *testing.T) {
	up := upstreamtest.New(t, testMods(), upstreamtest.WithoutSumDB())
	h := start(t, func(c *config.Config) {
		c.Upstream = up.URL()
		c.Warm.Zips = false // the counters are the workload's own fetches
	})
	for _, p := range []string{
		"/example.com/a/@v/v1.0.0.zip", "/example.com/a/@v/v1.0.0.zip", "/example.com/a/@v/v1.0.0.zip", // miss, hit, hit
		"/example.com/a/@v/v1.0.0.mod",                           // miss
		"/example.com/nope/@v/list", "/example.com/nope/@v/list", // 404 from upstream, then negative cache
	} {
		h.get(t, p)
	}
	_, body, _ := h.get(t, "/metrics")
	for _, want := range []string{
		`modproxy_requests_total{code="200",kind="zip"} 3`,
		`modproxy_requests_total{code="200",kind="mod"} 1`,
		`modproxy_requests_total{code="404",kind="list"} 2`,
		`modproxy_cache_outcomes_total{kind="zip",outcome="hit"} 2`,
		`modproxy_cache_outcomes_total{kind="zip",outcome="miss"} 1`,
		`modproxy_cache_outcomes_total{kind="list",outcome="negative"} 1`,
		`modproxy_upstream_errors_total{class="not_found"} 1`,
		`modproxy_fills_in_flight 0`,
		`modproxy_upstream_breaker_state{upstream="` + up.URL() + `"} 0`,
	} {
		if !strings.Contains(body, want+"\n") {
			t.Errorf("metrics lack %q", want)
		}
	}
}

// TestGCNeverDeletesWhatIsServed runs GC repeatedly with a policy that
// evicts everything while clients download the same versions: every
// download is complete and correct (run with -race).
func TestGCNeverDeletesWhatIsServed(t *testing.T) {
	mods := manyMods(10)
	up := upstreamtest.New(t, mods, upstreamtest.WithoutSumDB())
	up.SetFault("example.com/*/@v/*.zip", upstreamtest.Fault{Kind: upstreamtest.SlowBody, Chunk: 512, Delay: 1})
	h := start(t, func(c *config.Config) {
		c.Upstream = up.URL()
		c.GC.MaxIdle = config.Duration(1) // everything is idle
		c.GC.Interval = 0
	})
	ctx := context.Background()
	for _, m := range mods { // fill the cache first
		if status, _, _ := h.get(t, "/"+m.Path+"/@v/"+m.Version+".zip"); status != 200 {
			t.Fatalf("fill %s: %d", m.Path, status)
		}
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	errs := make(chan error, 1000)
	for _, m := range mods {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := http.Get(h.http.URL + "/" + m.Path + "/@v/" + m.Version + ".zip")
				if err != nil {
					errs <- err
					return
				}
				b, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil || resp.StatusCode != 200 || !bytes.Equal(b, up.ZipBytes(m.Path, m.Version)) {
					errs <- fmt.Errorf("%s@%s: %d, %d bytes, %v", m.Path, m.Version, resp.StatusCode, len(b), err)
					return
				}
			}
		})
	}
	var evicted, skipped int
	for range 15 {
		time.Sleep(20 * time.Millisecond)
		res, err := h.srv.Admin().GCRun(ctx, "test")
		if err != nil {
			t.Fatal(err)
		}
		evicted += res.Evicted
		skipped += res.Skipped
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	t.Logf("evicted %d versions, skipped %d in use", evicted, skipped)
	if evicted == 0 {
		t.Error("GC never evicted anything: the test proved nothing")
	}
}

// TestPurgeRestoreAndAudit: purge with block refuses re-fetch; restore
// from the trash brings byte-identical objects back; every action is
// audited and queryable.
func TestPurgeRestoreAndAudit(t *testing.T) {
	up := upstreamtest.New(t, testMods(), upstreamtest.WithoutSumDB())
	var cacheDir string
	h := start(t, func(c *config.Config) { c.Upstream = up.URL(); cacheDir = c.CacheDir })
	ctx := context.Background()
	for _, p := range []string{"/example.com/leaky/@v/v1.2.0.zip", "/example.com/leaky/@v/v1.2.0.mod", "/example.com/leaky/@v/v1.3.0.zip"} {
		if status, _, _ := h.get(t, p); status != 200 {
			t.Fatalf("GET %s: %d", p, status)
		}
	}
	zipPath := filepath.Join(cacheDir, "objects", "example.com", "leaky", "@v", "v1.2.0.zip")
	want, err := os.ReadFile(zipPath)
	if err != nil {
		t.Fatal(err)
	}
	b := h.srv.Admin()
	if _, err := b.Purge(ctx, "admin", admin.PurgeRequest{Module: "example.com/leaky", Versions: "v1.2.0"}); err == nil {
		t.Fatal("purge without a reason succeeded")
	}
	res, err := b.Purge(ctx, "admin", admin.PurgeRequest{Module: "example.com/leaky", Versions: "<v1.3.0", Reason: "leaked a token", Block: true})
	if err != nil || len(res.Versions) != 1 || res.Versions[0] != "v1.2.0" || !res.Blocked || res.TrashID == "" {
		t.Fatalf("purge = %+v, %v", res, err)
	}
	if _, err := os.Stat(zipPath); !os.IsNotExist(err) {
		t.Fatal("purged zip still stored")
	}
	status, body, _ := h.get(t, "/example.com/leaky/@v/v1.2.0.zip")
	if status != 403 || !strings.Contains(body, "leaked a token") {
		t.Errorf("blocked version: %d %q", status, body)
	}
	if status, _, _ := h.get(t, "/example.com/leaky/@v/v1.3.0.zip"); status != 200 {
		t.Errorf("other version: %d", status)
	}
	if _, err := b.Restore(ctx, "admin", res.TrashID); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(zipPath)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("restored zip differs: %v", err)
	}
	evs, err := b.Audit(ctx, admin.AuditQuery{Target: "example.com/leaky"})
	if err != nil {
		t.Fatal(err)
	}
	actions := map[string]bool{}
	for _, e := range evs {
		actions[e.Action] = true
	}
	for _, a := range []string{"evict", "purge"} {
		if !actions[a] {
			t.Errorf("no %q audit event: %+v", a, evs)
		}
	}
	if evs, err := b.Audit(ctx, admin.AuditQuery{Action: "restore"}); err != nil || len(evs) != 1 {
		t.Errorf("restore audit events: %+v, %v", evs, err)
	}
	all, err := audit.Read(filepath.Join(cacheDir, "audit.log"))
	if err != nil || len(all) < 3 {
		t.Errorf("audit log has %d events, %v", len(all), err)
	}
}
