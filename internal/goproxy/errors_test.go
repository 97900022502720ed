package goproxy_test

import (
	"context"
	"errors"
	"fmt"
	iofs "io/fs"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/mod/sumdb"

	"github.com/modproxy/modproxy/internal/artifact"
	"github.com/modproxy/modproxy/internal/checksum"
	"github.com/modproxy/modproxy/internal/errclass"
	"github.com/modproxy/modproxy/internal/goproxy"
	"github.com/modproxy/modproxy/internal/proxy"
	"github.com/modproxy/modproxy/internal/routing"
	"github.com/modproxy/modproxy/internal/upstream"
)

// failing is a Service whose every Get fails with err.
type failing struct{ err error }

func (f failing) Get(ctx context.Context, req artifact.Request) (*proxy.Result, error) {
	return nil, f.err
}
func (f failing) SumDBSupported(name string) bool { return true }

type answer struct {
	status int
	body   string // the whole one-line body
	retry  bool   // Retry-After: 30
}

// serve answers GET path with a handler whose service fails with err.
func serve(t *testing.T, err error, path string) (answer, proxy.Outcome) {
	t.Helper()
	var outcome proxy.Outcome
	h := goproxy.New(goproxy.Options{Service: failing{err}, Observe: func(o proxy.Outcome, status int, bytes int64) { outcome = o }})
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", path, nil))
	ra := w.Header().Get("Retry-After")
	if ra != "" && ra != "30" {
		t.Errorf("%v: Retry-After %q, want 30", err, ra)
	}
	return answer{status: w.Code, body: strings.TrimSuffix(w.Body.String(), "\n"), retry: ra != ""}, outcome
}

// TestErrorAnswers: each domain error type has its class, and each class
// its answer, with the status, text and Retry-After clients got before
// the classes existed (except where noted).
func TestErrorAnswers(t *testing.T) {
	const (
		mod = "/example.com/a/@v/v1.0.0.mod"
		sdb = "/sumdb/sum.example/lookup/example.com/a@v1.0.0"
	)
	mismatch := &checksum.MismatchError{Module: "example.com/a", Version: "v1.0.0", File: "go.mod", Got: "h1:x", Want: "h1:y", DB: "sum.example"}
	for _, tc := range []struct {
		name  string
		err   error
		class errclass.Class
		path  string
		want  answer
	}{
		{"deny rule", &routing.DeniedError{Module: "example.com/a", Reason: "malware"}, errclass.Denied, mod,
			answer{403, "example.com/a is blocked by this proxy's policy: malware", false}},
		{"deny rule gone", &routing.DeniedError{Module: "example.com/a", Version: "v1.0.0", Gone: true, Reason: "leaked"}, errclass.Gone, mod,
			answer{410, "example.com/a@v1.0.0 is blocked by this proxy's policy: leaked", false}},
		{"negative cache", &proxy.NotFoundError{Key: "k", Msg: "gone upstream", Cached: true}, errclass.NotExist, mod,
			answer{404, "not found: gone upstream", false}},
		{"store not exist", fmt.Errorf("cache read after fill k: %w", iofs.ErrNotExist), errclass.NotExist, mod,
			answer{404, "not found: cache read after fill k: file does not exist", false}},
		{"upstream 404", &upstream.Error{Upstream: "https://up", Path: "p", Status: 404, Msg: "nope"}, errclass.NotExist, mod,
			answer{404, "not found: https://up/p: 404 Not Found: nope", false}},
		{"upstream 410", &upstream.Error{Upstream: "https://up", Path: "p", Status: 410}, errclass.NotExist, mod,
			answer{404, "not found: https://up/p: 410 Gone", false}},
		{"direct not found", &upstream.Error{Upstream: "direct", Path: "p", NotExist: true, Msg: "unknown revision"}, errclass.NotExist, mod,
			answer{404, "not found: direct/p: unknown revision", false}},
		{"invalid answer", &proxy.InvalidResponseError{Key: "k", Source: "https://up", Err: errors.New("not a JSON version info")}, errclass.Integrity, mod,
			answer{502, "upstream https://up answered k with invalid content: not a JSON version info", false}},
		{"mismatch", mismatch, errclass.Mismatch, mod,
			answer{502, "SECURITY: " + mismatch.Error(), false}},
		{"unknown to the database", &checksum.LookupError{Module: "example.com/a", Version: "v1.0.0", DB: "sum.example", NotFound: true, Err: errors.New("not found")}, errclass.Integrity, mod,
			answer{502, "verifying example.com/a@v1.0.0 with checksum database sum.example: not found", false}},
		{"database misbehaves", &checksum.LookupError{Module: "example.com/a", Version: "v1.0.0", DB: "sum.example", Err: fmt.Errorf("forked: %w", sumdb.ErrSecurity)}, errclass.Integrity, mod,
			answer{502, "verifying example.com/a@v1.0.0 with checksum database sum.example: forked: " + sumdb.ErrSecurity.Error(), false}},
		{"database unreachable", &checksum.LookupError{Module: "example.com/a", Version: "v1.0.0", DB: "sum.example", Err: errors.New("refused")}, errclass.Unavailable, mod,
			answer{502, "verifying example.com/a@v1.0.0 with checksum database sum.example: refused", true}},
		{"deadline", fmt.Errorf("waiting: %w", context.DeadlineExceeded), errclass.Timeout, mod,
			answer{504, "timed out: waiting: context deadline exceeded", true}},
		{"upstream deadline", &upstream.Error{Upstream: "https://up", Path: "p", Msg: "timed out", Timeout: true, Err: context.DeadlineExceeded}, errclass.Timeout, mod,
			answer{504, "timed out: https://up/p: timed out", true}},
		// Before: "https://up/p: timed out" (the prefix came only with a
		// context deadline in the chain); every timeout is now answered alike.
		{"upstream header timeout", &upstream.Error{Upstream: "https://up", Path: "p", Msg: "timed out", Timeout: true, Err: errors.New("timeout awaiting response headers")}, errclass.Timeout, mod,
			answer{504, "timed out: https://up/p: timed out", true}},
		{"upstream 403", &upstream.Error{Upstream: "https://up", Path: "p", Status: 403, Msg: "private"}, errclass.Denied, mod,
			answer{403, "https://up/p: 403 Forbidden: private", false}},
		{"upstream 400", &upstream.Error{Upstream: "https://up", Path: "p", Status: 400}, errclass.Invalid, mod,
			answer{404, "https://up/p: 400 Bad Request", false}},
		// Before: 404, as for module paths; invalid requests under /sumdb/
		// are 400 whoever finds them invalid.
		{"upstream 400 sumdb", &upstream.Error{Upstream: "https://up", Path: "p", Status: 400}, errclass.Invalid, sdb,
			answer{400, "https://up/p: 400 Bad Request", false}},
		{"upstream 500", &upstream.Error{Upstream: "https://up", Path: "p", Status: 500, Msg: "boom"}, errclass.Unavailable, mod,
			answer{502, "https://up/p: 500 Internal Server Error: boom", true}},
		{"breaker open", &upstream.Error{Upstream: "https://up", Path: "p", Msg: "circuit breaker open", BreakerOpen: true}, errclass.Unavailable, mod,
			answer{502, "https://up/p: circuit breaker open", true}},
		// Before: 500 "internal error". A full disk is this server's
		// temporary condition, said so, with the retry hint.
		{"store full", fmt.Errorf("put k: %w", &iofs.PathError{Op: "write", Path: "/cache/tmp/put-1", Err: syscall.ENOSPC}), errclass.StoreFull, mod,
			answer{503, "cache storage is full: the answer could not be stored; try again later", true}},
		{"store full under sumdb", &checksum.LookupError{Module: "example.com/a", Version: "v1.0.0", DB: "sum.example", Err: errors.New("flattened"), Cause: syscall.EDQUOT}, errclass.StoreFull, sdb,
			answer{503, "cache storage is full: the answer could not be stored; try again later", true}},
		{"internal", fmt.Errorf("cache read k: %w", errors.New("disk on fire")), errclass.Internal, mod,
			answer{500, "internal error", false}},
		{"canceled, client still there", context.Canceled, errclass.Internal, mod,
			answer{500, "internal error", false}},
	} {
		if got := errclass.Of(tc.err); got != tc.class {
			t.Errorf("%s: class %v, want %v", tc.name, got, tc.class)
		}
		if got, _ := serve(t, tc.err, tc.path); got != tc.want {
			t.Errorf("%s: answered %+v, want %+v", tc.name, got, tc.want)
		}
	}
	if _, o := serve(t, &proxy.NotFoundError{Msg: "x", Cached: true}, mod); o != proxy.Negative {
		t.Errorf("negative cache hit: outcome %q, want %q", o, proxy.Negative)
	}
}

// TestClassTable: every class has an answer, and only Internal and
// StoreFull hide the error's text (it names local paths).
func TestClassTable(t *testing.T) {
	want := map[errclass.Class][2]int{ // status outside and under /sumdb/
		errclass.Internal: {500, 500}, errclass.NotExist: {404, 404}, errclass.Invalid: {404, 400},
		errclass.Denied: {403, 403}, errclass.Gone: {410, 410}, errclass.Unavailable: {502, 502},
		errclass.Timeout: {504, 504}, errclass.Integrity: {502, 502}, errclass.Mismatch: {502, 502},
		errclass.StoreFull:       {503, 503},
		errclass.Unauthenticated: {401, 401},
	}
	if len(want) != errclass.NumClasses {
		t.Fatalf("the test lists %d classes, errclass has %d", len(want), errclass.NumClasses)
	}
	for c, st := range want {
		err := errclass.New(c, "text of "+c.String())
		for i, path := range []string{"/example.com/a/@v/list", "/sumdb/sum.example/latest"} {
			got, _ := serve(t, err, path)
			if got.status != st[i] || got.retry != c.Retry() || strings.Contains(got.body, "text of") == (c == errclass.Internal || c == errclass.StoreFull) {
				t.Errorf("%v at %s: %+v, want status %d, Retry-After %v", c, path, got, st[i], c.Retry())
			}
		}
	}
}

// TestParseErrors: invalid request paths are 404, under /sumdb/ 400.
func TestParseErrors(t *testing.T) {
	for path, status := range map[string]int{
		"/example.com/a/@v/v1.0.0.exe":     http.StatusNotFound,
		"/example.com/A/@v/list":           http.StatusNotFound,
		"/sumdb/sum.example/lookup/x":      http.StatusBadRequest,
		"/sumdb/sum.example/tile/8/0/1":    http.StatusBadRequest,
		"/sumdb/sum.example/no-such-thing": http.StatusBadRequest,
	} {
		if got, _ := serve(t, errors.New("not reached"), path); got.status != status || got.retry {
			t.Errorf("%s: %+v, want %d", path, got, status)
		}
	}
}

// TestClientGone: a request whose client went away is logged as 499.
func TestClientGone(t *testing.T) {
	var status int
	h := goproxy.New(goproxy.Options{Service: failing{fmt.Errorf("fill: %w", context.Canceled)}, Observe: func(o proxy.Outcome, s int, bytes int64) { status = s }})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/example.com/a/@v/list", nil).WithContext(ctx))
	if status != 499 {
		t.Errorf("status %d, want 499", status)
	}
}
