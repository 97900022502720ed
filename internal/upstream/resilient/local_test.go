package resilient_test

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/modproxy/modproxy/internal/metrics"
	"github.com/modproxy/modproxy/internal/upstream"
	"github.com/modproxy/modproxy/internal/upstream/resilient"
	"github.com/modproxy/modproxy/internal/upstream/upstreamtest"
)

// fullDisk is a spool writer that fails with ENOSPC while full is set,
// like a write(2) on a full file system, and writes through otherwise.
type fullDisk struct {
	full atomic.Bool
}

func (d *fullDisk) wrap(f *os.File) io.Writer {
	return writerFunc(func(p []byte) (int, error) {
		if d.full.Load() {
			return 0, &os.PathError{Op: "write", Path: f.Name(), Err: syscall.ENOSPC}
		}
		return f.Write(p)
	})
}

type writerFunc func([]byte) (int, error)

func (w writerFunc) Write(p []byte) (int, error) { return w(p) }

// TestLocalWriteFailureIsNotTheUpstreams: a full disk while a zip body is
// spooled is a local failure: reported as an *upstream.LocalError keeping
// ENOSPC (for errclass), never an *upstream.Error, not retried (no
// re-download), not counted by the breaker however often it happens, not
// an upstream failure in the metrics, and a "|" chain does not move on to
// fail the same way; once space returns, the same fetch succeeds, with
// nothing remembered.
func TestLocalWriteFailureIsNotTheUpstreams(t *testing.T) {
	up := upstreamtest.New(t, mods, upstreamtest.WithoutSumDB())
	other := upstreamtest.New(t, mods, upstreamtest.WithoutSumDB())
	m := metrics.New()
	f := newFetcher(t, up, resilient.Options{MinRequests: 2, FailureRate: 0.5, TempDir: t.TempDir(), Metrics: m})
	disk := &fullDisk{}
	resilient.SetSpoolWriter(f, disk.wrap)
	disk.full.Store(true)
	const zip = "example.com/a/@v/v1.0.0.zip"
	chain := &upstream.Chain{Links: []upstream.Link{{Fetcher: f, AnyError: true}, {Fetcher: newFetcher(t, other, resilient.Options{})}}}
	for i := range 5 {
		err := fetch(t, chain, zip)
		var le *upstream.LocalError
		var ue *upstream.Error
		if !errors.Is(err, syscall.ENOSPC) || !errors.As(err, &le) || errors.As(err, &ue) {
			t.Fatalf("fetch %d with a full disk: %v (%T), want an *upstream.LocalError wrapping ENOSPC and no *upstream.Error", i, err, err)
		}
	}
	if n := up.Requests(zip); n != 5 {
		t.Errorf("upstream saw %d requests for 5 fetches, want 5 (a local failure is not retried)", n)
	}
	if n := other.Total(); n != 0 {
		t.Errorf("the '|' chain moved on to the next upstream %d times after a local failure", n)
	}
	if f.State() != "closed" {
		t.Errorf("breaker %s after local failures, want closed", f.State())
	}
	if got := scrapeNonZero(t, m, "modproxy_upstream_fetch_seconds_count"); len(got) != 0 {
		t.Errorf("local failures were recorded as upstream fetches: %q", got)
	}

	disk.full.Store(false)
	resp, err := f.Fetch(t.Context(), zip)
	if err != nil {
		t.Fatalf("fetch once space is back: %v", err)
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, up.ZipBytes("example.com/a", "v1.0.0")) {
		t.Error("the zip fetched once space is back differs from the upstream's")
	}
	if got := scrapeNonZero(t, m, "modproxy_upstream_fetch_seconds_count"); len(got) != 1 || !strings.Contains(got[0], `result="ok"`) {
		t.Errorf("upstream fetch samples after one success: %q, want one ok", got)
	}
}

// scrapeNonZero returns the samples of m named name whose value is not 0.
func scrapeNonZero(t *testing.T, m *metrics.Metrics, name string) []string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("scrape: status %d", rec.Code)
	}
	var out []string
	for line := range strings.SplitSeq(rec.Body.String(), "\n") {
		if strings.HasPrefix(line, name+"{") && !strings.HasSuffix(line, " 0") {
			out = append(out, line)
		}
	}
	return out
}
