package app_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modproxy/modproxy/internal/app"
	"github.com/modproxy/modproxy/internal/config"
)

// logRecorder keeps every record logged, for tests that wait for one.
type logRecorder struct {
	mu      sync.Mutex
	recs    []slog.Record
	changed chan struct{} // closed and replaced at every record
}

func newLogRecorder() *logRecorder { return &logRecorder{changed: make(chan struct{})} }

func (l *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRecorder) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *logRecorder) WithGroup(string) slog.Handler            { return l }
func (l *logRecorder) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	l.recs = append(l.recs, r.Clone())
	close(l.changed)
	l.changed = make(chan struct{})
	l.mu.Unlock()
	return nil
}

// find returns the first record with msg, or false.
func (l *logRecorder) find(msg string) (slog.Record, bool, chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, r := range l.recs {
		if r.Message == msg {
			return r, true, nil
		}
	}
	return slog.Record{}, false, l.changed
}

// wait returns the first record with msg, waiting up to 20 s for it.
func (l *logRecorder) wait(t *testing.T, msg string) slog.Record {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		r, ok, changed := l.find(msg)
		if ok {
			return r
		}
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("no %q in the log", msg)
		}
	}
}

// attr returns the value of a record's attribute.
func attr(r slog.Record, key string) string {
	var v string
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == key {
			v = a.Value.String()
			return false
		}
		return true
	})
	return v
}

// served is a server running Serve on loopback.
type served struct {
	srv         *app.Server
	addr, admin string // bound addresses; admin "" when off
	logs        *logRecorder
}

// serveTest runs Serve with a test configuration changed by mutate and
// stops it when the test ends (checking that Serve returned nil).
func serveTest(t *testing.T, mutate func(*config.Config)) *served {
	t.Helper()
	cfg := config.Default()
	cfg.Listen = "127.0.0.1:0"
	cfg.CacheDir = t.TempDir()
	cfg.Upstream = "off"
	cfg.SumDB = []string{"off"}
	cfg.Verify.Private = []string{}
	cfg.Resilience.ProbeInterval = 0
	mutate(&cfg)
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	logs := newLogRecorder()
	srv, err := app.New(cfg, slog.New(logs), app.Info{Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, nil) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
		if err := srv.Close(); err != nil {
			t.Error(err)
		}
	})
	s := &served{srv: srv, logs: logs}
	s.addr = attr(logs.wait(t, "listening"), "addr")
	if !cfg.Admin.Off() {
		if r, ok, _ := logs.find("admin listening"); ok {
			s.admin = attr(r, "addr")
		}
	}
	return s
}

// shortTimeouts are [server] bounds short enough for tests.
func shortTimeouts(c *config.Config) {
	c.Server.ReadHeaderTimeout = config.Duration(200 * time.Millisecond)
	c.Server.ReadTimeout = config.Duration(300 * time.Millisecond)
	c.Server.IdleTimeout = config.Duration(300 * time.Millisecond)
}

// closedByServer reports whether the server closes c (EOF or reset) while
// the client only reads, within a generous 20 s. What the server sent
// before closing is returned.
func closedByServer(t *testing.T, c net.Conn) (bool, string) {
	t.Helper()
	if err := c.SetReadDeadline(time.Now().Add(20 * time.Second)); err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return false, string(b)
	}
	return true, string(b) // io.ReadAll returns nil at EOF; a reset is a close too
}

func dialRaw(t *testing.T, addr, send string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := io.WriteString(c, send); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestSlowClientsAreDisconnected: on both listeners, a request whose body
// never comes, headers that never end and an idle keep-alive connection
// are closed by the server after the configured timeouts (before, a
// missing body held its connection forever, and the admin listener kept
// idle connections forever).
func TestSlowClientsAreDisconnected(t *testing.T) {
	s := serveTest(t, func(c *config.Config) {
		shortTimeouts(c)
		c.Admin.Listen = "127.0.0.1:0"
	})
	if s.admin == "" {
		t.Fatal("no admin listener")
	}
	for _, tc := range []struct {
		name, listener, send string
		answered             bool // the server answers before it closes
	}{
		{"body never comes", "main", "GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n", true},
		{"body never comes", "admin", "POST /api/purge HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{", false},
		{"headers never end", "main", "GET /healthz HTTP/1.1\r\nHost: x\r\n", false},
		{"headers never end", "admin", "GET /healthz HTTP/1.1\r\nHost: x\r\n", false},
		{"idle after a request", "main", "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", true},
		{"idle after a request", "admin", "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", true},
		{"nothing sent", "admin", "", false},
	} {
		t.Run(tc.listener+"/"+tc.name, func(t *testing.T) {
			addr := s.addr
			if tc.listener == "admin" {
				addr = s.admin
			}
			c := dialRaw(t, addr, tc.send)
			closed, got := closedByServer(t, c)
			if !closed {
				t.Fatalf("the server still holds the connection after 20 s (read %q)", got)
			}
			if tc.answered && !strings.HasPrefix(got, "HTTP/1.1 200") {
				t.Errorf("answer before closing: %q, want 200", got)
			}
		})
	}
}

// TestConnectionLimit: with server.max_connections = 2 and two clients
// holding their connections, a third waits (the server logs that the
// limit is reached) and is served once one of them closes.
func TestConnectionLimit(t *testing.T) {
	s := serveTest(t, func(c *config.Config) {
		c.Server.MaxConnections = 2
		c.Admin.Listen = "off"
	})
	var held []net.Conn
	for range 2 {
		c := dialRaw(t, s.addr, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
		// Read the answer: the connection is then open and idle (kept alive).
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		held = append(held, c)
	}
	got := make(chan int, 1)
	go func() {
		tr := &http.Transport{DisableKeepAlives: true}
		defer tr.CloseIdleConnections()
		resp, err := (&http.Client{Transport: tr, Timeout: time.Minute}).Get("http://" + s.addr + "/healthz")
		if err != nil {
			got <- 0
			return
		}
		resp.Body.Close()
		got <- resp.StatusCode
	}()
	r := s.logs.wait(t, "connection limit reached: new clients wait until a connection closes")
	if attr(r, "limit") != "2" || attr(r, "key") != "server.max_connections" {
		t.Errorf("log record: %v", r)
	}
	select {
	case code := <-got:
		t.Fatalf("a third client was served (%d) while two held their connections", code)
	default:
	}
	held[0].Close()
	select {
	case code := <-got:
		if code != 200 {
			t.Fatalf("third client: %d", code)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the third client was not served after a connection closed")
	}
}

// portBeforeHeld returns a free port P and a listener holding P+1.
func portBeforeHeld(t *testing.T) (int, net.Listener) {
	t.Helper()
	for range 50 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		p := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		if p >= 65535 {
			continue
		}
		held, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p+1)))
		if err == nil {
			t.Cleanup(func() { held.Close() })
			return p, held
		}
	}
	t.Fatal("no free port followed by a free port")
	return 0, nil
}

// TestBindErrors: an address in use is a *config.Error naming the key,
// the address and the flag, and nothing is announced; an explicit admin
// address in use stops the start and frees the main listener; the
// derived admin address in use only turns the admin listener off, with a
// warning.
func TestBindErrors(t *testing.T) {
	port, held := portBeforeHeld(t)
	main := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	taken := held.Addr().String()
	for _, tc := range []struct {
		name, key, flag, listen, admin string
	}{
		{"listen", "listen", "--listen", taken, "off"},
		{"explicit admin.listen", "admin.listen", "--admin-listen", main, taken},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := config.Default()
			cfg.Listen, cfg.Admin.Listen = tc.listen, tc.admin
			cfg.CacheDir = t.TempDir()
			cfg.Upstream, cfg.SumDB, cfg.Verify.Private = "off", []string{"off"}, []string{}
			logs := newLogRecorder()
			srv, err := app.New(cfg, slog.New(logs), app.Info{Version: "test"})
			if err != nil {
				t.Fatal(err)
			}
			defer srv.Close()
			err = srv.Serve(context.Background(), func(net.Addr) { t.Error("onListen called") })
			var ce *config.Error
			if !errors.As(err, &ce) || ce.Key != tc.key {
				t.Fatalf("Serve = %v, want a *config.Error for %s", err, tc.key)
			}
			for _, want := range []string{taken, "in use", tc.flag} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %q", err, want)
				}
			}
			if _, ok, _ := logs.find("listening"); ok {
				t.Error(`"listening" logged although the server does not serve`)
			}
			if ln, err := net.Listen("tcp", main); err != nil {
				t.Errorf("the main address is still held after the failed start: %v", err)
			} else {
				ln.Close()
			}
		})
	}
	t.Run("derived admin.listen", func(t *testing.T) {
		s := serveTest(t, func(c *config.Config) { c.Listen = main }) // admin.listen = auto: the held port
		if s.addr != main || s.admin != "" {
			t.Fatalf("listening on %s, admin on %q; want %s and no admin listener", s.addr, s.admin, main)
		}
		r := s.logs.wait(t, "admin listener off: its default address, the port after listen's, cannot be bound; set admin.listen (--admin-listen) to another address, or off")
		if attr(r, "admin_addr") != taken {
			t.Errorf("warning names %q, want %s", attr(r, "admin_addr"), taken)
		}
		if resp, err := http.Get("http://" + main + "/healthz"); err != nil || resp.StatusCode != 200 {
			t.Fatalf("GET /healthz: %v %v", resp, err)
		} else {
			resp.Body.Close()
		}
	})
}
