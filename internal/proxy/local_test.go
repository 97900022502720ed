package proxy_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/modproxy/modproxy/internal/cachepolicy"
	"github.com/modproxy/modproxy/internal/metrics"
	"github.com/modproxy/modproxy/internal/proxy"
	storagefs "github.com/modproxy/modproxy/internal/storage/fs"
	"github.com/modproxy/modproxy/internal/upstream"
)

// fullDiskFetcher fails as resilient does when the disk is full while it
// spools a body.
type fullDiskFetcher struct{}

func (fullDiskFetcher) Fetch(ctx context.Context, path string) (*upstream.Response, error) {
	return nil, &upstream.LocalError{Upstream: "u", Path: path, Op: "spooling the body",
		Err: &os.PathError{Op: "write", Path: "tmp/upstream-1.zip", Err: syscall.ENOSPC}}
}

// TestLocalFetchFailureIsNoUpstreamError: a fill that fails because this
// machine's disk is full keeps ENOSPC for the classifier, is not counted
// in modproxy_upstream_errors_total and is not remembered as not found.
func TestLocalFetchFailureIsNoUpstreamError(t *testing.T) {
	store, err := storagefs.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	m := metrics.New()
	svc := proxy.New(proxy.Options{Store: store, Upstream: fullDiskFetcher{}, TempDir: store.TempDir(), Policy: cachepolicy.Default(), Metrics: m})
	t.Cleanup(svc.Close)
	for range 2 {
		res, err := svc.Get(context.Background(), mustParse(t, "example.com/a/@v/v1.0.0.zip"))
		if err == nil {
			res.Close()
			t.Fatal("Get succeeded with a full disk")
		}
		var nfe *proxy.NotFoundError
		if !errors.Is(err, syscall.ENOSPC) || errors.As(err, &nfe) {
			t.Fatalf("Get with a full disk: %v, want ENOSPC and no (negative-cached) not found", err)
		}
	}
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	for line := range strings.SplitSeq(rec.Body.String(), "\n") {
		if strings.HasPrefix(line, "modproxy_upstream_errors_total{") && !strings.HasSuffix(line, " 0") {
			t.Errorf("a local failure was counted as an upstream error: %s", line)
		}
	}
}
