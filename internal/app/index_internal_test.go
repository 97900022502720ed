package app

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/modproxy/modproxy/internal/background"
	"github.com/modproxy/modproxy/internal/cacheadmin"
	"github.com/modproxy/modproxy/internal/config"
	"github.com/modproxy/modproxy/internal/index"
	"github.com/modproxy/modproxy/internal/storage"
	"github.com/modproxy/modproxy/internal/upstream/upstreamtest"
)

// heldWalker is a store walk that waits for release before it starts.
type heldWalker struct {
	index.Walker
	started chan struct{}
	release chan struct{}
	err     error // returned instead of walking, once released
}

func (h heldWalker) Walk(ctx context.Context, prefix string, fn func(storage.Info) error) error {
	close(h.started)
	select {
	case <-h.release:
	case <-ctx.Done():
		return ctx.Err()
	}
	if h.err != nil {
		return h.err
	}
	return h.Walker.Walk(ctx, prefix, fn)
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

func adminDo(t *testing.T, h http.Handler, method, path string) (int, string) {
	t.Helper()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(method, "http://127.0.0.1"+path, nil))
	return w.Code, w.Body.String()
}

// TestIndexRebuiltInBackground: a server whose metadata index is missing
// listens and serves at once (hits and fills) while the index is rebuilt
// from the store in the background; meanwhile GC and module listings
// answer 503 saying so, and /readyz says so (and stays ready); once the
// rebuild ends they work, and the index holds the old objects and the
// ones filled during the rebuild. Close stops a rebuild in progress.
func TestIndexRebuiltInBackground(t *testing.T) {
	mods := []upstreamtest.Module{
		{Path: "example.com/a", Version: "v1.0.0", Files: map[string][]byte{"a.go": []byte("package a\n")}},
		{Path: "example.com/b", Version: "v1.0.0", Files: map[string][]byte{"b.go": []byte("package b\n")}},
	}
	up := upstreamtest.New(t, mods, upstreamtest.WithoutSumDB())
	cfg := config.Default()
	cfg.Listen, cfg.Admin.Listen = "127.0.0.1:0", "off"
	cfg.CacheDir = t.TempDir()
	cfg.Upstream, cfg.SumDB, cfg.Verify.Private = up.URL(), []string{"off"}, []string{}
	cfg.Resilience.ProbeInterval = 0
	log := slog.New(slog.DiscardHandler)

	// A first server fills a, then stops; the index is lost.
	first, err := New(cfg, log, Info{Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(first.Handler())
	if code, _ := get(t, ts.URL+"/example.com/a/@v/v1.0.0.zip"); code != 200 {
		t.Fatalf("fill: %d", code)
	}
	ts.Close()
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(cfg.CacheDir, "index.db")); err != nil {
		t.Fatal(err)
	}

	srv, err := New(cfg, log, Info{Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	held := heldWalker{Walker: srv.idxRebuild.store, started: make(chan struct{}), release: make(chan struct{})}
	srv.idxRebuild.store = held
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addrc := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, func(a net.Addr) { addrc <- a }) }()
	base := "http://" + (<-addrc).String()
	<-held.started

	if code, _ := get(t, base+"/example.com/a/@v/v1.0.0.zip"); code != 200 {
		t.Errorf("hit during the rebuild: %d", code)
	}
	if code, _ := get(t, base+"/example.com/b/@v/v1.0.0.zip"); code != 200 {
		t.Errorf("fill during the rebuild: %d", code)
	}
	if up.Requests("example.com/a/@v/v1.0.0.zip") != 1 {
		t.Errorf("the hit went upstream")
	}
	code, body := get(t, base+"/readyz")
	if code != 200 || !strings.Contains(body, "metadata index: rebuilding from the store in the background") {
		t.Errorf("/readyz during the rebuild: %d %q", code, body)
	}
	for _, p := range [][2]string{{"POST", "/api/gc/run"}, {"GET", "/api/gc/plan"}, {"GET", "/api/modules"}} {
		code, body := adminDo(t, srv.AdminHandler(), p[0], p[1])
		if code != http.StatusServiceUnavailable || !strings.Contains(body, "being rebuilt") {
			t.Errorf("%s %s during the rebuild: %d %s", p[0], p[1], code, body)
		}
	}
	if code, _ := adminDo(t, srv.AdminHandler(), "GET", "/api/status"); code != 200 {
		t.Errorf("status during the rebuild: %d", code)
	}

	close(held.release)
	deadline := time.Now().Add(20 * time.Second)
	for srv.idxRebuild.ready(ctx) != nil {
		if time.Now().After(deadline) {
			t.Fatal("the rebuild did not end")
		}
		time.Sleep(10 * time.Millisecond)
	}
	code, body = get(t, base+"/readyz")
	if code != 200 || !strings.Contains(body, "metadata index: ready") {
		t.Errorf("/readyz after the rebuild: %d %q", code, body)
	}
	code, body = adminDo(t, srv.AdminHandler(), "GET", "/api/modules")
	if code != 200 || !strings.Contains(body, "example.com/a") || !strings.Contains(body, "example.com/b") {
		t.Errorf("modules after the rebuild: %d %s", code, body)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	// The next start finds a complete index: nothing to rebuild.
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	again, err := New(cfg, log, Info{Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	if again.idxRebuild.stale {
		t.Error("the rebuilt index is stale at the next start")
	}
}

// TestIndexRebuildStoppedByClose: Close cancels a rebuild in progress and
// waits for it; the index stays stale, so the next start rebuilds.
func TestIndexRebuildStoppedByClose(t *testing.T) {
	cfg := config.Default()
	cfg.CacheDir = t.TempDir()
	cfg.Upstream, cfg.SumDB, cfg.Verify.Private = "off", []string{"off"}, []string{}
	log := slog.New(slog.DiscardHandler)
	srv, err := New(cfg, log, Info{Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	held := heldWalker{Walker: srv.idxRebuild.store, started: make(chan struct{}), release: make(chan struct{})}
	srv.idxRebuild.store = held
	srv.RunBackground(context.Background())
	<-held.started
	if err := srv.idxRebuild.ready(context.Background()); !strings.Contains(err.Error(), "being rebuilt") {
		t.Fatalf("ready during the rebuild: %v", err)
	}
	if err := srv.Close(); err != nil { // returns only once the rebuild has stopped
		t.Fatal(err)
	}
	again, err := New(cfg, log, Info{Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	if !again.idxRebuild.stale {
		t.Error("an index whose rebuild was stopped is not rebuilt at the next start")
	}
}

// flakyWalker fails its first walks.
type flakyWalker struct {
	fails *int
	err   error
}

func (f flakyWalker) Walk(ctx context.Context, prefix string, fn func(storage.Info) error) error {
	if *f.fails > 0 {
		*f.fails--
		return f.err
	}
	return fn(storage.Info{Key: "example.com/a/@v/v1.0.0.mod", Size: 10, ModTime: time.Now()})
}

// TestIndexRebuildRetried: a background rebuild that fails says why
// (ready's error and /readyz) and tries again a minute later (fake time).
func TestIndexRebuildRetried(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		idx, stale, err := index.Open(filepath.Join(t.TempDir(), "index.db"), index.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer idx.Close()
		boom := errors.New("store unreachable")
		fails := 1
		r := &indexRebuild{idx: idx, log: slog.New(slog.DiscardHandler), stale: stale, store: flakyWalker{&fails, boom}}
		g := background.New(nil)
		defer g.Close()
		r.start(context.Background(), g)
		synctest.Wait()
		if err := r.ready(context.Background()); !errors.Is(err, cacheadmin.ErrUnavailable) || !errors.Is(err, boom) {
			t.Fatalf("ready after a failed rebuild: %v", err)
		}
		if st := r.status(); !strings.Contains(st, "rebuild failed, retrying: rebuilding index: store unreachable") {
			t.Errorf("status: %q", st)
		}
		time.Sleep(retryRebuild)
		synctest.Wait()
		if err := r.ready(context.Background()); err != nil {
			t.Fatalf("ready after the retry: %v", err)
		}
		if _, n := idx.Totals(); n != 1 {
			t.Errorf("index holds %d objects after the retry, want 1", n)
		}
	})
}

// TestIndexRebuildInCaller: without background work, the first caller
// that needs the index rebuilds it (and gets its failure).
func TestIndexRebuildInCaller(t *testing.T) {
	idx, stale, err := index.Open(filepath.Join(t.TempDir(), "index.db"), index.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer idx.Close()
	boom := errors.New("store unreachable")
	r := &indexRebuild{idx: idx, log: slog.New(slog.DiscardHandler), stale: stale,
		store: heldWalker{started: make(chan struct{}), release: make(chan struct{}), err: boom}}
	close(r.store.(heldWalker).release)
	if err := r.ready(context.Background()); !errors.Is(err, boom) {
		t.Fatalf("ready with a failing store, no background: %v", err)
	}
	if !strings.Contains(r.status(), "rebuilt on first use") {
		t.Errorf("status: %q", r.status())
	}
	r.store = flakyWalker{new(int), nil}
	if err := r.ready(context.Background()); err != nil {
		t.Fatalf("ready with a working store: %v", err)
	}
	if _, n := idx.Totals(); n != 1 || !strings.Contains(r.status(), "metadata index: ready (1 objects)") {
		t.Errorf("after the rebuild in the caller: %d objects, status %q", n, r.status())
	}
}
