package goproxy_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/modproxy/modproxy/internal/artifact"
	"github.com/modproxy/modproxy/internal/goproxy"
	"github.com/modproxy/modproxy/internal/metrics"
	"github.com/modproxy/modproxy/internal/proxy"
	storagefs "github.com/modproxy/modproxy/internal/storage/fs"
	"github.com/modproxy/modproxy/internal/upstream"
)

// storeService answers from a disk store with the outcome given per key;
// keys it has no outcome for fail as an unreachable upstream.
type storeService struct {
	store    *storagefs.Store
	outcomes map[string]proxy.Outcome
}

func (s storeService) Get(ctx context.Context, req artifact.Request) (*proxy.Result, error) {
	o, ok := s.outcomes[req.Key]
	if !ok {
		return nil, &upstream.Error{Upstream: "https://up.example", Path: req.Key, Msg: "connection refused"}
	}
	obj, err := s.store.Open(ctx, req.Key)
	if err != nil {
		return nil, err
	}
	return &proxy.Result{Object: obj, Outcome: o}, nil
}

func (storeService) SumDBSupported(string) bool { return false }

func newStoreService(t *testing.T, outcomes map[string]proxy.Outcome) storeService {
	t.Helper()
	st, err := storagefs.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for k := range outcomes {
		if _, err := st.Put(context.Background(), k, strings.NewReader("content of "+k)); err != nil {
			t.Fatal(err)
		}
	}
	return storeService{store: st, outcomes: outcomes}
}

func scrapeLines(t *testing.T, m *metrics.Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	return rec.Body.String()
}

// TestRequestDurations: every served request is timed once, by kind and
// outcome class (hits and fills apart), and the protocol series exist at
// zero before the first request.
func TestRequestDurations(t *testing.T) {
	m := metrics.New()
	svc := newStoreService(t, map[string]proxy.Outcome{
		"example.com/a/@v/v1.0.0.zip": proxy.Hit,
		"example.com/a/@v/v1.0.0.mod": proxy.Miss,
		"example.com/a/@v/list":       proxy.Stale,
	})
	h := goproxy.New(goproxy.Options{Service: svc, Metrics: m})
	before := scrapeLines(t, m)
	for _, want := range []string{
		`modproxy_request_duration_seconds_count{kind="zip",outcome="hit"} 0`,
		`modproxy_request_duration_seconds_count{kind="sumdb",outcome="fill"} 0`,
		`modproxy_request_duration_seconds_count{kind="latest",outcome="error"} 0`,
		`modproxy_requests_total{code="200",kind="info"} 0`,
		`modproxy_requests_total{code="502",kind="zip"} 0`,
		`modproxy_requests_total{code="504",kind="mod"} 0`,
		`modproxy_requests_total{code="400",kind="sumdb"} 0`,
		`modproxy_cache_outcomes_total{kind="zip",outcome="hit"} 0`,
		`modproxy_cache_outcomes_total{kind="list",outcome="negative"} 0`,
	} {
		if !strings.Contains(before, want+"\n") {
			t.Errorf("before any request, /metrics lacks %s", want)
		}
	}
	for _, p := range []string{"/example.com/a/@v/v1.0.0.zip", "/example.com/a/@v/v1.0.0.zip", "/example.com/a/@v/v1.0.0.mod",
		"/example.com/a/@v/list", "/example.com/a/@v/v1.0.0.info", "/healthz", "/not-a-module-path/@v/x!"} {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", p, nil))
	}
	after := scrapeLines(t, m)
	for _, want := range []string{
		`modproxy_request_duration_seconds_count{kind="zip",outcome="hit"} 2`,
		`modproxy_request_duration_seconds_count{kind="mod",outcome="fill"} 1`,
		`modproxy_request_duration_seconds_count{kind="list",outcome="hit"} 1`,
		`modproxy_request_duration_seconds_count{kind="info",outcome="error"} 1`,
		`modproxy_request_duration_seconds_count{kind="zip",outcome="fill"} 0`,
		`modproxy_requests_total{code="502",kind="info"} 1`,
	} {
		if !strings.Contains(after, want+"\n") {
			t.Errorf("after the requests, /metrics lacks %s", want)
		}
	}
	var timed int
	for line := range strings.Lines(after) {
		if strings.HasPrefix(line, "modproxy_request_duration_seconds_count{") {
			n, err := strconv.Atoi(strings.TrimSpace(line[strings.LastIndexByte(line, ' '):]))
			if err != nil {
				t.Fatalf("%q: %v", line, err)
			}
			timed += n
		}
	}
	if timed != 5 {
		t.Errorf("%d requests timed, want 5 (health probes and unparsable paths are not protocol requests)", timed)
	}
}

// TestHealthProbesLogDebug: /healthz and /readyz are logged at debug
// level, protocol requests at info.
func TestHealthProbesLogDebug(t *testing.T) {
	svc := newStoreService(t, map[string]proxy.Outcome{"example.com/a/@v/v1.0.0.info": proxy.Hit})
	for _, tc := range []struct {
		level slog.Level
		want  []string
	}{
		{slog.LevelInfo, []string{"/example.com/a/@v/v1.0.0.info"}},
		{slog.LevelDebug, []string{"/healthz", "/readyz", "/example.com/a/@v/v1.0.0.info"}},
	} {
		var buf bytes.Buffer
		h := goproxy.New(goproxy.Options{Service: svc, Logger: slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: tc.level}))})
		for _, p := range []string{"/healthz", "/readyz", "/example.com/a/@v/v1.0.0.info"} {
			h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", p, nil))
		}
		var got []string
		for line := range strings.Lines(buf.String()) {
			_, path, _ := strings.Cut(line, " path=")
			path, _, _ = strings.Cut(path, " ")
			got = append(got, path)
		}
		if strings.Join(got, " ") != strings.Join(tc.want, " ") {
			t.Errorf("at level %v the log has requests %q, want %q:\n%s", tc.level, got, tc.want, buf.String())
		}
	}
}
