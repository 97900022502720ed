package bench

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/modproxy/modproxy/internal/app"
	"github.com/modproxy/modproxy/internal/config"
	"github.com/modproxy/modproxy/internal/upstream/upstreamtest"
)

const (
	hotModule  = "example.com/hotpath"
	hotVersion = "v1.0.0"
)

// hotpath is modproxy wired by internal/app (the GOPROXY handler, the cache
// service with checksum verification against the fake upstream's test
// database, the disk store) with one module version cached, beside
// http.FileServer on the store's objects directory.
type hotpath struct {
	modproxy http.Handler // access log on (JSON, to io.Discard), as served
	quiet    http.Handler // the same with log level warn: no access-log lines
	files    http.Handler // net/http.FileServer, for reference
	paths    map[string]string
	bodies   map[string][]byte
}

var kinds = []string{"info", "mod", "zip"}

// hotUpstream is a fake upstream with the benchmark's module version: a
// 3 MiB zip and a go.mod of typical size.
func hotUpstream(tb testing.TB) *upstreamtest.Server {
	tb.Helper()
	// A 3 MiB file of incompressible bytes makes a zip of about 3 MiB; a
	// go.mod of 40 requirements is the size of a typical one (1.7 kB).
	blob := make([]byte, 3<<20)
	rng := rand.NewChaCha8([32]byte{1})
	_, _ = rng.Read(blob)
	var gomod strings.Builder
	fmt.Fprintf(&gomod, "module %s\n\ngo 1.22\n\nrequire (\n", hotModule)
	for i := range 40 {
		fmt.Fprintf(&gomod, "\texample.com/dependency/number%02d v1.%d.0 // indirect\n", i, i)
	}
	gomod.WriteString(")\n")
	return upstreamtest.New(tb, []upstreamtest.Module{{
		Path: hotModule, Version: hotVersion,
		Files: map[string][]byte{
			"go.mod":     []byte(gomod.String()),
			"hotpath.go": []byte("package hotpath\n"),
			"blob.bin":   blob,
		},
	}})
}

func newHotpath(tb testing.TB) *hotpath {
	tb.Helper()
	up := hotUpstream(tb)
	_, key := up.SumDB()

	cfg := config.Default()
	cfg.CacheDir = tb.TempDir()
	cfg.Upstream = up.URL()
	cfg.SumDB = []string{key} // verification on, through the upstream's /sumdb/
	newServer := func(level string) http.Handler {
		cfg.Log = config.Log{Format: "json", Level: level}
		cfg.Admin.Listen = ""
		srv, err := app.New(cfg, app.NewLogger(cfg.Log, io.Discard), app.Info{Version: "bench"})
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { srv.Close() })
		return srv.Handler()
	}
	h := &hotpath{
		modproxy: newServer("info"),
		files:    http.FileServer(http.Dir(filepath.Join(cfg.CacheDir, "objects"))),
		paths:    map[string]string{},
		bodies:   map[string][]byte{},
	}
	for _, k := range kinds {
		h.paths[k] = "/" + hotModule + "/@v/" + hotVersion + "." + k
		// The first request is a miss: it fills the cache from the fake upstream.
		rec := httptest.NewRecorder()
		h.modproxy.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, h.paths[k], nil))
		if rec.Code != http.StatusOK || rec.Header().Get("Cache-Control") == "" {
			tb.Fatalf("filling %s: status %d: %s", h.paths[k], rec.Code, rec.Body)
		}
		h.bodies[k] = rec.Body.Bytes()
	}
	if !bytes.Equal(h.bodies["zip"], up.ZipBytes(hotModule, hotVersion)) || !bytes.Equal(h.bodies["mod"], up.ModBytes(hotModule, hotVersion)) {
		tb.Fatal("modproxy served other bytes than the upstream's")
	}
	// The same wiring with the access log off, on its own copy of the cache
	// (a cache directory's metadata index belongs to one process).
	cfg.CacheDir = tb.TempDir()
	h.quiet = newServer("warn")
	for _, k := range kinds {
		rec := httptest.NewRecorder()
		h.quiet.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, h.paths[k], nil))
		if rec.Code != http.StatusOK {
			tb.Fatalf("filling %s (quiet): status %d", h.paths[k], rec.Code)
		}
	}
	return h
}

// discardWriter is an http.ResponseWriter that keeps headers and counts
// body bytes, like httptest.ResponseRecorder without buffering the body.
type discardWriter struct {
	h      http.Header
	status int
	n      int64
}

func (w *discardWriter) Header() http.Header { return w.h }

func (w *discardWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}

func (w *discardWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	w.n += int64(len(p))
	return len(p), nil
}

func (w *discardWriter) reset() {
	clear(w.h)
	w.status, w.n = 0, 0
}

// TestHotPath checks the benchmark's setup: both modproxy handlers and the
// file server answer every cached file with the same bytes, as hits.
func TestHotPath(t *testing.T) {
	h := newHotpath(t)
	for _, k := range kinds {
		for name, hd := range map[string]http.Handler{"modproxy": h.modproxy, "quiet": h.quiet, "fileserver": h.files} {
			rec := httptest.NewRecorder()
			hd.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, h.paths[k], nil))
			if rec.Code != http.StatusOK || !bytes.Equal(rec.Body.Bytes(), h.bodies[k]) {
				t.Errorf("%s %s: status %d, %d bytes, want 200 and the %d cached bytes", name, k, rec.Code, rec.Body.Len(), len(h.bodies[k]))
			}
		}
	}
}

// BenchmarkHotPath serves a cached .info, .mod and 3 MiB .zip in process:
// modproxy's handler with its access log (as served), without it, and
// http.FileServer on the same files for reference. The body is counted and
// dropped; no network, no sendfile (see bench/README.md).
func BenchmarkHotPath(b *testing.B) {
	h := newHotpath(b)
	for _, k := range kinds {
		for _, s := range []struct {
			name string
			h    http.Handler
		}{{"modproxy", h.modproxy}, {"modproxy-nolog", h.quiet}, {"fileserver", h.files}} {
			b.Run(k+"/"+s.name, func(b *testing.B) {
				req := httptest.NewRequest(http.MethodGet, h.paths[k], nil)
				w := &discardWriter{h: http.Header{}}
				want := int64(len(h.bodies[k]))
				b.SetBytes(want)
				b.ReportAllocs()
				for b.Loop() {
					w.reset()
					s.h.ServeHTTP(w, req)
					if w.status != http.StatusOK || w.n != want {
						b.Fatalf("status %d, %d bytes, want 200 and %d", w.status, w.n, want)
					}
				}
			})
		}
	}
}
