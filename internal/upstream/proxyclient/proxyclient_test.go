package proxyclient_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modproxy/modproxy/internal/upstream"
	"github.com/modproxy/modproxy/internal/upstream/proxyclient"
)

// serve starts an httptest server with handler and a client for it.
func serve(t *testing.T, handler http.HandlerFunc, opts proxyclient.Options) (*proxyclient.Client, *httptest.Server) {
	t.Helper()
	srv := httptest.NewServer(handler)
	t.Cleanup(srv.Close)
	c, err := proxyclient.New(srv.URL, opts)
	if err != nil {
		t.Fatal(err)
	}
	return c, srv
}

// readBody reads and closes a response body.
func readBody(t *testing.T, resp *upstream.Response) (string, error) {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	if cerr := resp.Body.Close(); err == nil {
		err = cerr
	}
	return string(b), err
}

// upstreamError returns err as an *upstream.Error or fails the test.
func upstreamError(t *testing.T, err error) *upstream.Error {
	t.Helper()
	var ue *upstream.Error
	if !errors.As(err, &ue) {
		t.Fatalf("error %v (%T) is not an *upstream.Error", err, err)
	}
	return ue
}

func TestFetchOK(t *testing.T) {
	var gotPath, gotUA string
	c, _ := serve(t, func(w http.ResponseWriter, r *http.Request) {
		gotPath, gotUA = r.URL.EscapedPath(), r.UserAgent()
		fmt.Fprint(w, `{"Version":"v1.0.0+incompatible"}`)
	}, proxyclient.Options{UserAgent: "modproxy-test"})
	resp, err := c.Fetch(context.Background(), "github.com/!burnt!sushi/toml/@v/v1.0.0+incompatible.info")
	if err != nil {
		t.Fatal(err)
	}
	body, err := readBody(t, resp)
	if err != nil {
		t.Fatal(err)
	}
	if body != `{"Version":"v1.0.0+incompatible"}` || resp.Size != int64(len(body)) || resp.Source != c.String() {
		t.Errorf("response %q, size %d, source %q", body, resp.Size, resp.Source)
	}
	// As the go command sends it: "!" percent-encoded, "+" literal.
	if gotPath != "/github.com/%21burnt%21sushi/toml/@v/v1.0.0+incompatible.info" {
		t.Errorf("upstream saw path %q", gotPath)
	}
	if gotUA != "modproxy-test" {
		t.Errorf("upstream saw User-Agent %q", gotUA)
	}
}

func TestBaseURLWithPathAndCredentials(t *testing.T) {
	var gotPath, gotUser string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotPath = r.URL.Path
		gotUser, _, _ = r.BasicAuth()
		http.Error(w, "no such module", http.StatusNotFound)
	}))
	t.Cleanup(srv.Close)
	base := strings.Replace(srv.URL, "http://", "http://alice:s3cret@", 1) + "/mirror/"
	c, err := proxyclient.New(base, proxyclient.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(c.String(), "s3cret") {
		t.Errorf("String() = %q shows the password", c.String())
	}
	_, err = c.Fetch(context.Background(), "example.com/a/@v/list")
	if gotPath != "/mirror/example.com/a/@v/list" || gotUser != "alice" {
		t.Errorf("upstream saw path %q, user %q", gotPath, gotUser)
	}
	if err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("error %v: want an error that does not show the password", err)
	}
	if ue := upstreamError(t, err); strings.Contains(ue.Upstream, "s3cret") {
		t.Errorf("Upstream = %q shows the password", ue.Upstream)
	}
}

func TestNewRejectsNonHTTP(t *testing.T) {
	for _, base := range []string{"", "file:///srv/proxy", "ftp://proxy.test", "proxy.test", "http://", "://x"} {
		if _, err := proxyclient.New(base, proxyclient.Options{}); err == nil {
			t.Errorf("New(%q) succeeded", base)
		}
	}
}

// TestStatusErrors: every non-200 answer is an *upstream.Error with the
// status; 404 and 410 are fs.ErrNotExist (so "," lists fall through);
// the upstream's text is one sanitized, bounded line.
func TestStatusErrors(t *testing.T) {
	for _, tc := range []struct {
		code                int
		notFound, transient bool
	}{
		{404, true, false}, {410, true, false}, {400, false, false}, {403, false, false},
		{429, false, true}, {500, false, true}, {502, false, true}, {503, false, true},
	} {
		t.Run(fmt.Sprint(tc.code), func(t *testing.T) {
			c, _ := serve(t, func(w http.ResponseWriter, r *http.Request) {
				http.Error(w, "not here", tc.code)
			}, proxyclient.Options{})
			resp, err := c.Fetch(context.Background(), "example.com/a/@v/v1.0.0.mod")
			if err == nil {
				resp.Body.Close()
				t.Fatal("Fetch succeeded")
			}
			ue := upstreamError(t, err)
			if ue.Status != tc.code || ue.Msg != "not here" || ue.Path != "example.com/a/@v/v1.0.0.mod" || ue.Upstream != c.String() {
				t.Errorf("error %+v", ue)
			}
			if got := errors.Is(err, iofs.ErrNotExist); got != tc.notFound {
				t.Errorf("errors.Is(fs.ErrNotExist) = %v, want %v", got, tc.notFound)
			}
			if got := ue.Transient(); got != tc.transient {
				t.Errorf("Transient = %v, want %v", got, tc.transient)
			}
		})
	}
}

func TestErrorTextSanitizedAndBounded(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		check      func(msg string) bool
	}{
		{"first line only", "module not found\n<html>\n<script>evil()</script>", func(m string) bool { return m == "module not found" }},
		{"control characters dropped", "bad\x1b[2J\a\x00 thing", func(m string) bool { return m == "bad[2J thing" }},
		{"long text bounded", strings.Repeat("x", 100_000), func(m string) bool { return len(m) <= 203 && strings.HasSuffix(m, "...") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := serve(t, func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(http.StatusNotFound)
				io.WriteString(w, tc.body)
			}, proxyclient.Options{})
			_, err := c.Fetch(context.Background(), "example.com/a/@v/list")
			if ue := upstreamError(t, err); !tc.check(ue.Msg) {
				t.Errorf("Msg = %q", ue.Msg)
			}
			if strings.ContainsAny(err.Error(), "\n\x1b\a\x00") {
				t.Errorf("Error() = %q holds control characters", err.Error())
			}
		})
	}
}

func TestRetryAfter(t *testing.T) {
	for _, tc := range []struct {
		header string
		want   func(time.Duration) bool
	}{
		{"7", func(d time.Duration) bool { return d == 7*time.Second }},
		{"", func(d time.Duration) bool { return d == 0 }},
		{"soon", func(d time.Duration) bool { return d == 0 }},
		{"-3", func(d time.Duration) bool { return d == 0 }},
		{time.Now().Add(time.Hour).UTC().Format(http.TimeFormat), func(d time.Duration) bool { return d > 30*time.Minute && d <= time.Hour }},
		{time.Now().Add(-time.Hour).UTC().Format(http.TimeFormat), func(d time.Duration) bool { return d == 0 }},
	} {
		c, _ := serve(t, func(w http.ResponseWriter, r *http.Request) {
			if tc.header != "" {
				w.Header().Set("Retry-After", tc.header)
			}
			http.Error(w, "slow down", http.StatusTooManyRequests)
		}, proxyclient.Options{})
		_, err := c.Fetch(context.Background(), "example.com/a/@v/list")
		if ue := upstreamError(t, err); !tc.want(ue.RetryAfter) || ue.Status != 429 {
			t.Errorf("Retry-After %q: RetryAfter = %v, status %d", tc.header, ue.RetryAfter, ue.Status)
		}
	}
}

// TestSizeLimits: bodies over the limit (MaxZipSize for zips, MaxFileSize
// for everything else) fail with ErrTooLarge, whether the upstream
// announces the length or not; such a failure is not transient.
func TestSizeLimits(t *testing.T) {
	opts := proxyclient.Options{MaxFileSize: 10, MaxZipSize: 100}
	for _, tc := range []struct {
		name    string
		path    string
		size    int
		chunked bool // no Content-Length
		tooBig  bool
	}{
		{"file at the limit", "example.com/a/@v/v1.0.0.mod", 10, false, false},
		{"file over the limit", "example.com/a/@v/v1.0.0.mod", 11, false, true},
		{"chunked file at the limit", "example.com/a/@v/v1.0.0.mod", 10, true, false},
		{"chunked file over the limit", "example.com/a/@v/v1.0.0.mod", 11, true, true},
		{"zip over the file limit", "example.com/a/@v/v1.0.0.zip", 100, false, false},
		{"zip over the zip limit", "example.com/a/@v/v1.0.0.zip", 101, false, true},
		{"chunked zip over the zip limit", "example.com/a/@v/v1.0.0.zip", 5000, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := serve(t, func(w http.ResponseWriter, r *http.Request) {
				body := strings.Repeat("z", tc.size)
				if !tc.chunked {
					w.Header().Set("Content-Length", fmt.Sprint(len(body)))
					io.WriteString(w, body)
					return
				}
				for i := range body { // flushed in small writes: no Content-Length
					io.WriteString(w, body[i:i+1])
					w.(http.Flusher).Flush()
				}
			}, opts)
			resp, err := c.Fetch(context.Background(), tc.path)
			var body string
			if err == nil {
				if tc.chunked && resp.Size != -1 {
					t.Errorf("Size = %d for a chunked body, want -1", resp.Size)
				}
				body, err = readBody(t, resp)
			}
			if !tc.tooBig {
				if err != nil || len(body) != tc.size {
					t.Fatalf("read %d bytes, %v; want %d", len(body), err, tc.size)
				}
				return
			}
			if !errors.Is(err, upstream.ErrTooLarge) {
				t.Fatalf("error %v, want ErrTooLarge", err)
			}
			if ue := upstreamError(t, err); ue.Transient() {
				t.Errorf("a too-large body is transient: %+v", ue)
			}
		})
	}
}

// hang answers after release is closed (or the request is cancelled);
// withHeaders sends the headers and some body first. arrived, when not
// nil, is closed when the request has arrived.
func hang(release, arrived chan struct{}, withHeaders bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if arrived != nil {
			close(arrived)
		}
		if withHeaders {
			w.Header().Set("Content-Length", "100")
			io.WriteString(w, "partial")
			w.(http.Flusher).Flush()
		}
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}
}

// TestTimeouts: a missing answer (HeaderTimeout) and a stalled body
// (Timeout, body included) fail with Timeout set, as transient errors.
func TestTimeouts(t *testing.T) {
	for _, tc := range []struct {
		name        string
		opts        proxyclient.Options
		withHeaders bool
	}{
		{"no headers", proxyclient.Options{HeaderTimeout: 50 * time.Millisecond, Timeout: time.Minute}, false},
		{"no headers, whole-fetch timeout", proxyclient.Options{Timeout: 50 * time.Millisecond}, false},
		{"stalled body", proxyclient.Options{Timeout: 100 * time.Millisecond}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			release := make(chan struct{})
			c, _ := serve(t, hang(release, nil, tc.withHeaders), tc.opts)
			defer close(release) // before the server's Close, which waits for handlers
			resp, err := c.Fetch(context.Background(), "example.com/a/@v/v1.0.0.zip")
			if err == nil {
				if !tc.withHeaders {
					resp.Body.Close()
					t.Fatal("Fetch succeeded without headers")
				}
				_, err = readBody(t, resp)
			}
			ue := upstreamError(t, err)
			if !ue.Timeout || !ue.Transient() || ue.Status != 0 {
				t.Errorf("error %+v: want Timeout, transient, no status", ue)
			}
			if errors.Is(err, iofs.ErrNotExist) {
				t.Errorf("a timeout is not found: %v", err)
			}
		})
	}
}

// TestCallerCancelIsNotTimeout: a caller that goes away is not the
// upstream's fault.
func TestCallerCancelIsNotTimeout(t *testing.T) {
	release, arrived := make(chan struct{}), make(chan struct{})
	c, _ := serve(t, hang(release, arrived, false), proxyclient.Options{Timeout: time.Minute})
	defer close(release)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := c.Fetch(ctx, "example.com/a/@v/list")
		done <- err
	}()
	<-arrived
	cancel()
	err := <-done
	if ue := upstreamError(t, err); ue.Timeout || !errors.Is(err, context.Canceled) {
		t.Errorf("error %+v (%v): want context.Canceled without Timeout", ue, err)
	}
}

func TestTransportErrors(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	base := srv.URL
	srv.Close() // nothing listens there any more
	c, err := proxyclient.New(base, proxyclient.Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Fetch(context.Background(), "example.com/a/@v/list")
	ue := upstreamError(t, err)
	if ue.Status != 0 || !ue.Transient() || ue.Timeout || ue.Msg == "" || errors.Is(err, iofs.ErrNotExist) {
		t.Errorf("connection refused: %+v", ue)
	}
	if ue.Err == nil {
		t.Error("the transport error is not kept as the cause")
	}
}

func TestRedirectLimit(t *testing.T) {
	var hops atomic.Int32
	c, _ := serve(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, fmt.Sprintf("/hop%d", hops.Add(1)), http.StatusFound)
	}, proxyclient.Options{})
	_, err := c.Fetch(context.Background(), "example.com/a/@v/list")
	if ue := upstreamError(t, err); ue.Status != 0 || hops.Load() != 5 {
		t.Errorf("error %+v after %d hops, want a failure after 5", ue, hops.Load())
	}
}
