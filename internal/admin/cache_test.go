package admin_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/modproxy/modproxy/internal/admin"
	"github.com/modproxy/modproxy/internal/cacheadmin"
	"github.com/modproxy/modproxy/internal/gc"
	"github.com/modproxy/modproxy/internal/trash"
)

// TestDomainErrorClasses: the cache administration's error classes get
// their statuses, with the error's text (a purge that meets versions in
// use was a 500 before; it is a 409 that says to retry).
func TestDomainErrorClasses(t *testing.T) {
	for _, tc := range []struct {
		class error
		want  int
	}{
		{cacheadmin.ErrInvalid, http.StatusBadRequest},
		{cacheadmin.ErrNotFound, http.StatusNotFound},
		{cacheadmin.ErrConflict, http.StatusConflict},
		{cacheadmin.ErrUnavailable, http.StatusServiceUnavailable},
	} {
		f := newFake()
		f.err = fmt.Errorf("%w: 2 versions are being served or filled; purge again", tc.class)
		h := admin.New(admin.Options{Backend: f})
		w := do(t, h, "POST", "/api/purge", `{"module":"example.com/a","reason":"x"}`)
		if w.Code != tc.want {
			t.Errorf("%v: status %d, want %d", tc.class, w.Code, tc.want)
		}
		checkJSONHeaders(t, w)
		if msg := errorText(t, w); !strings.Contains(msg, "purge again") {
			t.Errorf("%v: error %q lacks the reason", tc.class, msg)
		}
		if ra := w.Header().Get("Retry-After"); (tc.want == http.StatusServiceUnavailable) != (ra != "") {
			t.Errorf("%v: Retry-After %q", tc.class, ra)
		}
	}
}

func jsonOf(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestDomainMapping: domain values become the wire JSON the API has
// always sent.
func TestDomainMapping(t *testing.T) {
	at := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	entry := &gc.Entry{Module: "example.com/a", Version: "v1.0.0", Bytes: 300, LastAccess: at, Stored: at, Hits: 4}
	for _, tc := range []struct {
		name string
		got  any
		want string
	}{
		{"empty plan", admin.GCPlanOf(gc.Plan{Created: at, StoreBytes: 1000}),
			`{"created":"2026-05-01T12:00:00Z","items":[],"bytes":0,"store_bytes":1000,"after_bytes":1000,"pinned_kept":0}`},
		{"plan", admin.GCPlanOf(gc.Plan{Created: at, Items: []gc.Item{{Entry: entry, Reason: "max-idle"}}, Bytes: 300, StoreBytes: 1000, PinnedKept: 2}),
			`{"created":"2026-05-01T12:00:00Z","items":[{"module":"example.com/a","version":"v1.0.0","bytes":300,"reason":"max-idle"}],"bytes":300,"store_bytes":1000,"after_bytes":700,"pinned_kept":2}`},
		{"gc result", admin.GCResultOf(gc.Result{Started: at, Finished: at, Evicted: []gc.Item{{Entry: entry}}, Bytes: 300, Skipped: []gc.Item{{Entry: entry}, {Entry: entry}}, TrashID: "t1"}),
			`{"started":"2026-05-01T12:00:00Z","finished":"2026-05-01T12:00:00Z","evicted":1,"bytes":300,"skipped":2,"trash_id":"t1"}`},
		{"no last gc", admin.LastGCOf(cacheadmin.Summary{}), `null`},
		{"store", admin.StoreStatsOf(cacheadmin.Summary{Bytes: 10, Objects: 3, Versions: 1, Policy: gc.Policy{MaxBytes: 99}}),
			`{"bytes":10,"objects":3,"versions":1,"cap_bytes":99}`},
		{"policy", admin.GCPolicyOf(cacheadmin.Summary{Interval: time.Hour, Policy: gc.Policy{MaxBytes: 99, MaxIdle: 2 * time.Hour, KeepNewest: 3, Pins: []string{"a"}}}),
			`{"interval":"1h0m0s","keep_newest":3,"max_idle":"2h0m0s","max_size":99,"pin_sets":null,"pins":["a"]}`},
		{"purge", admin.PurgeResultOf(cacheadmin.PurgeResult{Versions: []string{"v1.0.0"}, Bytes: 300, Blocked: true}),
			`{"versions":["v1.0.0"],"bytes":300,"blocked":true}`},
		{"no trash", admin.TrashOf(nil), `[]`},
		{"trash", admin.TrashOf([]trash.Manifest{{ID: "t1", Created: at, Reason: "gc", Versions: []string{"example.com/a@v1.0.0"}, Bytes: 300, Expires: at}}),
			`[{"id":"t1","created":"2026-05-01T12:00:00Z","reason":"gc","versions":["example.com/a@v1.0.0"],"bytes":300,"expires":"2026-05-01T12:00:00Z"}]`},
		{"restore", admin.RestoreResultOf(trash.Manifest{Versions: []string{"example.com/a@v1.0.0"}, Bytes: 300}),
			`{"restored":["example.com/a@v1.0.0"],"bytes":300}`},
		{"modules", admin.ModulesOf([]cacheadmin.Module{{Path: "example.com/a", Versions: []cacheadmin.Version{{Entry: entry, Pinned: true, ZipHash: "h1:z=", Files: []string{"mod", "zip"}}}}}),
			`[{"path":"example.com/a","versions":[{"version":"v1.0.0","bytes":300,"zip_hash":"h1:z=","stored":"2026-05-01T12:00:00Z","last_access":"2026-05-01T12:00:00Z","hits":4,"pinned":true,"files":["mod","zip"]}]}]`},
		{"module stats", admin.ModuleStatsOf([]cacheadmin.ModuleUsage{{Module: "example.com/a", Bytes: 300, Hits: 4, Versions: 1}}),
			`[{"module":"example.com/a","bytes":300,"hits":4,"versions":1}]`},
	} {
		if got := jsonOf(t, tc.got); got != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.name, got, tc.want)
		}
	}
	if got := (admin.PurgeRequest{Module: "m", Versions: "v", Reason: "r", Block: true, Hard: true}).Domain(); got != (cacheadmin.PurgeRequest{Module: "m", Versions: "v", Reason: "r", Block: true, Hard: true}) {
		t.Errorf("purge request %+v", got)
	}
	if got := (admin.PinRequest{Set: "s"}).Domain(); got != (cacheadmin.Pin{Set: "s"}) {
		t.Errorf("pin request %+v", got)
	}
}
