package goproxy_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/modproxy/modproxy/internal/accesslog"
	"github.com/modproxy/modproxy/internal/metrics"
)

// serve answers one request in process, from remote, and returns the
// status and body.
func (f *fixture) serve(t *testing.T, method, path, remote string) (int, []byte) {
	t.Helper()
	req := httptest.NewRequest(method, path, nil)
	req.RemoteAddr = remote
	rec := httptest.NewRecorder()
	f.h.ServeHTTP(rec, req)
	return rec.Code, rec.Body.Bytes()
}

// TestAccessLog checks the access-log lines of a miss, a hit from memory,
// a not-found answer and a HEAD, field by field, for the app's handler
// (accesslog.Handler) and a plain slog handler alike, and the client
// address in "remote".
func TestAccessLog(t *testing.T) {
	for name, newHandler := range map[string]func(*bytes.Buffer) slog.Handler{
		"accesslog": func(b *bytes.Buffer) slog.Handler { return accesslog.NewHandler(b, accesslog.JSON, nil) },
		"slog":      func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, nil) },
	} {
		t.Run(name, func(t *testing.T) {
			var out bytes.Buffer
			f := newFixtureWith(t, slog.New(newHandler(&out)).With("namespace", "corp"), nil)
			type want struct {
				method, path, cache, remote string
				status                      int
			}
			var wants []want
			var sizes []int
			for _, r := range []struct{ method, path, remote, wantRemote, cache string }{
				{"GET", "/example.com/a/@v/v1.0.0.info", "192.0.2.7:4321", "192.0.2.7", "miss"},
				{"GET", "/example.com/a/@v/v1.0.0.info", "[2001:db8::1]:5555", "2001:db8::1", "hit"},
				{"HEAD", "/example.com/a/@v/v1.0.0.mod", "192.0.2.8:1", "192.0.2.8", "miss"},
				{"GET", "/example.com/nope/@v/v1.0.0.info", "no-port", "no-port", ""},
			} {
				code, body := f.serve(t, r.method, r.path, r.remote)
				wants = append(wants, want{r.method, r.path, r.cache, r.wantRemote, code})
				sizes = append(sizes, len(body))
			}
			lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
			var got []map[string]any
			for _, l := range lines {
				var m map[string]any
				if err := json.Unmarshal([]byte(l), &m); err != nil {
					t.Fatalf("line %q: %v", l, err)
				}
				if m["msg"] == "request" {
					got = append(got, m)
				}
			}
			if len(got) != len(wants) {
				t.Fatalf("%d access-log lines, want %d:\n%s", len(got), len(wants), out.String())
			}
			for i, w := range wants {
				g := got[i]
				cache, _ := g["cache"].(string)
				if g["method"] != w.method || g["path"] != w.path || g["status"] != float64(w.status) || cache != w.cache ||
					g["remote"] != w.remote || g["bytes"] != float64(sizes[i]) || g["namespace"] != "corp" || g["level"] != "INFO" {
					t.Errorf("line %d: %v, want %+v and %d bytes", i, g, w, sizes[i])
				}
				if d, ok := g["duration"].(float64); !ok || d < 0 {
					t.Errorf("line %d: duration %v", i, g["duration"])
				}
			}
			if wants[0].status != http.StatusOK || wants[3].status != http.StatusNotFound {
				t.Errorf("statuses %+v", wants)
			}
		})
	}
}

// TestRequestMetrics checks the request and cache-outcome counts of a few
// requests.
func TestRequestMetrics(t *testing.T) {
	m := metrics.New()
	f := newFixtureWith(t, nil, m)
	for range 3 {
		f.serve(t, "GET", "/example.com/a/@v/v1.0.0.mod", "192.0.2.1:1")
	}
	f.serve(t, "GET", "/example.com/nope/@v/v1.0.0.info", "192.0.2.1:1")
	// Series exist from start at zero; the counted ones are these.
	want := map[string]float64{
		`modproxy_requests_total{code="200",kind="mod"}`:           3,
		`modproxy_requests_total{code="404",kind="info"}`:          1,
		`modproxy_cache_outcomes_total{kind="mod",outcome="hit"}`:  2,
		`modproxy_cache_outcomes_total{kind="mod",outcome="miss"}`: 1,
	}
	families, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, fam := range families {
		if n := fam.GetName(); n != "modproxy_requests_total" && n != "modproxy_cache_outcomes_total" {
			continue
		}
		for _, mt := range fam.GetMetric() {
			if v := mt.GetCounter().GetValue(); v != 0 {
				var labels []string
				for _, l := range mt.GetLabel() {
					labels = append(labels, l.GetName()+`="`+l.GetValue()+`"`)
				}
				got[fam.GetName()+"{"+strings.Join(labels, ",")+"}"] = v
			}
		}
	}
	if !maps.Equal(got, want) {
		t.Errorf("counted series %v, want %v", got, want)
	}
}

// discard is a ResponseWriter that allocates nothing.
type discard struct{ h http.Header }

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) WriteHeader(int)             {}
func (d *discard) Write(p []byte) (int, error) { return len(p), nil }

// TestHitAllocations asserts how little a small hit from memory
// allocates with the access log and metrics on: the response recorder
// and the result (object and reader with it).
func TestHitAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts differ under the race detector")
	}
	var out bytes.Buffer
	f := newFixtureWith(t, slog.New(accesslog.NewHandler(&out, accesslog.JSON, nil)), metrics.New())
	const path = "/example.com/a/@v/v1.0.0.mod"
	if code, _ := f.serve(t, "GET", path, "192.0.2.1:1"); code != http.StatusOK {
		t.Fatalf("status %d", code)
	}
	req := httptest.NewRequest("GET", path, nil)
	w := &discard{h: http.Header{}}
	allocs := testing.AllocsPerRun(200, func() {
		clear(w.h)
		out.Reset()
		f.h.ServeHTTP(w, req)
	})
	if !strings.Contains(out.String(), `"cache":"hit"`) {
		t.Fatalf("not a hit: %q", out.String())
	}
	if allocs > 2 {
		t.Errorf("%v allocations per hit, want <= 2", allocs)
	}
}
