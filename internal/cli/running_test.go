package cli

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/modproxy/modproxy/internal/admin"
	"github.com/modproxy/modproxy/internal/app"
	"github.com/modproxy/modproxy/internal/config"
	"github.com/modproxy/modproxy/internal/units"
	"github.com/modproxy/modproxy/internal/upstream/upstreamtest"
)

// cacheServer is a modproxy server of this process on a cache directory:
// it holds the directory's metadata index as a running server does.
type cacheServer struct {
	cfg  config.Config
	srv  *app.Server
	addr net.Addr // main listener, when serving
	stop func()
}

func newCacheServer(t *testing.T, dir string, mutate func(*config.Config)) *cacheServer {
	t.Helper()
	cfg := config.Default()
	cfg.CacheDir = dir
	cfg.SumDB = []string{"off"}
	cfg.Verify.Private = []string{}
	cfg.Upstream = "off"
	cfg.Listen = "127.0.0.1:0"
	cfg.Admin.Listen = "127.0.0.1:0"
	cfg.Resilience.ProbeInterval = 0
	if mutate != nil {
		mutate(&cfg)
	}
	srv, err := app.New(cfg, slog.New(slog.DiscardHandler), app.Info{Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	cs := &cacheServer{cfg: cfg, srv: srv, stop: func() { srv.Close() }}
	t.Cleanup(func() { cs.stop() })
	return cs
}

// serve runs Serve until stop and waits until the admin API is recorded.
func (cs *cacheServer) serve(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	addrc := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() { done <- cs.srv.Serve(ctx, func(a net.Addr) { addrc <- a }) }()
	var once bool
	cs.stop = func() {
		if once {
			return
		}
		once = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
		cs.srv.Close()
	}
	select {
	case cs.addr = <-addrc:
	case err := <-done:
		t.Fatalf("Serve: %v", err)
	}
	for range 1000 { // the admin listener is bound after the main one
		if _, ok, err := app.RunningAdmin(cs.cfg.CacheDir); ok || err != nil {
			cs.waitIndex(t)
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("the server recorded no admin API")
}

// waitIndex waits until /readyz reports the metadata index ready: it is
// rebuilt in the background after the server starts listening, and the
// commands under test answer "temporarily unavailable" until then.
func (cs *cacheServer) waitIndex(t *testing.T) {
	t.Helper()
	var last string
	for range 3000 {
		resp, err := http.Get("http://" + cs.addr.String() + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if last = string(b); strings.Contains(last, "metadata index: ready") {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("the metadata index never became ready; /readyz: %s", last)
}

func (cs *cacheServer) get(t *testing.T, path string) {
	t.Helper()
	resp, err := http.Get("http://" + cs.addr.String() + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d", path, resp.StatusCode)
	}
}

func cliEnv(extra ...string) map[string]string {
	env := map[string]string{"MODPROXY_VERIFY_PRIVATE": "private.example"}
	for i := 0; i+1 < len(extra); i += 2 {
		env[extra[i]] = extra[i+1]
	}
	return env
}

// TestGCWhileServerRuns: gc --dry-run, gc trash, gc restore and index
// work while a server holds the cache directory's metadata index: they ask
// the server's admin API, with its token.
func TestGCWhileServerRuns(t *testing.T) {
	dir := t.TempDir()
	cs := newCacheServer(t, dir, func(c *config.Config) { c.Admin.Token = "tok" })
	cs.serve(t)
	env := cliEnv("MODPROXY_ADMIN_TOKEN", "tok")
	flags := []string{"--cache-dir", dir, "--sumdb", "off"}

	code, stdout, stderr := run(t, env, append([]string{"gc", "--dry-run"}, flags...)...)
	if code != ExitOK || !strings.Contains(stdout, "plan: evict 0 versions") || !strings.Contains(stderr, "asking the server running on "+dir) {
		t.Errorf("gc --dry-run while the server runs: exit %d\nstdout %q\nstderr %q", code, stdout, stderr)
	}
	if code, stdout, _ := run(t, env, append([]string{"gc", "trash", "--json"}, flags...)...); code != ExitOK || strings.TrimSpace(stdout) != "[]" {
		t.Errorf("gc trash: exit %d %q", code, stdout)
	}
	code, _, stderr = run(t, env, append([]string{"gc", "restore", "nope"}, flags...)...)
	if code != ExitUsage || !strings.Contains(stderr, `trash batch "nope"`) {
		t.Errorf("gc restore of an unknown batch through the API: exit %d %q", code, stderr)
	}
	code, stdout, _ = run(t, env, append([]string{"index"}, flags...)...)
	if code != ExitOK || !strings.Contains(stdout, "0 objects, 0 B, 0 module versions (from the running server at http://127.0.0.1:") {
		t.Errorf("index: exit %d %q", code, stdout)
	}
	code, _, stderr = run(t, env, append([]string{"index", "rebuild"}, flags...)...)
	if code != ExitFailure || !strings.Contains(stderr, "a server is running on "+dir) {
		t.Errorf("index rebuild: exit %d %q", code, stderr)
	}

	// Without the token the server refuses, and the message says so.
	code, _, stderr = run(t, cliEnv(), append([]string{"gc", "--dry-run"}, flags...)...)
	if code != ExitFailure || !strings.Contains(stderr, "refused") || !strings.Contains(stderr, "MODPROXY_ADMIN_TOKEN") {
		t.Errorf("gc --dry-run without the token: exit %d %q", code, stderr)
	}
}

// TestGCIndexHeldWithoutAPI: a process holds the index and recorded no
// admin API (here: a server that is not serving): gc and index fail with
// a message that says why, not only "locked".
func TestGCIndexHeldWithoutAPI(t *testing.T) {
	dir := t.TempDir()
	newCacheServer(t, dir, nil)
	flags := []string{"--cache-dir", dir, "--sumdb", "off"}
	for _, args := range [][]string{{"gc", "--dry-run"}, {"index"}} {
		code, _, stderr := run(t, cliEnv(), append(args, flags...)...)
		if code != ExitFailure || !strings.Contains(stderr, "in use by another process") || !strings.Contains(stderr, "admin.json") {
			t.Errorf("%v: exit %d %q", args, code, stderr)
		}
	}
}

// TestSizesAgree: one cache, one size: gc's plan, modproxy index (from
// the running server and read-only from the file), the admin API and
// modproxy index rebuild all give the same bytes, printed the same way.
func TestSizesAgree(t *testing.T) {
	up := upstreamtest.New(t, []upstreamtest.Module{
		{Path: "example.com/a", Version: "v1.0.0", Files: map[string][]byte{"a.go": []byte(strings.Repeat("package a\n", 400))}},
		{Path: "example.com/a", Version: "v1.1.0", Files: map[string][]byte{"a.go": []byte(strings.Repeat("package a\n", 900))}},
	})
	_, vkey := up.SumDB()
	dir := t.TempDir()
	cs := newCacheServer(t, dir, func(c *config.Config) {
		c.Upstream = up.URL()
		c.SumDB = []string{vkey}
	})
	cs.serve(t)
	for _, p := range []string{"/example.com/a/@v/list", "/example.com/a/@v/v1.0.0.info", "/example.com/a/@v/v1.0.0.mod",
		"/example.com/a/@v/v1.0.0.zip", "/example.com/a/@v/v1.1.0.zip", "/example.com/a/@latest"} {
		cs.get(t, p)
	}
	flags := []string{"--cache-dir", dir, "--sumdb", vkey}

	type figure struct {
		what  string
		bytes int64
		text  string // the printed size
	}
	var figures []figure
	jsonRun := func(what string, v any, args ...string) {
		t.Helper()
		code, stdout, stderr := run(t, cliEnv(), append(args, flags...)...)
		if code != ExitOK {
			t.Fatalf("%s: exit %d %s", what, code, stderr)
		}
		if err := json.Unmarshal([]byte(stdout), v); err != nil {
			t.Fatalf("%s: %v\n%s", what, err, stdout)
		}
	}
	textRun := func(what string, re *regexp.Regexp, args ...string) string {
		t.Helper()
		code, stdout, stderr := run(t, cliEnv(), append(args, flags...)...)
		m := re.FindStringSubmatch(stdout)
		if code != ExitOK || m == nil {
			t.Fatalf("%s: exit %d, stdout %q, stderr %q", what, code, stdout, stderr)
		}
		return m[1]
	}
	planText := regexp.MustCompile(`plan: evict \d+ versions, \S+ \S+ of (\S+ \S+) \(leaves`)
	indexText := regexp.MustCompile(`: \d+ objects, (\S+ \S+), \d+ module versions`)

	// While the server runs (the plan first: it applies the index's queue).
	var plan admin.GCPlan
	jsonRun("gc --dry-run --json (server)", &plan, "gc", "--dry-run", "--json")
	figures = append(figures, figure{"gc plan (server)", plan.StoreBytes, textRun("gc --dry-run (server)", planText, "gc", "--dry-run")})
	var idx indexReport
	jsonRun("index --json (server)", &idx, "index", "--json")
	figures = append(figures, figure{"index (server)", idx.Bytes, textRun("index (server)", indexText, "index")})
	st, ok, err := app.RunningAdmin(dir)
	if err != nil || !ok {
		t.Fatalf("RunningAdmin: %v %v", ok, err)
	}
	status, err := (&admin.Client{URL: st.URL}).Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	figures = append(figures, figure{"admin API status", status.Store.Bytes, units.Bytes(status.Store.Bytes)})

	// Stopped: read-only, then offline, then rebuilt from the store.
	cs.stop()
	jsonRun("index --json (read-only)", &idx, "index", "--json")
	figures = append(figures, figure{"index (read-only)", idx.Bytes, textRun("index (read-only)", indexText, "index")})
	jsonRun("gc --dry-run --json (offline)", &plan, "gc", "--dry-run", "--json")
	figures = append(figures, figure{"gc plan (offline)", plan.StoreBytes, textRun("gc --dry-run (offline)", planText, "gc", "--dry-run")})
	rebuilt := textRun("index rebuild", regexp.MustCompile(`index rebuilt: \d+ objects, (\S+ \S+)`), "index", "rebuild")
	jsonRun("index --json (rebuilt)", &idx, "index", "--json")
	figures = append(figures, figure{"index rebuild", idx.Bytes, rebuilt})

	want := figures[1] // the index's, as the running server reports it
	if want.bytes <= 0 || want.text != units.Bytes(want.bytes) {
		t.Fatalf("%s: %d bytes printed as %q", want.what, want.bytes, want.text)
	}
	for _, f := range figures {
		if f.bytes != want.bytes || f.text != want.text {
			t.Errorf("%s: %d bytes (%s); %s: %d bytes (%s)", f.what, f.bytes, f.text, want.what, want.bytes, want.text)
		}
	}
}
