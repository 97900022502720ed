package app_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/modproxy/modproxy/internal/admin"
	"github.com/modproxy/modproxy/internal/app"
	"github.com/modproxy/modproxy/internal/config"
	"github.com/modproxy/modproxy/internal/upstream/upstreamtest"
)

// adminGet decodes an admin API answer of the server.
func adminGet[T any](t *testing.T, srv *app.Server, path string) T {
	t.Helper()
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", path, nil)
	req.Host = "localhost"
	srv.AdminHandler().ServeHTTP(rec, req)
	if rec.Code != 200 {
		t.Fatalf("GET %s: %d %s", path, rec.Code, rec.Body)
	}
	var v T
	if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return v
}

// sample returns the value of the sample named exactly name (with its
// labels) in a scrape, and whether there is one.
func sample(scrape, name string) (string, bool) {
	for line := range strings.Lines(scrape) {
		if v, ok := strings.CutPrefix(strings.TrimSuffix(line, "\n"), name+" "); ok {
			return v, true
		}
	}
	return "", false
}

// TestMetricsPresentFromStart: every series the shipped alerts and
// dashboard use is exported by a server that has answered nothing yet,
// with the known label combinations at zero, and the build is named.
func TestMetricsPresentFromStart(t *testing.T) {
	up := upstreamtest.New(t, testMods(), upstreamtest.WithoutSumDB())
	h := start(t, func(c *config.Config) { c.Upstream = up.URL(); c.GC.MaxSize = 1 << 30 })
	_, body, _ := h.get(t, "/metrics")
	exported := map[string]bool{}
	for line := range strings.Lines(body) {
		if name, _, ok := strings.Cut(line, " "); ok && !strings.HasPrefix(line, "#") {
			name, _, _ = strings.Cut(name, "{")
			exported[name] = true
		}
	}
	nameRE := regexp.MustCompile(`modproxy_[a-z_]+`)
	for _, file := range []string{"../../deploy/prometheus/alerts.yml", "../../deploy/grafana/modproxy-dashboard.json"} {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range nameRE.FindAllString(string(data), -1) {
			if !exported[name] && !exported[name+"_count"] { // a histogram is named by its family too
				t.Errorf("%s uses %s, which a fresh server does not export", file, name)
			}
		}
	}
	for name, want := range map[string]string{
		`modproxy_requests_total{code="200",kind="zip"}`:                                    "0",
		`modproxy_requests_total{code="502",kind="mod"}`:                                    "0",
		`modproxy_cache_outcomes_total{kind="zip",outcome="hit"}`:                           "0",
		`modproxy_request_duration_seconds_count{kind="zip",outcome="fill"}`:                "0",
		`modproxy_upstream_retries_total{upstream="` + up.URL() + `"}`:                      "0",
		`modproxy_upstream_probes_total{result="fail",upstream="` + up.URL() + `"}`:         "0",
		`modproxy_upstream_fetch_seconds_count{result="error",upstream="` + up.URL() + `"}`: "0",
		`modproxy_upstream_errors_total{class="unavailable"}`:                               "0",
		`modproxy_checksum_verifications_total{result="mismatch"}`:                          "0",
		`modproxy_gc_runs_total{mode="run",result="error"}`:                                 "0",
		`modproxy_store_cap_bytes`:                                                          "1.073741824e+09",
	} {
		if got, ok := sample(body, name); !ok || got != want {
			t.Errorf("%s = %q (exported %v), want %s", name, got, ok, want)
		}
	}
	if !regexp.MustCompile(`(?m)^modproxy_build_info\{goversion="go[^"]+",revision="[^"]+",version="test"\} 1$`).MatchString(body) {
		t.Errorf("no modproxy_build_info with version test:\n%s", grepLines(body, "modproxy_build_info"))
	}
}

func grepLines(s, sub string) string {
	var out []string
	for line := range strings.Lines(s) {
		if strings.Contains(line, sub) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "")
}

// TestStoreGaugesWithoutGC: the store gauges are right at start on a
// cache that holds content, and follow stores without a GC run.
func TestStoreGaugesWithoutGC(t *testing.T) {
	up := upstreamtest.New(t, testMods(), upstreamtest.WithoutSumDB())
	dir := t.TempDir()
	first := start(t, func(c *config.Config) { c.Upstream = up.URL(); c.CacheDir = dir })
	if status, _, _ := first.get(t, "/example.com/a/@v/v1.0.0.zip"); status != 200 {
		t.Fatalf("zip: %d", status)
	}
	adminGet[[]admin.Module](t, first.srv, "/api/modules") // waits for the index
	if err := first.srv.Close(); err != nil {
		t.Fatal(err)
	}

	h := start(t, func(c *config.Config) { c.Upstream = up.URL(); c.CacheDir = dir })
	check := func(when string) {
		t.Helper()
		adminGet[[]admin.Module](t, h.srv, "/api/modules")
		st := adminGet[admin.Status](t, h.srv, "/api/status")
		if st.Store.Objects == 0 {
			t.Fatalf("%s: the index knows no object", when)
		}
		_, body, _ := h.get(t, "/metrics")
		for name, want := range map[string]int64{"modproxy_store_objects": st.Store.Objects, "modproxy_store_bytes": st.Store.Bytes} {
			got, _ := sample(body, name)
			if got != formatFloat(want) {
				t.Errorf("%s: %s = %s, want %d as the index says", when, name, got, want)
			}
		}
	}
	check("at start")
	if status, _, _ := h.get(t, "/example.com/a/@v/v1.1.0.zip"); status != 200 {
		t.Fatalf("zip: %d", status)
	}
	check("after a fill")
}

// formatFloat formats n as the Prometheus text format does.
func formatFloat(n int64) string { return strconv.FormatFloat(float64(n), 'g', -1, 64) }

// TestStatsStartAtServerStart: the dashboard's series begin at the
// server's start rather than hours before it, and count failed answers
// and upstream fetches.
func TestStatsStartAtServerStart(t *testing.T) {
	up := upstreamtest.New(t, testMods(), upstreamtest.WithoutSumDB())
	h := start(t, func(c *config.Config) {
		c.Upstream = up.URL()
		c.Warm.Zips = false // the series count the clients' fetches alone
	})
	up.SetFault("example.com/leaky/@v/v1.2.0.info", upstreamtest.Fault{Kind: upstreamtest.ServerError})
	for _, p := range []string{"/example.com/a/@v/v1.0.0.info", "/example.com/leaky/@v/v1.2.0.info"} {
		h.get(t, p)
	}
	st := adminGet[admin.Status](t, h.srv, "/api/status")
	stats := adminGet[admin.Stats](t, h.srv, "/api/stats")
	if len(stats.Series) == 0 || len(stats.Series) > 2 || !stats.Series[0].Start.Equal(st.Started.Truncate(time.Minute)) {
		var first time.Time
		if len(stats.Series) > 0 {
			first = stats.Series[0].Start
		}
		t.Fatalf("series of %d minutes from %v; want it to start at the server's start %v", len(stats.Series), first, st.Started)
	}
	var sum admin.Bucket
	for _, b := range stats.Series {
		sum.Requests += b.Requests
		sum.Errors += b.Errors
		sum.UpstreamFetches += b.UpstreamFetches
		sum.UpstreamErrors += b.UpstreamErrors
		sum.UpstreamSeconds += b.UpstreamSeconds
		sum.UpstreamMaxSeconds = max(sum.UpstreamMaxSeconds, b.UpstreamMaxSeconds)
	}
	if sum.Requests != 2 || sum.Errors != 1 || sum.UpstreamFetches != 2 || sum.UpstreamErrors != 1 ||
		sum.UpstreamSeconds <= 0 || sum.UpstreamMaxSeconds <= 0 || sum.UpstreamMaxSeconds > sum.UpstreamSeconds {
		t.Errorf("series totals %+v; want 2 requests, 1 error, 2 upstream fetches, 1 failed, with their times", sum)
	}
}

// TestJSONLogDurations: durations in the JSON log are seconds, as
// numbers, not nanoseconds; the text log keeps Go's notation.
func TestJSONLogDurations(t *testing.T) {
	var buf bytes.Buffer
	log := app.NewLogger(config.Log{Format: "json", Level: "info"}, &buf)
	log.Info("rebuilt", "took", 1500*time.Millisecond, slog.Group("g", "wait", 250*time.Millisecond))
	var rec struct {
		Took float64
		G    struct{ Wait float64 }
	}
	if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
		t.Fatalf("%v: %s", err, buf.Bytes())
	}
	if rec.Took != 1.5 || rec.G.Wait != 0.25 {
		t.Errorf("durations logged as %s; want took 1.5 and g.wait 0.25 (seconds)", buf.Bytes())
	}
	buf.Reset()
	app.NewLogger(config.Log{Format: "text", Level: "info"}, &buf).Info("rebuilt", "took", 1500*time.Millisecond)
	if !strings.Contains(buf.String(), "took=1.5s") {
		t.Errorf("text log %q, want took=1.5s", buf.String())
	}

	// The access log of a running server.
	up := upstreamtest.New(t, testMods(), upstreamtest.WithoutSumDB())
	cfg := config.Default()
	cfg.CacheDir, cfg.SumDB, cfg.Verify.Private, cfg.Upstream = t.TempDir(), []string{"off"}, []string{}, up.URL()
	cfg.Resilience.ProbeInterval = 0
	buf.Reset()
	srv, err := app.New(cfg, app.NewLogger(config.Log{Format: "json", Level: "info"}, &buf), app.Info{Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	srv.Handler().ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/example.com/a/@v/v1.0.0.info", nil))
	if err := srv.Close(); err != nil { // nothing logs after it: buf is ours
		t.Fatal(err)
	}
	var found bool
	for line := range strings.Lines(buf.String()) {
		var r struct {
			Msg      string
			Duration any
		}
		if json.Unmarshal([]byte(line), &r) == nil && r.Msg == "request" {
			found = true
			if d, ok := r.Duration.(float64); !ok || d <= 0 || d > 60 {
				t.Errorf("access log duration %v (%T), want seconds as a number: %s", r.Duration, r.Duration, line)
			}
		}
	}
	if !found {
		t.Errorf("no request line in the log:\n%s", buf.String())
	}
}
