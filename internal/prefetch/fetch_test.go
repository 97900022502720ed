package prefetch_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/module"

	"github.com/modproxy/modproxy/internal/app/apptest"
	"github.com/modproxy/modproxy/internal/prefetch"
	"github.com/modproxy/modproxy/internal/upstream/upstreamtest"
)

// mod is a module version served by the fake upstream, with a go.mod
// requiring reqs ("path version" each) and one package.
func mod(path, version string, reqs ...string) upstreamtest.Module {
	files := map[string][]byte{"p.go": []byte("package p\n")}
	if !strings.HasSuffix(version, "+incompatible") {
		var gomod strings.Builder
		gomod.WriteString("module " + path + "\n\ngo 1.21\n")
		for _, r := range reqs {
			gomod.WriteString("\nrequire " + r + "\n")
		}
		files["go.mod"] = []byte(gomod.String())
	}
	return upstreamtest.Module{Path: path, Version: version, Files: files}
}

// newModproxy runs modproxy in process in front of up, with checksum
// verification against up's test database, and returns its URL.
func newModproxy(t *testing.T, up *upstreamtest.Server) string {
	t.Helper()
	return apptest.Start(t, up)
}

// fastOptions retry at once-ish so that tests do not sleep.
func fastOptions() prefetch.Options {
	return prefetch.Options{
		Concurrency:   4,
		Backoff:       time.Millisecond,
		MaxBackoff:    5 * time.Millisecond,
		MaxRetryAfter: 10 * time.Millisecond,
		Timeout:       10 * time.Second,
	}
}

func run(t *testing.T, base string, opts prefetch.Options, mods []prefetch.Module) *prefetch.Report {
	t.Helper()
	f, err := prefetch.NewProxyFetcher(base, opts)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := f.Prefetch(context.Background(), mods)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// filePath is the escaped protocol path of one file.
func filePath(t *testing.T, path, version, ext string) string {
	t.Helper()
	ep, err := module.EscapePath(path)
	if err != nil {
		t.Fatal(err)
	}
	ev, err := module.EscapeVersion(version)
	if err != nil {
		t.Fatal(err)
	}
	return ep + "/@v/" + ev + "." + ext
}

func result(t *testing.T, rep *prefetch.Report, path, version, kind string) prefetch.Result {
	t.Helper()
	for _, r := range rep.Results {
		if r.Path == path && r.Version == version && r.Kind == kind {
			return r
		}
	}
	t.Fatalf("no result for %s@%s %s in %+v", path, version, kind, rep.Results)
	return prefetch.Result{}
}

// TestArtifactSetThroughModproxy reads a go.work workspace with go.mod and
// go.sum files and checks that exactly the needed files reach the upstream
// through modproxy, each once, and nothing else (no list, no latest).
func TestArtifactSetThroughModproxy(t *testing.T) {
	up := upstreamtest.New(t, []upstreamtest.Module{
		mod("example.com/a", "v1.0.0", "example.com/b v1.0.0"),
		mod("example.com/b", "v1.0.0"),
		mod("example.com/b", "v1.1.0"),
		mod("example.com/Upper/Case", "v1.2.0"),
		mod("example.com/inc", "v2.0.0+incompatible"),
		mod("example.com/gomodonly", "v0.3.0"),
		mod("example.com/fork", "v1.0.1"),
		mod("example.com/unused", "v1.0.0"),
	})
	dir := t.TempDir()
	for name, content := range map[string]string{
		"go.work": "go 1.22\n\nuse (\n\t./app\n\t./tool\n)\n",
		"app/go.mod": `module example.com/app

go 1.22

require (
	example.com/a v1.0.0
	example.com/Upper/Case v1.2.0
	example.com/inc v2.0.0+incompatible
	example.com/orig v1.0.0
	example.com/tool v0.0.0-00010101000000-000000000000
)

replace example.com/orig => example.com/fork v1.0.1
`,
		"app/go.sum": up.GoSum("example.com/a", "v1.0.0") + up.GoSum("example.com/Upper/Case", "v1.2.0") +
			strings.SplitAfter(up.GoSum("example.com/b", "v1.0.0"), "\n")[1] +
			strings.SplitAfter(up.GoSum("example.com/gomodonly", "v0.3.0"), "\n")[1],
		"tool/go.mod": "module example.com/tool\n\ngo 1.22\n\nrequire example.com/b v1.1.0\n",
		"tool/go.sum": up.GoSum("example.com/b", "v1.1.0"),
	} {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	set := prefetch.NewSet()
	if err := set.AddPaths(dir); err != nil {
		t.Fatal(err)
	}
	proxyURL := newModproxy(t, up)
	up.ResetCounts()
	rep := run(t, proxyURL, fastOptions(), set.Modules())

	want := map[string]bool{}
	for _, f := range []struct {
		path, version, exts string
	}{
		{"example.com/a", "v1.0.0", "info mod zip"},
		{"example.com/Upper/Case", "v1.2.0", "info mod zip"},
		{"example.com/inc", "v2.0.0+incompatible", "info mod zip"},
		{"example.com/fork", "v1.0.1", "info mod zip"},
		{"example.com/b", "v1.1.0", "info mod zip"},
		{"example.com/b", "v1.0.0", "mod"},
		{"example.com/gomodonly", "v0.3.0", "mod"},
	} {
		for _, ext := range strings.Fields(f.exts) {
			want[filePath(t, f.path, f.version, ext)] = true
		}
	}
	if !rep.OK() || rep.Fetched != len(want) || rep.Requests != len(want) || rep.Modules != 7 || rep.Retries != 0 {
		t.Errorf("report: %+v", rep)
	}
	var got []string
	for _, p := range up.Log() {
		if !strings.HasPrefix(p, "sumdb/") {
			got = append(got, p)
		}
	}
	sort.Strings(got)
	var wantList []string
	for p := range want {
		wantList = append(wantList, p)
	}
	sort.Strings(wantList)
	if strings.Join(got, "\n") != strings.Join(wantList, "\n") {
		t.Errorf("upstream saw module requests\n%s\nwant exactly\n%s", strings.Join(got, "\n"), strings.Join(wantList, "\n"))
	}
	for p := range want {
		if n := up.Requests(p); n != 1 {
			t.Errorf("%s: %d upstream requests, want 1", p, n)
		}
	}
	// Escaped paths were used: the upstream saw !upper/!case.
	if up.Requests("example.com/!upper/!case/@v/v1.2.0.zip") != 1 {
		t.Errorf("escaped zip path not requested; log %q", up.Log())
	}
	// The byte count is what the upstream served.
	if r := result(t, rep, "example.com/a", "v1.0.0", "zip"); r.Bytes != int64(len(up.ZipBytes("example.com/a", "v1.0.0"))) || r.Status != 200 || r.Attempts != 1 {
		t.Errorf("zip result %+v", r)
	}

	// A second run is served by modproxy's cache: nothing reaches the
	// upstream, and every file is still reported fetched.
	up.ResetCounts()
	rep2 := run(t, proxyURL, fastOptions(), set.Modules())
	if !rep2.OK() || rep2.Fetched != len(want) || up.Total() != 0 {
		t.Errorf("second run: report %+v, upstream log %q", rep2, up.Log())
	}
}

// TestRetries injects transient faults into the upstream, used as the
// proxy itself so that the counts are the client's own attempts.
func TestRetries(t *testing.T) {
	up := upstreamtest.New(t, []upstreamtest.Module{
		mod("example.com/a", "v1.0.0"),
		mod("example.com/b", "v1.0.0"),
	})
	a := func(ext string) string { return filePath(t, "example.com/a", "v1.0.0", ext) }
	b := func(ext string) string { return filePath(t, "example.com/b", "v1.0.0", ext) }
	up.SetFault(a("zip"), upstreamtest.Fault{Kind: upstreamtest.ServerError, Times: 2})
	up.SetFault(a("mod"), upstreamtest.Fault{Kind: upstreamtest.Reset, Times: 1})
	up.SetFault(a("info"), upstreamtest.Fault{Kind: upstreamtest.Status, Code: http.StatusTooManyRequests, Times: 3})
	up.SetFault(b("zip"), upstreamtest.Fault{Kind: upstreamtest.Reset, Times: 1})
	up.SetFault(b("mod"), upstreamtest.Fault{Kind: upstreamtest.Status, Code: http.StatusBadGateway, Times: 1})
	// Retry-After of one second is honoured, however short the backoff.
	up.SetFault(b("info"), upstreamtest.Fault{Kind: upstreamtest.RetryAfter, Code: 1, Times: 1})

	opts := fastOptions()
	opts.MaxRetryAfter = time.Minute
	mods := []prefetch.Module{
		{Path: "example.com/a", Version: "v1.0.0", Need: prefetch.NeedAll},
		{Path: "example.com/b", Version: "v1.0.0", Need: prefetch.NeedAll},
	}
	rep := run(t, up.URL(), opts, mods)
	if !rep.OK() || rep.Fetched != 6 {
		t.Fatalf("report %+v", rep)
	}
	for _, tc := range []struct {
		mod, kind, path string
		requests        int
	}{
		{"example.com/a", "zip", a("zip"), 3}, {"example.com/a", "mod", a("mod"), 2}, {"example.com/a", "info", a("info"), 4},
		{"example.com/b", "zip", b("zip"), 2}, {"example.com/b", "mod", b("mod"), 2}, {"example.com/b", "info", b("info"), 2},
	} {
		if n := up.Requests(tc.path); n != tc.requests {
			t.Errorf("%s: upstream saw %d requests, want %d", tc.path, n, tc.requests)
		}
		if r := result(t, rep, tc.mod, "v1.0.0", tc.kind); r.Attempts != tc.requests || r.Outcome != prefetch.Fetched || r.Status != 200 {
			t.Errorf("%s: result %+v, want %d attempts", tc.path, r, tc.requests)
		}
	}
	if rep.Retries != 2+1+3+1+1+1 {
		t.Errorf("retries = %d, want 9", rep.Retries)
	}
	if r := result(t, rep, "example.com/b", "v1.0.0", "info"); time.Duration(r.Waited) < time.Second {
		t.Errorf("waited %v after Retry-After: 1, want at least 1s", time.Duration(r.Waited))
	}
	// The reset zip is counted once, complete.
	if r := result(t, rep, "example.com/a", "v1.0.0", "mod"); r.Bytes != int64(len(up.ModBytes("example.com/a", "v1.0.0"))) {
		t.Errorf("mod bytes %d", r.Bytes)
	}
}

// TestTimeout: a request that hangs is ended by the per-request timeout and
// retried.
func TestTimeout(t *testing.T) {
	up := upstreamtest.New(t, []upstreamtest.Module{mod("example.com/a", "v1.0.0")})
	zip := filePath(t, "example.com/a", "v1.0.0", "zip")
	up.SetFault(zip, upstreamtest.Fault{Kind: upstreamtest.Hang, Times: 1})
	opts := fastOptions()
	opts.Timeout = 500 * time.Millisecond
	rep := run(t, up.URL(), opts, []prefetch.Module{{Path: "example.com/a", Version: "v1.0.0", Need: prefetch.NeedZip}})
	r := result(t, rep, "example.com/a", "v1.0.0", "zip")
	if r.Outcome != prefetch.Fetched || r.Attempts < 2 || up.Requests(zip) != r.Attempts {
		t.Errorf("result %+v; upstream saw %d requests", r, up.Requests(zip))
	}
}

// TestPermanentFailures: 404 and 410 are not found and never retried; 403
// fails at once; a 500 that does not heal fails after every attempt.
func TestPermanentFailures(t *testing.T) {
	up := upstreamtest.New(t, []upstreamtest.Module{mod("example.com/a", "v1.0.0"), mod("example.com/b", "v1.0.0")})
	a := func(ext string) string { return filePath(t, "example.com/a", "v1.0.0", ext) }
	up.SetFault(a("info"), upstreamtest.Fault{Kind: upstreamtest.Gone})
	up.SetFault(a("mod"), upstreamtest.Fault{Kind: upstreamtest.Status, Code: http.StatusForbidden})
	up.SetFault(a("zip"), upstreamtest.Fault{Kind: upstreamtest.ServerError})
	opts := fastOptions()
	opts.Attempts = 3
	rep := run(t, up.URL(), opts, []prefetch.Module{
		{Path: "example.com/a", Version: "v1.0.0", Need: prefetch.NeedAll},
		{Path: "example.com/missing", Version: "v1.0.0", Need: prefetch.NeedMod},
		{Path: "example.com/b", Version: "v1.0.0", Need: prefetch.NeedMod},
	})
	if rep.OK() || rep.NotFound != 2 || rep.Failed != 2 || rep.Fetched != 1 || rep.Retries != 2 {
		t.Errorf("report %+v", rep)
	}
	for _, tc := range []struct {
		path, version, kind string
		outcome             prefetch.Outcome
		status, attempts    int
		requestPath         string
	}{
		{"example.com/a", "v1.0.0", "info", prefetch.NotFound, 410, 1, a("info")},
		{"example.com/a", "v1.0.0", "mod", prefetch.Failed, 403, 1, a("mod")},
		{"example.com/a", "v1.0.0", "zip", prefetch.Failed, 500, 3, a("zip")},
		{"example.com/missing", "v1.0.0", "mod", prefetch.NotFound, 404, 1, "example.com/missing/@v/v1.0.0.mod"},
	} {
		r := result(t, rep, tc.path, tc.version, tc.kind)
		if r.Outcome != tc.outcome || r.Status != tc.status || r.Attempts != tc.attempts || r.Error == "" {
			t.Errorf("%s %s: %+v", tc.path, tc.kind, r)
		}
		if n := up.Requests(tc.requestPath); n != tc.attempts {
			t.Errorf("%s: %d upstream requests, want %d", tc.requestPath, n, tc.attempts)
		}
	}
	if r := result(t, rep, "example.com/missing", "v1.0.0", "mod"); !strings.HasPrefix(r.Error, "404 Not Found: not found:") {
		t.Errorf("404 reason %q", r.Error)
	}
}

// TestThroughModproxyFlakyUpstream: an upstream failure reaches the client
// as modproxy's 502 with Retry-After; the client retries and succeeds, and
// the upstream saw the failed request and the good one. A module the
// upstream does not have is reported not found after one request.
func TestThroughModproxyFlakyUpstream(t *testing.T) {
	up := upstreamtest.New(t, []upstreamtest.Module{mod("example.com/a", "v1.0.0")})
	proxyURL := newModproxy(t, up)
	zip := filePath(t, "example.com/a", "v1.0.0", "zip")
	up.SetFault(zip, upstreamtest.Fault{Kind: upstreamtest.ServerError, Times: 1})
	rep := run(t, proxyURL, fastOptions(), []prefetch.Module{
		{Path: "example.com/a", Version: "v1.0.0", Need: prefetch.NeedAll},
		{Path: "example.com/nope", Version: "v1.0.0", Need: prefetch.NeedAll},
	})
	if r := result(t, rep, "example.com/a", "v1.0.0", "zip"); r.Outcome != prefetch.Fetched || r.Bytes != int64(len(up.ZipBytes("example.com/a", "v1.0.0"))) {
		t.Errorf("zip: %+v", r)
	}
	if n := up.Requests(zip); n != 2 {
		t.Errorf("upstream saw %d zip requests, want 2 (the failure, then the retry)", n)
	}
	for _, kind := range []string{"info", "mod", "zip"} {
		r := result(t, rep, "example.com/nope", "v1.0.0", kind)
		if r.Outcome != prefetch.NotFound || r.Attempts != 1 || r.Status != 404 {
			t.Errorf("nope %s: %+v", kind, r)
		}
	}
	if n := up.Requests("example.com/nope/@v/v1.0.0.info"); n != 1 {
		t.Errorf("upstream saw %d requests for the missing module's .info, want 1", n)
	}
	if rep.Fetched != 3 || rep.NotFound != 3 || rep.Failed != 0 {
		t.Errorf("report %+v", rep)
	}
}

// TestReport checks the totals, the JSON form and the text summary, with
// a fixed clock.
func TestReport(t *testing.T) {
	up := upstreamtest.New(t, []upstreamtest.Module{mod("example.com/a", "v1.0.0")})
	up.SetFault(filePath(t, "example.com/a", "v1.0.0", "zip"), upstreamtest.Fault{Kind: upstreamtest.ServerError, Times: 1})
	opts := fastOptions()
	t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	opts.Now = func() time.Time { return t0 }
	var calls, lastDone, lastTotal int
	opts.Progress = func(done, total int) { calls++; lastDone, lastTotal = done, total }
	rep := run(t, up.URL(), opts, []prefetch.Module{
		{Path: "example.com/a", Version: "v1.0.0", Need: prefetch.NeedAll},
		{Path: "example.com/gone", Version: "v0.1.0", Need: prefetch.NeedMod},
	})
	if calls != 4 || lastDone != 4 || lastTotal != 4 {
		t.Errorf("progress: %d calls, last %d/%d", calls, lastDone, lastTotal)
	}
	rep.Skipped = []prefetch.Skipped{{Path: "example.com/local", Version: "v1.0.0", Reason: "replaced by directory ../local", Source: "go.mod"}}

	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	if err := enc.Encode(rep); err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	zipLen := float64(len(up.ZipBytes("example.com/a", "v1.0.0")))
	infoModLen := float64(rep.Bytes) - zipLen
	for k, want := range map[string]any{
		"target": up.URL(), "mode": "proxy", "modules": 2.0, "requests": 4.0, "fetched": 3.0, "cached": 0.0,
		"not_found": 1.0, "failed": 0.0, "retries": 1.0, "duration": 0.0, "bytes": zipLen + infoModLen,
	} {
		if got[k] != want {
			t.Errorf("json %s = %v, want %v", k, got[k], want)
		}
	}
	results := got["results"].([]any)
	if len(results) != 4 {
		t.Fatalf("json results: %v", results)
	}
	first := results[0].(map[string]any)
	if first["path"] != "example.com/a" || first["kind"] != "info" || first["outcome"] != "fetched" || first["attempts"] != 1.0 || first["status"] != 200.0 {
		t.Errorf("first result %v", first)
	}
	zipRes := results[2].(map[string]any)
	if zipRes["kind"] != "zip" || zipRes["attempts"] != 2.0 || zipRes["bytes"] != zipLen {
		t.Errorf("zip result %v", zipRes)
	}
	gone := results[3].(map[string]any)
	if gone["path"] != "example.com/gone" || gone["outcome"] != "not_found" || !strings.HasPrefix(gone["error"].(string), "404 Not Found") {
		t.Errorf("not-found result %v", gone)
	}
	if sk := got["skipped"].([]any); len(sk) != 1 || sk[0].(map[string]any)["reason"] != "replaced by directory ../local" {
		t.Errorf("skipped %v", got["skipped"])
	}

	var text bytes.Buffer
	rep.WriteText(&text)
	for _, want := range []string{
		"NOT FOUND example.com/gone@v0.1.0 mod: 404 Not Found: not found:",
		"skipped   example.com/local@v1.0.0: replaced by directory ../local (go.mod)",
		"prefetch from " + up.URL() + ": 2 module versions, 4 files in 0s",
		"  fetched         3  (",
		"  not found       1",
		"  failed          0",
		"  retries         1",
		"  skipped         1",
	} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, text.String())
		}
	}
	if strings.Contains(text.String(), "cached") {
		t.Errorf("a proxy summary claims cached counts:\n%s", text.String())
	}
}

// TestCanceled: cancelling the context fails what is left, promptly.
func TestCanceled(t *testing.T) {
	up := upstreamtest.New(t, []upstreamtest.Module{mod("example.com/a", "v1.0.0")})
	up.SetFault("ALL", upstreamtest.Fault{Kind: upstreamtest.Hang})
	f, err := prefetch.NewProxyFetcher(up.URL(), fastOptions())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	rep, err := f.Prefetch(ctx, []prefetch.Module{{Path: "example.com/a", Version: "v1.0.0", Need: prefetch.NeedAll}})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Failed != 3 || rep.OK() {
		t.Fatalf("report %+v", rep)
	}
	for _, r := range rep.Results {
		if !strings.HasPrefix(r.Error, "canceled") || r.Attempts != 1 {
			t.Errorf("result %+v", r)
		}
	}
}

func TestNewProxyFetcherRejects(t *testing.T) {
	for _, u := range []string{"", "file:///tmp/proxy", "direct", "http://", "ftp://h/x"} {
		if _, err := prefetch.NewProxyFetcher(u, prefetch.Options{}); err == nil {
			t.Errorf("NewProxyFetcher(%q) accepted", u)
		}
	}
	f, err := prefetch.NewProxyFetcher("https://user:secret@proxy.test.example/base/", prefetch.Options{})
	if err != nil {
		t.Fatal(err)
	}
	rep, _ := f.Prefetch(context.Background(), nil)
	if strings.Contains(rep.Target, "secret") || !rep.OK() || rep.Requests != 0 {
		t.Errorf("report %+v", rep)
	}
}
