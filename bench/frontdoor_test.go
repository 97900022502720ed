package bench

import (
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/modproxy/modproxy/internal/access"
	"github.com/modproxy/modproxy/internal/app"
	"github.com/modproxy/modproxy/internal/config"
	"github.com/modproxy/modproxy/internal/tlsconf"
	"github.com/modproxy/modproxy/internal/tlsconf/tlstest"
	"github.com/modproxy/modproxy/internal/upstream/upstreamtest"
)

// frontDoor is one modproxy (wired by internal/app, access log on) served
// on loopback TCP as `serve` does: plain, over TLS (internal/tlsconf's
// configuration on the listener), or over TLS with auth.mode = required.
type frontDoor struct {
	url     string
	token   string // sent as Bearer when not ""
	client  *http.Client
	handler http.Handler // the server's handler, for in-process calls
}

// newFrontDoor starts the variant on its own cache (filled from up) and
// returns it with a client: HTTP/1.1 keep-alive, or HTTP/2 when h2.
func newFrontDoor(tb testing.TB, up *upstreamtest.Server, ca *tlstest.CA, useTLS, auth, h2 bool) *frontDoor {
	tb.Helper()
	_, key := up.SumDB()
	cfg := config.Default()
	cfg.CacheDir = tb.TempDir()
	cfg.Upstream = up.URL()
	cfg.SumDB = []string{key}
	cfg.Log = config.Log{Format: "json", Level: "info"}
	cfg.Admin.Listen = ""
	fd := &frontDoor{}
	if auth {
		cfg.Auth.Mode = "required"
		svc, err := app.OpenAccess(context.Background(), cfg, slog.New(slog.DiscardHandler))
		if err != nil {
			tb.Fatal(err)
		}
		if fd.token, _, err = svc.Create(context.Background(), "bench", access.Grant{Scopes: []access.Scope{access.ScopeRead}}, time.Time{}); err != nil {
			tb.Fatal(err)
		}
	}
	srv, err := app.New(cfg, app.NewLogger(cfg.Log, io.Discard), app.Info{Version: "bench"})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { srv.Close() })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tr := &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true}
	fd.url = "http://" + ln.Addr().String()
	if useTLS {
		certFile, keyFile := ca.Server(tb).Write(tb, tb.TempDir(), "server")
		tc, err := tlsconf.New(tlsconf.Options{CertFile: certFile, KeyFile: keyFile})
		if err != nil {
			tb.Fatal(err)
		}
		ln = tls.NewListener(ln, tc.TLSConfig())
		fd.url = "https://" + ln.Addr().String()
		tr.TLSClientConfig = &tls.Config{RootCAs: ca.Pool()}
		if h2 {
			tr.ForceAttemptHTTP2 = true
		} else {
			tr.TLSClientConfig.NextProtos = []string{"http/1.1"}
		}
	}
	fd.handler = srv.Handler()
	hs := &http.Server{Handler: fd.handler}
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = hs.Serve(ln) // ends at Close
	}()
	tb.Cleanup(func() {
		hs.Close()
		<-served
	})
	fd.client = &http.Client{Transport: tr}
	tb.Cleanup(tr.CloseIdleConnections)
	for _, k := range []string{"info", "zip"} {
		if n, err := fd.get(hotPath(k)); err != nil || n == 0 {
			tb.Fatalf("filling %s: %d bytes, %v", k, n, err)
		}
	}
	return fd
}

func hotPath(kind string) string { return "/" + hotModule + "/@v/" + hotVersion + "." + kind }

// get fetches path and returns the body's length.
func (fd *frontDoor) get(path string) (int64, error) {
	req, err := http.NewRequest(http.MethodGet, fd.url+path, nil)
	if err != nil {
		return 0, err
	}
	if fd.token != "" {
		req.Header.Set("Authorization", "Bearer "+fd.token)
	}
	resp, err := fd.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = &statusError{resp.StatusCode}
	}
	return n, err
}

type statusError struct{ code int }

func (e *statusError) Error() string { return http.StatusText(e.code) }

// BenchmarkFrontDoor: cached .info and 3 MiB .zip hits over loopback TCP
// from 16 concurrent clients with keep-alive: plain HTTP, HTTPS (TLS 1.3,
// HTTP/1.1), HTTPS with a token (auth.mode = required, Bearer), and the
// last over HTTP/2 as the go command speaks it; p50 and p99 latency per
// request besides ns/op (wall time per request: 1e9/ns/op is req/s).
// Interleave rounds by running the test binary in a loop; see
// docs/benchmarks.md.
func BenchmarkFrontDoor(b *testing.B) {
	up := hotUpstream(b)
	ca := tlstest.NewCA(b, "bench CA")
	variants := []struct {
		name           string
		tls, auth, two bool
	}{
		{"http", false, false, false},
		{"https", true, false, false},
		{"https-token", true, true, false},
		{"https-token-h2", true, true, true},
	}
	doors := make([]*frontDoor, len(variants))
	for i, v := range variants {
		doors[i] = newFrontDoor(b, up, ca, v.tls, v.auth, v.two)
	}
	for _, k := range []string{"info", "zip"} {
		for i, v := range variants {
			b.Run(k+"/"+v.name, func(b *testing.B) {
				fd, path := doors[i], hotPath(k)
				want, err := fd.get(path)
				if err != nil {
					b.Fatal(err)
				}
				b.SetBytes(want)
				b.SetParallelism(8) // 16 clients on 2 CPUs
				var mu sync.Mutex
				var lat []time.Duration
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					var mine []time.Duration
					defer func() {
						mu.Lock()
						lat = append(lat, mine...)
						mu.Unlock()
					}()
					for pb.Next() {
						start := time.Now()
						if n, err := fd.get(path); err != nil || n != want {
							b.Errorf("%d bytes, %v; want %d", n, err, want)
							return
						}
						mine = append(mine, time.Since(start))
					}
				})
				b.StopTimer()
				if len(lat) > 0 {
					slices.Sort(lat)
					b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
					b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
				}
			})
		}
	}
}

// BenchmarkFrontDoorInProcess isolates the cost of authentication on a
// cached .info hit: modproxy's handler called directly (no network, no
// TLS), with auth.mode off and required (a Bearer token per request).
func BenchmarkFrontDoorInProcess(b *testing.B) {
	up := hotUpstream(b)
	ca := tlstest.NewCA(b, "bench CA")
	for _, auth := range []bool{false, true} {
		fd := newFrontDoor(b, up, ca, false, auth, false)
		name := "off"
		if auth {
			name = "required"
		}
		b.Run("info/auth-"+name, func(b *testing.B) {
			req, err := http.NewRequest(http.MethodGet, hotPath("info"), nil)
			if err != nil {
				b.Fatal(err)
			}
			req.RemoteAddr = "127.0.0.1:40000" // as from a connection (the access log's fast path)
			if fd.token != "" {
				req.Header.Set("Authorization", "Bearer "+fd.token)
			}
			w := &discardWriter{h: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				w.reset()
				fd.handler.ServeHTTP(w, req)
				if w.status != http.StatusOK {
					b.Fatalf("status %d", w.status)
				}
			}
		})
	}
}
