package admin_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modproxy/modproxy/internal/admin"
	"github.com/modproxy/modproxy/internal/audit"
)

const (
	testToken = "s3cret-Token-0123456789abcdef"
	base      = "http://127.0.0.1:3001" // Host of test requests: loopback
	clientIP  = "192.0.2.7"
)

// do serves one request through h.
func do(t *testing.T, h http.Handler, method, target, body string, hdr ...string) *httptest.ResponseRecorder {
	t.Helper()
	if !strings.HasPrefix(target, "http") {
		target = base + target
	}
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, target, r)
	req.RemoteAddr = clientIP + ":54321"
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i+1] == "" {
			req.Header.Del(hdr[i])
		} else {
			req.Header.Set(hdr[i], hdr[i+1])
		}
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w
}

func auth(tok string) []string { return []string{"Authorization", "Bearer " + tok} }

func decodeBody[T any](t *testing.T, w *httptest.ResponseRecorder) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(w.Body.Bytes(), &v); err != nil {
		t.Fatalf("response %d is not JSON: %v\n%s", w.Code, err, w.Body)
	}
	return v
}

func errorText(t *testing.T, w *httptest.ResponseRecorder) string {
	t.Helper()
	return decodeBody[struct {
		Error string `json:"error"`
	}](t, w).Error
}

func checkJSONHeaders(t *testing.T, w *httptest.ResponseRecorder) {
	t.Helper()
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	if cc := w.Header().Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store", cc)
	}
	if v := w.Header().Get("X-Content-Type-Options"); v != "nosniff" {
		t.Errorf("X-Content-Type-Options = %q, want nosniff", v)
	}
}

// ctx is a context for calling the fake directly.
var ctx = context.Background()

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func TestGetEndpoints(t *testing.T) {
	f := newFake()
	h := admin.New(admin.Options{Backend: f, Token: testToken})
	tests := []struct {
		path string
		want any
		got  func(*testing.T, *httptest.ResponseRecorder) any
	}{
		{"/api/status", must(f.Status(ctx)), func(t *testing.T, w *httptest.ResponseRecorder) any { return decodeBody[admin.Status](t, w) }},
		{"/api/upstreams", must(f.Upstreams(ctx)), func(t *testing.T, w *httptest.ResponseRecorder) any { return decodeBody[[]admin.Upstream](t, w) }},
		{"/api/stats", must(f.Stats(ctx)), func(t *testing.T, w *httptest.ResponseRecorder) any { return decodeBody[admin.Stats](t, w) }},
		{"/api/modules", must(f.Modules(ctx, "", 50)), func(t *testing.T, w *httptest.ResponseRecorder) any { return decodeBody[[]admin.Module](t, w) }},
		{"/api/gc/plan", must(f.GCPlan(ctx)), func(t *testing.T, w *httptest.ResponseRecorder) any { return decodeBody[admin.GCPlan](t, w) }},
		{"/api/trash", must(f.Trash(ctx)), func(t *testing.T, w *httptest.ResponseRecorder) any { return decodeBody[[]admin.TrashEntry](t, w) }},
		{"/api/pins", must(f.Pins(ctx)), func(t *testing.T, w *httptest.ResponseRecorder) any { return decodeBody[admin.Pins](t, w) }},
		{"/api/audit", must(f.Audit(ctx, admin.AuditQuery{})), func(t *testing.T, w *httptest.ResponseRecorder) any { return decodeBody[[]audit.Event](t, w) }},
		{"/api/clients", must(f.Clients(ctx)), func(t *testing.T, w *httptest.ResponseRecorder) any { return decodeBody[[]admin.ClientTraffic](t, w) }},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			w := do(t, h, "GET", tt.path, "", auth(testToken)...)
			if w.Code != http.StatusOK {
				t.Fatalf("status %d: %s", w.Code, w.Body)
			}
			checkJSONHeaders(t, w)
			got := tt.got(t, w)
			want := reflect.ValueOf(tt.want)
			// Pass want through JSON too, so both sides have the same time
			// representation.
			b, _ := json.Marshal(want.Interface())
			wantRT := reflect.New(reflect.TypeOf(got))
			if err := json.Unmarshal(b, wantRT.Interface()); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, wantRT.Elem().Interface()) {
				t.Errorf("got  %+v\nwant %+v", got, wantRT.Elem().Interface())
			}

			// HEAD is answered like GET, without a body.
			w = do(t, h, "HEAD", tt.path, "", auth(testToken)...)
			if w.Code != http.StatusOK {
				t.Errorf("HEAD: status %d", w.Code)
			}
		})
	}
}

// emptyBackend returns nil slices everywhere.
type emptyBackend struct{ *fakeBackend }

func (emptyBackend) Upstreams(context.Context) ([]admin.Upstream, error)            { return nil, nil }
func (emptyBackend) Modules(context.Context, string, int) ([]admin.Module, error)   { return nil, nil }
func (emptyBackend) Trash(context.Context) ([]admin.TrashEntry, error)              { return nil, nil }
func (emptyBackend) Pins(context.Context) (admin.Pins, error)                       { return admin.Pins{}, nil }
func (emptyBackend) Audit(context.Context, admin.AuditQuery) ([]audit.Event, error) { return nil, nil }

func TestEmptyListsAreArrays(t *testing.T) {
	h := admin.New(admin.Options{Backend: emptyBackend{newFake()}})
	for path, want := range map[string]string{
		"/api/upstreams": "[]",
		"/api/modules":   "[]",
		"/api/trash":     "[]",
		"/api/audit":     "[]",
		"/api/pins":      `{"patterns":[],"sets":[]}`,
	} {
		w := do(t, h, "GET", path, "")
		if got := strings.TrimSpace(w.Body.String()); w.Code != 200 || got != want {
			t.Errorf("%s: %d %s, want %s", path, w.Code, got, want)
		}
	}
}

func TestModulesQuery(t *testing.T) {
	f := newFake()
	h := admin.New(admin.Options{Backend: f})
	w := do(t, h, "GET", "/api/modules?q=+golang.org/x/+&limit=7", "")
	if w.Code != 200 {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	if f.lastQ != "golang.org/x/" || f.lastLim != 7 {
		t.Errorf("backend got q=%q limit=%d", f.lastQ, f.lastLim)
	}
	mods := decodeBody[[]admin.Module](t, w)
	if len(mods) != 1 || mods[0].Path != "golang.org/x/tools" {
		t.Errorf("modules = %+v", mods)
	}
	do(t, h, "GET", "/api/modules", "")
	if f.lastQ != "" || f.lastLim != 50 {
		t.Errorf("defaults: backend got q=%q limit=%d, want \"\" and 50", f.lastQ, f.lastLim)
	}
	for _, bad := range []string{"0", "-1", "abc", "1001", "1.5"} {
		w := do(t, h, "GET", "/api/modules?limit="+bad, "")
		if w.Code != http.StatusBadRequest || !strings.Contains(errorText(t, w), "limit") {
			t.Errorf("limit=%s: %d %s, want 400 naming limit", bad, w.Code, w.Body)
		}
	}
}

func TestAuditQuery(t *testing.T) {
	f := newFake()
	h := admin.New(admin.Options{Backend: f})
	w := do(t, h, "GET", "/api/audit?action=purge&actor=admin&target=leaky&since=2024-05-01T00:00:00Z&until=2024-05-02T12:30:00.5%2B02:00&limit=5", "")
	if w.Code != 200 {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	want := admin.AuditQuery{
		Action: "purge", Actor: "admin", Target: "leaky",
		Since: time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC),
		Until: time.Date(2024, 5, 2, 10, 30, 0, 5e8, time.UTC),
		Limit: 5,
	}
	got := f.lastAQ
	if got.Action != want.Action || got.Actor != want.Actor || got.Target != want.Target ||
		!got.Since.Equal(want.Since) || !got.Until.Equal(want.Until) || got.Limit != want.Limit {
		t.Errorf("backend got %+v\nwant %+v", got, want)
	}
	if len(decodeBody[[]audit.Event](t, w)) != 3 {
		t.Errorf("events: %s", w.Body)
	}

	do(t, h, "GET", "/api/audit", "")
	if f.lastAQ.Limit != 100 || !f.lastAQ.Since.IsZero() || !f.lastAQ.Until.IsZero() {
		t.Errorf("defaults: %+v", f.lastAQ)
	}

	for _, q := range []string{
		"since=yesterday", "until=2024-05-01", "since=2024-05-01%2000:00:00",
		"since=2024-05-02T00:00:00Z&until=2024-05-01T00:00:00Z",
		"limit=0", "limit=x", "limit=10001",
	} {
		w := do(t, h, "GET", "/api/audit?"+q, "")
		if w.Code != http.StatusBadRequest {
			t.Errorf("%s: %d %s, want 400", q, w.Code, w.Body)
		}
		checkJSONHeaders(t, w)
	}
}

func TestMutations(t *testing.T) {
	actor := "admin@" + clientIP
	tests := []struct {
		name, method, path, body string
		wantCall                 call
		wantBody                 string // substring
	}{
		{"gc run", "POST", "/api/gc/run", "", call{"GCRun", actor, nil}, `"evicted":2`},
		{"purge", "POST", "/api/purge",
			`{"module":" example.com/leaky ","versions":">=v1.0.0 <v1.2.0","reason":"leaked a key","block":true,"hard":true}`,
			call{"Purge", actor, admin.PurgeRequest{Module: "example.com/leaky", Versions: ">=v1.0.0 <v1.2.0", Reason: "leaked a key", Block: true, Hard: true}},
			`"blocked":true`},
		{"purge all versions", "POST", "/api/purge", `{"module":"example.com/old","reason":"unused"}`,
			call{"Purge", actor, admin.PurgeRequest{Module: "example.com/old", Reason: "unused"}}, `"trash_id":"purge-1"`},
		{"restore", "POST", "/api/trash/restore", `{"id":"gc-20240501-1"}`, call{"Restore", actor, "gc-20240501-1"}, `"restored":["github.com/aws/aws-sdk-go@v1.39.0"]`},
		{"add pin pattern", "POST", "/api/pins", `{"pattern":"example.com/keep/*"}`, call{"AddPin", actor, admin.PinRequest{Pattern: "example.com/keep/*"}}, `"ok":true`},
		{"add pin set", "POST", "/api/pins", `{"set":"/srv/b/go.sum"}`, call{"AddPin", actor, admin.PinRequest{Set: "/srv/b/go.sum"}}, `"ok":true`},
		{"remove pin", "DELETE", "/api/pins", `{"pattern":"example.com/keep/*"}`, call{"RemovePin", actor, admin.PinRequest{Pattern: "example.com/keep/*"}}, `"ok":true`},
		{"offline on", "POST", "/api/offline", `{"on":true}`, call{"SetOffline", actor, true}, `{"offline":true}`},
		{"offline off", "POST", "/api/offline", `{"on":false}`, call{"SetOffline", actor, false}, `{"offline":false}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake()
			var logs bytes.Buffer
			h := admin.New(admin.Options{Backend: f, Token: testToken, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			w := do(t, h, tt.method, tt.path, tt.body, auth(testToken)...)
			if w.Code != http.StatusOK {
				t.Fatalf("status %d: %s", w.Code, w.Body)
			}
			checkJSONHeaders(t, w)
			if !strings.Contains(w.Body.String(), tt.wantBody) {
				t.Errorf("body %s does not contain %s", w.Body, tt.wantBody)
			}
			calls := f.Calls()
			if len(calls) != 1 || !reflect.DeepEqual(calls[0], tt.wantCall) {
				t.Errorf("backend calls = %+v, want [%+v]", calls, tt.wantCall)
			}
			if !strings.Contains(logs.String(), "actor="+actor) {
				t.Errorf("admin action not logged with its actor:\n%s", logs.String())
			}
		})
	}
	// The offline switch shows in the status.
	f := newFake()
	h := admin.New(admin.Options{Backend: f})
	do(t, h, "POST", "/api/offline", `{"on":true}`)
	if st := decodeBody[admin.Status](t, do(t, h, "GET", "/api/status", "")); !st.Offline {
		t.Error("status does not report offline after POST /api/offline")
	}
}

func TestBadInput(t *testing.T) {
	tests := []struct {
		name, method, path, body string
		contentType              string // "-": none
		want                     int
		msg                      string // substring of the error
	}{
		{"purge without reason", "POST", "/api/purge", `{"module":"example.com/a"}`, "", 400, "reason is required"},
		{"purge blank reason", "POST", "/api/purge", `{"module":"example.com/a","reason":"  \t"}`, "", 400, "reason is required"},
		{"purge without module", "POST", "/api/purge", `{"reason":"x"}`, "", 400, "module is required"},
		{"purge empty body", "POST", "/api/purge", ``, "", 400, "body required"},
		{"purge bad JSON", "POST", "/api/purge", `{"module":`, "", 400, "invalid JSON"},
		{"purge not an object", "POST", "/api/purge", `["example.com/a"]`, "", 400, "invalid JSON"},
		{"purge wrong type", "POST", "/api/purge", `{"module":"example.com/a","reason":"x","hard":"yes"}`, "", 400, "invalid JSON"},
		{"purge unknown field", "POST", "/api/purge", `{"module":"example.com/a","reson":"typo"}`, "", 400, "reson"},
		{"purge two objects", "POST", "/api/purge", `{"module":"example.com/a","reason":"x"} {}`, "", 400, "one object"},
		{"purge trailing garbage", "POST", "/api/purge", `{"module":"example.com/a","reason":"x"}xyz`, "", 400, "invalid JSON"},
		{"purge form post", "POST", "/api/purge", `module=example.com/a&reason=x`, "application/x-www-form-urlencoded", 415, "application/json"},
		{"purge text/plain", "POST", "/api/purge", `{"module":"example.com/a","reason":"x"}`, "text/plain", 415, "application/json"},
		{"purge huge body", "POST", "/api/purge", `{"module":"example.com/a","reason":"` + strings.Repeat("x", 2<<20) + `"}`, "", 413, "larger than"},
		{"restore without id", "POST", "/api/trash/restore", `{}`, "", 400, "id is required"},
		{"restore blank id", "POST", "/api/trash/restore", `{"id":" "}`, "", 400, "id is required"},
		{"pin neither", "POST", "/api/pins", `{}`, "", 400, "exactly one"},
		{"pin both", "POST", "/api/pins", `{"pattern":"a/*","set":"/x/go.sum"}`, "", 400, "exactly one"},
		{"unpin neither", "DELETE", "/api/pins", `{"pattern":""}`, "", 400, "exactly one"},
		{"offline missing on", "POST", "/api/offline", `{}`, "", 400, `"on"`},
		{"offline null", "POST", "/api/offline", `{"on":null}`, "", 400, `"on"`},
		{"offline string", "POST", "/api/offline", `{"on":"yes"}`, "", 400, "invalid JSON"},
		{"offline no body", "POST", "/api/offline", ``, "-", 400, "body required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake()
			h := admin.New(admin.Options{Backend: f})
			var hdr []string
			switch tt.contentType {
			case "":
			case "-":
				hdr = []string{"Content-Type", ""}
			default:
				hdr = []string{"Content-Type", tt.contentType}
			}
			w := do(t, h, tt.method, tt.path, tt.body, hdr...)
			if w.Code != tt.want {
				t.Fatalf("status %d, want %d: %s", w.Code, tt.want, w.Body)
			}
			checkJSONHeaders(t, w)
			if msg := errorText(t, w); !strings.Contains(msg, tt.msg) {
				t.Errorf("error %q does not contain %q", msg, tt.msg)
			}
			if calls := f.Calls(); len(calls) != 0 {
				t.Errorf("backend was called: %+v", calls)
			}
		})
	}
}

func TestBackendErrors(t *testing.T) {
	// Errors the backend classifies.
	h := admin.New(admin.Options{Backend: newFake()})
	for _, tt := range []struct {
		method, path, body string
		want               int
		msg                string
	}{
		{"POST", "/api/purge", `{"module":"example.com/a","versions":"not-a-range","reason":"x"}`, 400, `invalid version range "not-a-range"`},
		{"POST", "/api/purge", `{"module":"example.com/unknown","reason":"x"}`, 404, "example.com/unknown is not cached"},
		{"POST", "/api/trash/restore", `{"id":"nope"}`, 404, `trash batch "nope"`},
		{"DELETE", "/api/pins", `{"pattern":"example.com/nope"}`, 404, "no pin"},
	} {
		w := do(t, h, tt.method, tt.path, tt.body)
		if w.Code != tt.want || !strings.Contains(errorText(t, w), tt.msg) {
			t.Errorf("%s %s %s: %d %s, want %d with %q", tt.method, tt.path, tt.body, w.Code, w.Body, tt.want, tt.msg)
		}
	}

	// Any other error: 500, logged, with a generic message.
	routes := []struct{ method, path, body string }{
		{"GET", "/api/status", ""}, {"GET", "/api/upstreams", ""}, {"GET", "/api/stats", ""},
		{"GET", "/api/modules?q=x", ""}, {"GET", "/api/gc/plan", ""}, {"POST", "/api/gc/run", ""},
		{"POST", "/api/purge", `{"module":"example.com/a","reason":"x"}`}, {"GET", "/api/trash", ""},
		{"POST", "/api/trash/restore", `{"id":"gc-20240501-1"}`}, {"GET", "/api/pins", ""},
		{"POST", "/api/pins", `{"pattern":"a/*"}`}, {"DELETE", "/api/pins", `{"pattern":"a/*"}`},
		{"GET", "/api/audit", ""}, {"POST", "/api/offline", `{"on":true}`},
	}
	for _, tt := range routes {
		f := newFake()
		f.err = fmt.Errorf("index: %w", errBoom)
		var logs bytes.Buffer
		h := admin.New(admin.Options{Backend: f, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
		w := do(t, h, tt.method, tt.path, tt.body)
		if w.Code != http.StatusInternalServerError {
			t.Errorf("%s %s: status %d, want 500", tt.method, tt.path, w.Code)
			continue
		}
		checkJSONHeaders(t, w)
		if strings.Contains(w.Body.String(), "secret detail") || !strings.Contains(errorText(t, w), "internal error") {
			t.Errorf("%s %s: body %s, want a generic message", tt.method, tt.path, w.Body)
		}
		if !strings.Contains(logs.String(), "level=ERROR") || !strings.Contains(logs.String(), "secret detail") {
			t.Errorf("%s %s: error not logged:\n%s", tt.method, tt.path, logs.String())
		}
	}
}

func TestMethods(t *testing.T) {
	f := newFake()
	h := admin.New(admin.Options{Backend: f, Token: testToken})
	for _, tt := range []struct{ method, path, allow string }{
		{"POST", "/api/status", "GET, HEAD"},
		{"DELETE", "/api/upstreams", "GET, HEAD"},
		{"PUT", "/api/stats", "GET, HEAD"},
		{"POST", "/api/modules", "GET, HEAD"},
		{"POST", "/api/gc/plan", "GET, HEAD"},
		{"GET", "/api/gc/run", "POST"},
		{"GET", "/api/purge", "POST"},
		{"DELETE", "/api/purge", "POST"},
		{"POST", "/api/trash", "GET, HEAD"},
		{"GET", "/api/trash/restore", "POST"},
		{"PUT", "/api/pins", "GET, HEAD, POST, DELETE"},
		{"PATCH", "/api/pins", "GET, HEAD, POST, DELETE"},
		{"POST", "/api/audit", "GET, HEAD"},
		{"GET", "/api/offline", "POST"},
		{"OPTIONS", "/api/purge", "POST"},
	} {
		w := do(t, h, tt.method, tt.path, "", auth(testToken)...)
		if w.Code != http.StatusMethodNotAllowed || w.Header().Get("Allow") != tt.allow {
			t.Errorf("%s %s: %d Allow %q, want 405 Allow %q", tt.method, tt.path, w.Code, w.Header().Get("Allow"), tt.allow)
		}
		checkJSONHeaders(t, w)
	}
	if calls := f.Calls(); len(calls) != 0 {
		t.Errorf("backend was called: %+v", calls)
	}
	for _, p := range []string{"/api/", "/api/nope", "/api/gc", "/api/status/extra"} {
		if w := do(t, h, "GET", p, "", auth(testToken)...); w.Code != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", p, w.Code)
		}
	}
	// The page and static files are GET/HEAD only.
	for _, p := range []string{"/", "/static/app.js"} {
		w := do(t, h, "POST", p, "")
		if w.Code != http.StatusMethodNotAllowed || w.Header().Get("Allow") != "GET, HEAD" {
			t.Errorf("POST %s: %d Allow %q", p, w.Code, w.Header().Get("Allow"))
		}
	}
}

// apiRoutes lists every route with a valid request.
var apiRoutes = []struct{ method, path, body string }{
	{"GET", "/api/status", ""},
	{"GET", "/api/upstreams", ""},
	{"GET", "/api/stats", ""},
	{"GET", "/api/modules?q=golang.org&limit=3", ""},
	{"GET", "/api/gc/plan", ""},
	{"POST", "/api/gc/run", ""},
	{"POST", "/api/purge", `{"module":"example.com/a","reason":"test"}`},
	{"GET", "/api/trash", ""},
	{"POST", "/api/trash/restore", `{"id":"gc-20240501-1"}`},
	{"GET", "/api/pins", ""},
	{"POST", "/api/pins", `{"pattern":"example.com/*"}`},
	{"DELETE", "/api/pins", `{"pattern":"example.com/*"}`},
	{"GET", "/api/audit?action=purge", ""},
	{"POST", "/api/offline", `{"on":true}`},
}

func TestAuth(t *testing.T) {
	f := newFake()
	h := admin.New(admin.Options{Backend: f, Token: testToken})
	wrong := []struct {
		name    string
		hdr     []string
		invalid bool // error="invalid_token" in the challenge
	}{
		{"missing", nil, false},
		{"empty bearer", []string{"Authorization", "Bearer "}, true},
		{"wrong token", auth("wrong"), true},
		{"prefix of token", auth(testToken[:len(testToken)-1]), true},
		{"token plus a byte", auth(testToken + "x"), true},
		{"other case", auth(strings.ToUpper(testToken)), true},
		{"basic scheme", []string{"Authorization", "Basic " + testToken}, true},
		{"no scheme", []string{"Authorization", testToken}, true},
		{"token in another header", []string{"X-Token", testToken}, false},
		{"token in the query", nil, false},
	}
	for _, rt := range apiRoutes {
		for _, wt := range wrong {
			path := rt.path
			if wt.name == "token in the query" {
				path += map[bool]string{true: "&", false: "?"}[strings.Contains(path, "?")] + "token=" + testToken
			}
			w := do(t, h, rt.method, path, rt.body, wt.hdr...)
			if w.Code != http.StatusUnauthorized {
				t.Errorf("%s %s, %s: status %d, want 401", rt.method, rt.path, wt.name, w.Code)
				continue
			}
			checkJSONHeaders(t, w)
			challenge := w.Header().Get("WWW-Authenticate")
			if !strings.HasPrefix(challenge, `Bearer realm="modproxy admin"`) ||
				strings.Contains(challenge, "invalid_token") != wt.invalid {
				t.Errorf("%s %s, %s: WWW-Authenticate %q", rt.method, rt.path, wt.name, challenge)
			}
		}
	}
	if calls := f.Calls(); len(calls) != 0 {
		t.Fatalf("backend was called without a valid token: %+v", calls)
	}

	// The right token, in any scheme case, with surrounding spaces.
	for _, hdr := range [][]string{auth(testToken), {"Authorization", "bearer " + testToken}, {"Authorization", "BEARER  " + testToken + " "}} {
		for _, rt := range apiRoutes {
			if w := do(t, h, rt.method, rt.path, rt.body, hdr...); w.Code != http.StatusOK {
				t.Errorf("%s %s with %q: status %d: %s", rt.method, rt.path, hdr[1], w.Code, w.Body)
			}
		}
	}
	if n := len(f.Calls()); n != 3*6 { // six mutating routes, three headers
		t.Errorf("%d mutating backend calls, want %d", n, 3*6)
	}

	// Unknown API paths need the token too: nothing about the API leaks.
	if w := do(t, h, "GET", "/api/nope", ""); w.Code != http.StatusUnauthorized {
		t.Errorf("GET /api/nope without token: %d, want 401", w.Code)
	}

	// The page, its files, /healthz and /metrics load without the token.
	hm := admin.New(admin.Options{Backend: f, Token: testToken, Metrics: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "modproxy_up 1\n")
	})})
	for _, p := range []string{"/", "/static/app.js", "/static/style.css", "/static/favicon.svg", "/healthz", "/metrics"} {
		if w := do(t, hm, "GET", p, ""); w.Code != http.StatusOK {
			t.Errorf("GET %s without token: %d, want 200", p, w.Code)
		}
	}
}

// TestConstantTimeCompare checks, on the source, that the token is only
// ever compared with crypto/subtle: the handler keeps nothing but the
// token's hash, and authorized compares with subtle.ConstantTimeCompare
// and no == or != on the token. (Timing itself is not asserted: tests make
// no timing assertions.)
func TestConstantTimeCompare(t *testing.T) {
	fset := token.NewFileSet()
	var authorized *ast.FuncDecl
	var handlerType *ast.StructType
	for _, name := range []string{"admin.go", "auth.go"} {
		file, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(file, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.FuncDecl:
				if n.Name.Name == "isAdminToken" {
					authorized = n
				}
			case *ast.TypeSpec:
				if st, ok := n.Type.(*ast.StructType); ok && n.Name.Name == "handler" {
					handlerType = st
				}
			}
			return true
		})
	}
	if authorized == nil || handlerType == nil {
		t.Fatal("auth.go has no func isAdminToken or admin.go no type handler")
	}
	for _, fld := range handlerType.Fields.List {
		for _, name := range fld.Names {
			typ, ok := fld.Type.(*ast.Ident)
			if ok && typ.Name == "string" && strings.Contains(strings.ToLower(name.Name), "token") {
				t.Errorf("handler keeps the token as a string field %s; keep only its hash", name.Name)
			}
		}
	}
	calls := false
	ast.Inspect(authorized.Body, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.CallExpr:
			if sel, ok := n.Fun.(*ast.SelectorExpr); ok {
				if x, ok := sel.X.(*ast.Ident); ok && x.Name == "subtle" && sel.Sel.Name == "ConstantTimeCompare" {
					calls = true
				}
			}
		case *ast.BinaryExpr:
			if n.Op != token.EQL && n.Op != token.NEQ {
				return true
			}
			// Allowed: comparing ConstantTimeCompare's int result.
			if lit, ok := n.Y.(*ast.BasicLit); ok && lit.Kind == token.INT {
				return true
			}
			t.Errorf("%s: isAdminToken compares with %s; use subtle.ConstantTimeCompare", fset.Position(n.Pos()), n.Op)
		}
		return true
	})
	if !calls {
		t.Error("isAdminToken does not call subtle.ConstantTimeCompare")
	}
}

func TestRequireToken(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:3001":            false,
		"127.0.0.2:3001":            false,
		"[::1]:3001":                false,
		"localhost:3001":            false,
		"LOCALHOST:3001":            false,
		"127.0.0.1":                 false,
		"::1":                       false,
		"[::1]":                     false,
		"[::ffff:127.0.0.1]:1":      false,
		":3001":                     true,
		"0.0.0.0:3001":              true,
		"[::]:3001":                 true,
		"10.0.0.5:3001":             true,
		"192.168.1.2":               true,
		"admin.example:80":          true,
		"localhost.evil.example:80": true,
		"":                          true,
	} {
		if got := admin.RequireToken(addr); got != want {
			t.Errorf("RequireToken(%q) = %v, want %v", addr, got, want)
		}
	}
}

func TestPage(t *testing.T) {
	h := admin.New(admin.Options{Backend: newFake(), Token: testToken})
	w := do(t, h, "GET", "/", "")
	if w.Code != 200 {
		t.Fatalf("GET /: %d", w.Code)
	}
	hdr := w.Header()
	for k, want := range map[string]string{
		"Content-Type":           "text/html; charset=utf-8",
		"X-Frame-Options":        "DENY",
		"X-Content-Type-Options": "nosniff",
		"Referrer-Policy":        "no-referrer",
	} {
		if got := hdr.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	csp := hdr.Get("Content-Security-Policy")
	for _, d := range []string{"default-src 'self'", "script-src 'self'", "frame-ancestors 'none'"} {
		if !strings.Contains(csp, d) {
			t.Errorf("Content-Security-Policy %q lacks %q", csp, d)
		}
	}
	if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
		t.Errorf("Content-Security-Policy %q allows inline code", csp)
	}
	page := w.Body.String()
	for _, ref := range []string{`src="/static/app.js"`, `href="/static/style.css"`} {
		if !strings.Contains(page, ref) {
			t.Errorf("page does not reference %s", ref)
		}
	}
	// No inline script or style: the CSP would block them.
	if regexp.MustCompile(`<script>|<style|\sstyle=|\son[a-z]+=`).MatchString(page) {
		t.Error("page has inline script, style or event handler attributes")
	}

	// Every static file: its type, no external resources (works offline,
	// no CDN), revalidation with the ETag.
	for name, ct := range map[string]string{
		"app.js":      "text/javascript; charset=utf-8",
		"style.css":   "text/css; charset=utf-8",
		"favicon.svg": "image/svg+xml",
	} {
		w := do(t, h, "GET", "/static/"+name, "")
		if w.Code != 200 || w.Header().Get("Content-Type") != ct {
			t.Errorf("%s: %d %q, want 200 %q", name, w.Code, w.Header().Get("Content-Type"), ct)
		}
		etag := w.Header().Get("ETag")
		if w := do(t, h, "GET", "/static/"+name, "", "If-None-Match", etag); etag == "" || w.Code != http.StatusNotModified {
			t.Errorf("%s: If-None-Match %q: %d, want 304", name, etag, w.Code)
		}
	}
	for _, name := range []string{"index.html", "app.js", "style.css", "favicon.svg"} {
		b, err := os.ReadFile("web/" + name)
		if err != nil {
			t.Fatal(err)
		}
		s := strings.ReplaceAll(string(b), "http://www.w3.org/2000/svg", "") // an XML namespace name, never fetched
		if m := regexp.MustCompile(`(?i)(https?:)?//[a-z0-9.-]+\.[a-z]{2,}`).FindString(s); m != "" {
			t.Errorf("web/%s refers to an external resource %q", name, m)
		}
	}
	for _, p := range []string{"/static/", "/static/nope.js", "/static/index.html", "/index.html", "/nope", "/static/web/app.js"} {
		if w := do(t, h, "GET", p, ""); w.Code != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", p, w.Code)
		}
	}
}

func TestCrossOriginRefused(t *testing.T) {
	for _, tok := range []string{"", testToken} {
		f := newFake()
		h := admin.New(admin.Options{Backend: f, Token: tok})
		a := auth(tok)
		if tok == "" {
			a = nil
		}
		for _, hdr := range [][]string{
			{"Sec-Fetch-Site", "cross-site"},
			{"Sec-Fetch-Site", "same-site"},
			{"Origin", "http://evil.example"},
		} {
			w := do(t, h, "POST", "/api/purge", `{"module":"example.com/a","reason":"csrf"}`, append(hdr, a...)...)
			if w.Code != http.StatusForbidden {
				t.Errorf("token %q, %v: status %d, want 403", tok, hdr, w.Code)
			}
		}
		if calls := f.Calls(); len(calls) != 0 {
			t.Errorf("backend was called by a cross-origin request: %+v", calls)
		}
		// Same-origin requests from the dashboard pass.
		w := do(t, h, "POST", "/api/gc/run", "", append([]string{"Sec-Fetch-Site", "same-origin", "Origin", base}, a...)...)
		if w.Code != http.StatusOK {
			t.Errorf("token %q, same origin: %d %s", tok, w.Code, w.Body)
		}
		// Reading across origins is not a state change; CORS keeps the
		// answer from the other page anyway.
		if w := do(t, h, "GET", "/api/status", "", append([]string{"Sec-Fetch-Site", "cross-site"}, a...)...); w.Code != http.StatusOK {
			t.Errorf("token %q, cross-site GET: %d", tok, w.Code)
		}
	}
}

func TestHostWithoutToken(t *testing.T) {
	h := admin.New(admin.Options{Backend: newFake()})
	for host, want := range map[string]int{
		"127.0.0.1:3001":      200,
		"[::1]:3001":          200,
		"localhost:3001":      200,
		"localhost":           200,
		"app.localhost:3001":  200,
		"10.1.2.3":            200,
		"rebind.example:3001": 403,
		"evil.example":        403,
	} {
		w := do(t, h, "GET", "http://"+host+"/api/status", "")
		if w.Code != want {
			t.Errorf("Host %s: %d, want %d", host, w.Code, want)
		}
	}
	// The page itself loads; with a token any host name is fine.
	if w := do(t, h, "GET", "http://evil.example/", ""); w.Code != 200 {
		t.Errorf("page: %d", w.Code)
	}
	ht := admin.New(admin.Options{Backend: newFake(), Token: testToken})
	if w := do(t, ht, "GET", "http://admin.example:8443/api/status", "", auth(testToken)...); w.Code != 200 {
		t.Errorf("with token, named host: %d", w.Code)
	}
}

func TestHealthzAndMetrics(t *testing.T) {
	h := admin.New(admin.Options{Backend: newFake(), Token: testToken})
	w := do(t, h, "GET", "/healthz", "")
	if w.Code != 200 || w.Body.String() != "ok\n" {
		t.Errorf("/healthz: %d %q", w.Code, w.Body)
	}
	if w := do(t, h, "GET", "/metrics", ""); w.Code != http.StatusNotFound {
		t.Errorf("/metrics without Options.Metrics: %d, want 404", w.Code)
	}
	hm := admin.New(admin.Options{Backend: newFake(), Metrics: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "modproxy_up 1\n")
	})})
	if w := do(t, hm, "GET", "/metrics", ""); w.Code != 200 || w.Body.String() != "modproxy_up 1\n" {
		t.Errorf("/metrics: %d %q", w.Code, w.Body)
	}
}

func TestNilBackendPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("New without a Backend did not panic")
		}
	}()
	admin.New(admin.Options{})
}

// TestServerConcurrent drives a real server with concurrent clients (for
// the race detector) and checks the body limit over a real connection.
func TestServerConcurrent(t *testing.T) {
	f := newFake()
	srv := httptest.NewServer(admin.New(admin.Options{Backend: f, Token: testToken}))
	defer srv.Close()
	client := srv.Client()
	send := func(method, path, body string) (int, error) {
		var r io.Reader
		if body != "" {
			r = strings.NewReader(body)
		}
		req, err := http.NewRequest(method, srv.URL+path, r)
		if err != nil {
			return 0, err
		}
		req.Header.Set("Authorization", "Bearer "+testToken)
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		io.Copy(io.Discard, resp.Body)
		return resp.StatusCode, nil
	}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for _, rt := range apiRoutes {
				if code, err := send(rt.method, rt.path, rt.body); err != nil || code != 200 {
					t.Errorf("client %d: %s %s: %d %v", i, rt.method, rt.path, code, err)
				}
			}
		})
	}
	wg.Wait()
	big := `{"module":"example.com/a","reason":"` + strings.Repeat("x", 3<<20) + `"}`
	if code, err := send("POST", "/api/purge", big); err != nil || code != http.StatusRequestEntityTooLarge {
		t.Errorf("3 MiB body: %d %v, want 413", code, err)
	}
}
