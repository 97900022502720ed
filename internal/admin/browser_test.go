//go:build unix

package admin_test

import (
	"github.com/modproxy/modproxy/internal/browsertest"

	"bytes"
	"encoding/json"
	"fmt"
	"html"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/modproxy/modproxy/internal/admin"
	"github.com/modproxy/modproxy/internal/audit"
)

// The browser tests load the dashboard in headless Chromium (Debian's
// chromium package) from a real server of the handler, let its scripts
// run, and read the rendered DOM (--dump-dom). A screenshot is saved to
// $MODPROXY_ARTIFACTS (or a temporary directory) for people to look at.

// chromium returns the browser to use: $MODPROXY_CHROMIUM, or chromium on
// PATH. Without one the test is skipped, except in CI, where it fails.
func chromium(t *testing.T) string { return browsertest.Find(t) }

func runChromium(t *testing.T, bin string, args ...string) []byte {
	return browsertest.Run(t, bin, args...)
}

func artifactDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("MODPROXY_ARTIFACTS")
	if dir == "" {
		return t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// dom is a dumped document, read with a small start-tag scanner: enough
// for the elements the dashboard marks with ids and data attributes.
type dom string

type elem struct {
	tag   string
	attrs map[string]string
	text  string // text up to the next tag, unescaped
}

var (
	startTagRE = regexp.MustCompile(`<([a-zA-Z][a-zA-Z0-9-]*)((?:\s+[^\s=>/]+(?:="[^"]*")?)*)\s*/?>`)
	attrRE     = regexp.MustCompile(`([^\s=>/]+)(?:="([^"]*)")?`)
)

func (d dom) elements() []elem {
	var out []elem
	s := string(d)
	for _, m := range startTagRE.FindAllStringSubmatchIndex(s, -1) {
		e := elem{tag: strings.ToLower(s[m[2]:m[3]]), attrs: map[string]string{}}
		for _, a := range attrRE.FindAllStringSubmatch(s[m[4]:m[5]], -1) {
			e.attrs[a[1]] = html.UnescapeString(a[2])
		}
		rest := s[m[1]:]
		if i := strings.IndexByte(rest, '<'); i >= 0 {
			rest = rest[:i]
		}
		e.text = strings.TrimSpace(html.UnescapeString(rest))
		out = append(out, e)
	}
	return out
}

func (d dom) byID(t *testing.T, id string) elem {
	t.Helper()
	for _, e := range d.elements() {
		if e.attrs["id"] == id {
			return e
		}
	}
	t.Fatalf("no element with id %q in the page", id)
	return elem{}
}

func (d dom) where(attr, value string) []elem {
	var out []elem
	for _, e := range d.elements() {
		if v, ok := e.attrs[attr]; ok && v == value {
			out = append(out, e)
		}
	}
	return out
}

// getJSON fetches an API path from the server, as the page does.
func getJSON[T any](t *testing.T, url string) T {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	var v T
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return v
}

// checkNum checks an element's raw value (data-value) and its text.
func checkNum(t *testing.T, d dom, id string, want float64, wantText string) {
	t.Helper()
	e := d.byID(t, id)
	got, err := strconv.ParseFloat(e.attrs["data-value"], 64)
	if err != nil {
		t.Errorf("#%s: data-value %q is not a number (text %q)", id, e.attrs["data-value"], e.text)
		return
	}
	if got != want {
		t.Errorf("#%s: data-value %v, want %v (from the API)", id, got, want)
	}
	if wantText != "" && e.text != wantText {
		t.Errorf("#%s: text %q, want %q", id, e.text, wantText)
	}
}

func TestBrowserDashboard(t *testing.T) {
	bin := chromium(t)
	f := newFake()
	srv := httptest.NewServer(admin.New(admin.Options{Backend: f}))
	defer srv.Close()

	d := dom(runChromium(t, bin, "--dump-dom", srv.URL+"/"))
	art := artifactDir(t)
	if err := os.WriteFile(filepath.Join(art, "admin-dashboard.html"), []byte(d), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("rendered DOM: %s", filepath.Join(art, "admin-dashboard.html"))

	body := d.where("data-ready", "true")
	if len(body) != 1 || body[0].tag != "body" {
		t.Fatalf("the page's script did not finish a refresh (body data-ready not \"true\"); DOM:\n%s", browsertest.Tail(string(d), 4000))
	}
	if e := d.byID(t, "global-error"); e.attrs["hidden"] != "" || e.text != "" {
		if _, hidden := e.attrs["hidden"]; !hidden {
			t.Errorf("the page shows an error: %q", e.text)
		}
	}
	if e := d.byID(t, "login"); e.attrs["hidden"] == "" {
		if _, hidden := e.attrs["hidden"]; !hidden {
			t.Error("the page asks for a token although the server has none")
		}
	}

	// The numbers on the page are the API's numbers.
	status := getJSON[admin.Status](t, srv.URL+"/api/status")
	stats := getJSON[admin.Stats](t, srv.URL+"/api/stats")
	ups := getJSON[[]admin.Upstream](t, srv.URL+"/api/upstreams")
	events := getJSON[[]audit.Event](t, srv.URL+"/api/audit?limit=20")
	mods := getJSON[[]admin.Module](t, srv.URL+"/api/modules?limit=50")

	if e := d.byID(t, "status-version"); e.text != status.Version {
		t.Errorf("version %q, want %q", e.text, status.Version)
	}
	if e := d.byID(t, "status-listen"); e.text != status.Listen {
		t.Errorf("listen %q, want %q", e.text, status.Listen)
	}
	if e := d.byID(t, "status-config"); !strings.Contains(e.text, `"admin_token": "[redacted]"`) {
		t.Errorf("configuration shown: %q", e.text)
	}
	if e := d.byID(t, "status-mode"); e.text != "online" || e.attrs["data-value"] != "false" {
		t.Errorf("mode %q (%s), want online", e.text, e.attrs["data-value"])
	}
	// JavaScript's toFixed rounds halves up: 81.25 shows as 81.3.
	for w, text := range map[string]string{"5m": "81.3%", "1h": "90.0%", "24h": "93.8%"} {
		checkNum(t, d, "hit-ratio-"+w, stats.HitRatio[w], text)
	}
	checkNum(t, d, "total-hits", float64(stats.TotalHits), "1,234,567")
	checkNum(t, d, "total-misses", float64(stats.TotalMiss), "89,012")
	checkNum(t, d, "total-bytes", float64(stats.TotalBytes), "987 GiB")

	var sum admin.Bucket
	for _, b := range stats.Series {
		sum.Requests += b.Requests
		sum.Hits += b.Hits
		sum.Misses += b.Misses
		sum.Bytes += b.Bytes
	}
	checkNum(t, d, "traffic-requests", float64(sum.Requests), "")
	checkNum(t, d, "traffic-hits", float64(sum.Hits), "")
	checkNum(t, d, "traffic-misses", float64(sum.Misses), "")
	checkNum(t, d, "traffic-bytes", float64(sum.Bytes), "")
	if e := d.byID(t, "traffic-requests"); e.text != formatInt(sum.Requests) {
		t.Errorf("traffic-requests text %q, want %q", e.text, formatInt(sum.Requests))
	}
	if e := d.byID(t, "traffic-window"); e.text != "(last 6 h)" {
		t.Errorf("traffic window %q, want (last 6 h)", e.text)
	}
	// Errors and upstream latency over the same window.
	var errs, fetches, fetchErrs int64
	var secs, slowest float64
	for _, b := range stats.Series {
		errs += b.Errors
		fetches += b.UpstreamFetches
		fetchErrs += b.UpstreamErrors
		secs += b.UpstreamSeconds
		slowest = max(slowest, b.UpstreamMaxSeconds)
	}
	if errs == 0 || fetchErrs == 0 || fetches == 0 {
		t.Fatalf("the fake has no errors or upstream fetches: %d, %d, %d", errs, fetchErrs, fetches)
	}
	checkNum(t, d, "traffic-errors", float64(errs), formatInt(errs))
	checkNum(t, d, "upstream-errors", float64(fetchErrs), formatInt(fetchErrs))
	checkNum(t, d, "upstream-fetches", float64(fetches), formatInt(fetches))
	checkNum(t, d, "upstream-mean", secs/float64(fetches), fmt.Sprintf("%.0f ms", secs/float64(fetches)*1000))
	checkNum(t, d, "upstream-max", slowest, fmt.Sprintf("%.2f s", slowest))

	// The charts were drawn: three lines and an area for requests, one
	// line and an area for bytes, two lines (one with an area) for errors
	// and for upstream latency, each with as many points as bins.
	if n := strings.Count(string(d), "<polyline"); n != 8 {
		t.Errorf("%d chart lines, want 8", n)
	}
	for _, id := range []string{"chart-errors", "chart-upstream"} {
		if e := d.byID(t, id); !strings.Contains(e.attrs["aria-label"], ": ") {
			t.Errorf("#%s has no summary in its label: %q", id, e.attrs["aria-label"])
		}
	}
	// The time axis starts at the first bucket (the API's series starts at
	// the server's start at the earliest).
	first := stats.Series[0].Start.Local().Format("15:04")
	var starts int
	for _, e := range d.elements() {
		if e.tag == "text" && e.attrs["text-anchor"] == "start" && e.attrs["class"] == "axis" {
			starts++
			if e.text != first {
				t.Errorf("a chart's time axis starts at %q, want %q (the first bucket)", e.text, first)
			}
		}
	}
	if starts != 4 {
		t.Errorf("%d charts with a time axis, want 4", starts)
	}
	for _, e := range d.elements() {
		if e.tag == "polyline" {
			if n := len(strings.Fields(e.attrs["points"])); n != 120 {
				t.Errorf("chart line with %d points, want 120 (360 minutes in 3-minute bins)", n)
			}
		}
	}

	checkNum(t, d, "store-bytes", float64(status.Store.Bytes), "3.50 GiB")
	checkNum(t, d, "store-cap", float64(status.Store.CapBytes), "5.00 GiB")
	checkNum(t, d, "store-cap-percent", float64(status.Store.Bytes)/float64(status.Store.CapBytes)*100, "70.0% of cap")
	checkNum(t, d, "store-objects", float64(status.Store.Objects), "48,213")
	checkNum(t, d, "store-versions", float64(status.Store.Versions), "16,071")
	checkNum(t, d, "trash-bytes", float64(status.TrashSize), "310 MiB")
	checkNum(t, d, "last-gc", float64(status.LastGC.Evicted), "")
	if e := d.byID(t, "store-bar"); e.attrs["aria-valuenow"] != "70.0" {
		t.Errorf("cache bar aria-valuenow %q, want 70.0", e.attrs["aria-valuenow"])
	}

	rows := d.where("data-testid", "upstream")
	breakers := d.where("data-testid", "breaker")
	if len(rows) != len(ups) || len(breakers) != len(ups) {
		t.Fatalf("%d upstream rows, %d breakers; want %d", len(rows), len(breakers), len(ups))
	}
	for i, u := range ups {
		if rows[i].attrs["data-name"] != u.Name || breakers[i].attrs["data-value"] != u.Breaker || breakers[i].text != u.Breaker {
			t.Errorf("upstream %d: %q %q, want %q %q", i, rows[i].attrs["data-name"], breakers[i].text, u.Name, u.Breaker)
		}
	}

	cls := must(f.Clients(ctx))
	clientRows := d.where("data-testid", "client")
	if len(clientRows) != len(cls) {
		t.Errorf("%d client rows, want %d", len(clientRows), len(cls))
	} else {
		for i, c := range cls {
			if clientRows[i].attrs["data-name"] != c.Identity {
				t.Errorf("client row %d: %q, want %q", i, clientRows[i].attrs["data-name"], c.Identity)
			}
		}
	}

	if n := len(d.where("data-testid", "audit-row")); n != len(events) {
		t.Errorf("%d audit rows, want %d", n, len(events))
	}

	// Module search (the page searches "" on load): paths, versions,
	// sizes and hashes.
	modEls := d.where("data-testid", "module")
	if len(modEls) != len(mods) {
		t.Fatalf("%d modules on the page, want %d", len(modEls), len(mods))
	}
	var wantVersions []admin.Version
	for i, m := range mods {
		if modEls[i].attrs["data-path"] != m.Path {
			t.Errorf("module %d: %q, want %q", i, modEls[i].attrs["data-path"], m.Path)
		}
		wantVersions = append(wantVersions, m.Versions...)
	}
	verEls := d.where("data-testid", "version")
	bytesEls := d.where("data-field", "bytes")
	zipEls := d.where("data-field", "zip_hash")
	modHashEls := d.where("data-field", "mod_hash")
	hitsEls := d.where("data-field", "hits")
	if len(verEls) != len(wantVersions) || len(bytesEls) != len(wantVersions) || len(zipEls) != len(wantVersions) {
		t.Fatalf("%d version rows (%d sizes, %d hashes), want %d", len(verEls), len(bytesEls), len(zipEls), len(wantVersions))
	}
	for i, v := range wantVersions {
		if verEls[i].attrs["data-version"] != v.Version ||
			bytesEls[i].attrs["data-value"] != strconv.FormatInt(v.Bytes, 10) ||
			zipEls[i].attrs["data-value"] != v.ZipHash || modHashEls[i].attrs["data-value"] != v.ModHash ||
			hitsEls[i].attrs["data-value"] != strconv.FormatInt(v.Hits, 10) {
			t.Errorf("version row %d: %v %v %v, want %+v", i, verEls[i].attrs, bytesEls[i].attrs, zipEls[i].attrs, v)
		}
	}
	if e := d.byID(t, "module-status"); e.text != "2 module(s), 3 version(s)" {
		t.Errorf("module status %q", e.text)
	}

	// Untrusted strings are text, never markup.
	if strings.Contains(string(d), "<script>alert(1)") || strings.Contains(string(d), "<b>key</b>") {
		t.Error("a module path or audit reason was inserted as markup")
	}
	if !strings.Contains(string(d), "github.com/&lt;script&gt;alert(1)&lt;/script&gt;/x") {
		t.Error("the top-by-hits module with markup in its name is missing")
	}

	// A screenshot for people.
	shot := filepath.Join(art, "admin-dashboard.png")
	os.Remove(shot)
	runChromium(t, bin, "--screenshot="+shot, "--window-size=1280,1600", srv.URL+"/")
	png, err := os.ReadFile(shot)
	if err != nil {
		t.Fatalf("no screenshot: %v", err)
	}
	if !bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")) || len(png) < 20000 {
		t.Errorf("screenshot %s is not a plausible PNG (%d bytes)", shot, len(png))
	}
	t.Logf("screenshot: %s", shot)
}

// TestBrowserTokenPrompt: with a token, the page loads but shows no data,
// and asks for the token instead.
func TestBrowserTokenPrompt(t *testing.T) {
	bin := chromium(t)
	srv := httptest.NewServer(admin.New(admin.Options{Backend: newFake(), Token: testToken}))
	defer srv.Close()
	d := dom(runChromium(t, bin, "--dump-dom", srv.URL+"/"))
	if len(d.where("data-ready", "login")) != 1 {
		t.Fatalf("the page did not ask for the token; DOM:\n%s", browsertest.Tail(string(d), 4000))
	}
	if _, hidden := d.byID(t, "login").attrs["hidden"]; hidden {
		t.Error("the token form is hidden")
	}
	for _, id := range []string{"hit-ratio-5m", "store-bytes", "total-hits"} {
		if v, ok := d.byID(t, id).attrs["data-value"]; ok {
			t.Errorf("#%s has data %q without a token", id, v)
		}
	}
	if e := d.byID(t, "last-updated"); e.text != "token required" {
		t.Errorf("last-updated %q", e.text)
	}
}

// formatInt formats like the page's en-US Intl.NumberFormat.
func formatInt(n int64) string {
	s := strconv.FormatInt(n, 10)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// TestBrowserActionsWithToken drives the page over the DevTools protocol
// against a server with a token: the page asks for the token, the user
// enters it, the numbers load; GC dry-run shows the plan and purge (after
// its confirmation) reaches the backend with the token and the form's
// values.
func TestBrowserActionsWithToken(t *testing.T) {
	bin := chromium(t)
	f := newFake()
	srv := httptest.NewServer(admin.New(admin.Options{Backend: f, Token: testToken}))
	defer srv.Close()
	b := startBrowser(t, bin, srv.URL+"/")

	b.waitFor(`document.body.dataset.ready === 'login'`)
	var visible bool
	b.eval(`!document.getElementById('login').hidden && document.activeElement.id === 'token-input'`, &visible)
	if !visible {
		t.Error("the token form is not shown and focused")
	}

	// A wrong token is refused and the form comes back with a message.
	b.eval(`document.getElementById('token-input').value = 'wrong'; document.getElementById('login-form').requestSubmit()`, nil)
	b.waitFor(`document.body.dataset.ready === 'login' && document.getElementById('login-error').textContent !== ''`)

	b.eval(fmt.Sprintf(`document.getElementById('token-input').value = %q; document.getElementById('login-form').requestSubmit()`, testToken), nil)
	b.waitFor(`document.body.dataset.ready === 'true' && document.querySelectorAll('[data-testid=module]').length > 0`)
	var stored string
	b.eval(`sessionStorage.getItem('modproxy-admin-token')`, &stored)
	if stored != testToken {
		t.Errorf("sessionStorage token %q", stored)
	}
	stats := must(f.Stats(ctx))
	var ratio float64
	b.eval(`Number(document.getElementById('hit-ratio-1h').dataset.value)`, &ratio)
	if ratio != stats.HitRatio["1h"] {
		t.Errorf("hit ratio 1h on the page %v, want %v", ratio, stats.HitRatio["1h"])
	}

	// GC dry run.
	plan := must(f.GCPlan(ctx))
	b.eval(`document.getElementById('gc-plan').click()`, nil)
	b.waitFor(`document.getElementById('gc-plan-count')`)
	var got struct {
		Count, Bytes, After string
		Items               int
	}
	b.eval(`({
		Count: document.getElementById('gc-plan-count').dataset.value,
		Bytes: document.getElementById('gc-plan-bytes').dataset.value,
		After: document.getElementById('gc-plan-after').dataset.value,
		Items: document.querySelectorAll('[data-testid=gc-item]').length,
	})`, &got)
	if got.Count != strconv.Itoa(len(plan.Items)) || got.Bytes != strconv.FormatInt(plan.Bytes, 10) ||
		got.After != strconv.FormatInt(plan.AfterBytes, 10) || got.Items != len(plan.Items) {
		t.Errorf("GC plan on the page %+v, want %d items, %d bytes, %d after", got, len(plan.Items), plan.Bytes, plan.AfterBytes)
	}
	if calls := f.Calls(); len(calls) != 0 {
		t.Errorf("the dry run changed something: %+v", calls)
	}

	// Purge: cancelled at the confirmation, nothing happens.
	b.eval(`window.confirm = (m) => { window.lastConfirm = m; return false; };
		document.querySelector('[data-path="golang.org/x/tools"] button').click();
		document.getElementById('purge-versions').value = 'v0.20.0';
		document.getElementById('purge-reason').value = 'leaked a credential';
		document.getElementById('purge-block').checked = true;
		document.getElementById('purge-form').requestSubmit()`, nil)
	var confirmText string
	b.eval(`window.lastConfirm`, &confirmText)
	if !strings.Contains(confirmText, "golang.org/x/tools v0.20.0") || !strings.Contains(confirmText, "trash") ||
		!strings.Contains(confirmText, "Re-fetching them will be refused") {
		t.Errorf("purge confirmation %q", confirmText)
	}
	time.Sleep(200 * time.Millisecond)
	if calls := f.Calls(); len(calls) != 0 {
		t.Fatalf("purge went through although the confirmation was cancelled: %+v", calls)
	}
	// Confirmed.
	b.eval(`window.confirm = () => true; document.getElementById('purge-form').requestSubmit()`, nil)
	b.waitFor(`document.querySelector('[data-testid=purge-result]')`)
	calls := f.Calls()
	want := call{"Purge", "admin@127.0.0.1", admin.PurgeRequest{Module: "golang.org/x/tools", Versions: "v0.20.0", Reason: "leaked a credential", Block: true}}
	if len(calls) != 1 || !reflect.DeepEqual(calls[0], want) {
		t.Errorf("backend calls %+v, want [%+v]", calls, want)
	}
	var result string
	b.eval(`document.querySelector('[data-testid=purge-result]').textContent`, &result)
	if result != "Purged 1 version(s), 1.21 KiB (trash batch purge-1); blocked." {
		t.Errorf("purge result %q", result)
	}

	shot := filepath.Join(artifactDir(t), "admin-dashboard-actions.png")
	b.eval(`document.getElementById('gc-title').scrollIntoView()`, nil)
	b.screenshot(shot)
	t.Logf("screenshot after GC dry run and purge: %s", shot)
}
