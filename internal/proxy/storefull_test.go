package proxy_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/modproxy/modproxy/internal/cachepolicy"
	"github.com/modproxy/modproxy/internal/errclass"
	"github.com/modproxy/modproxy/internal/metrics"
	"github.com/modproxy/modproxy/internal/proxy"
	"github.com/modproxy/modproxy/internal/storage"
	storagefs "github.com/modproxy/modproxy/internal/storage/fs"
	"github.com/modproxy/modproxy/internal/upstream/upstreamtest"
)

// diskStore is the disk store on a disk that can be made full: writes
// then fail as the file system fails them (ENOSPC under *fs.PathError).
type diskStore struct {
	*storagefs.Store
	full atomic.Bool
}

func (s *diskStore) noSpace(key string) error {
	return fmt.Errorf("put %s: %w", key, &iofs.PathError{Op: "write", Path: s.TempDir() + "/put-1", Err: syscall.ENOSPC})
}

func (s *diskStore) Put(ctx context.Context, key string, r io.Reader) (storage.Info, error) {
	if s.full.Load() {
		return storage.Info{}, s.noSpace(key)
	}
	return s.Store.Put(ctx, key, r)
}

func (s *diskStore) MoveIn(ctx context.Context, src, key string) (storage.Info, error) {
	if s.full.Load() {
		return storage.Info{}, s.noSpace(key)
	}
	return s.Store.MoveIn(ctx, src, key)
}

func (s *diskStore) WriteBatch(ctx context.Context, entries []storage.Entry) ([]storage.Info, error) {
	if s.full.Load() {
		return nil, s.noSpace(entries[0].Key)
	}
	return s.Store.WriteBatch(ctx, entries)
}

// syncBuffer is a log destination safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// TestStoreFull: a fill whose answer cannot be stored because the disk is
// full fails with class StoreFull (its cause kept), is logged and counted
// as such and not as an upstream failure, is not remembered; hits are
// still served, a stale mutable entry is served stale, and fills work
// again as soon as there is space.
func TestStoreFull(t *testing.T) {
	var logs syncBuffer
	m := metrics.New()
	var store *diskStore
	f := newFixture(t, cachepolicy.Default(), func(o *proxy.Options) {
		fs := o.Store.(*storagefs.Store)
		store = &diskStore{Store: fs}
		o.Store = store
		o.Metrics = m
		o.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	})
	get := func(key string) (*proxy.Result, error) {
		t.Helper()
		return f.svc.Get(context.Background(), mustParse(t, key))
	}
	for _, k := range []string{"example.com/a/@v/v1.0.0.mod", "example.com/a/@v/list"} {
		res, err := get(k)
		if err != nil {
			t.Fatal(err)
		}
		res.Close()
	}

	store.full.Store(true)
	for _, k := range []string{"example.com/a/@v/v1.1.0.info", "example.com/a/@v/v1.1.0.zip"} {
		res, err := get(k)
		if err == nil {
			res.Close()
			t.Fatalf("%s stored on a full disk", k)
		}
		if errclass.Of(err) != errclass.StoreFull || !errors.Is(err, syscall.ENOSPC) {
			t.Errorf("%s: %v (class %v); want store-full keeping ENOSPC", k, err, errclass.Of(err))
		}
	}
	// Hits are served; a stale list is served stale.
	if res, err := get("example.com/a/@v/v1.0.0.mod"); err != nil || res.Outcome != proxy.Hit {
		t.Errorf("hit on a full disk: %v", err)
	} else {
		res.Close()
	}
	f.clock.Add(time.Hour)
	if res, err := get("example.com/a/@v/list"); err != nil || res.Outcome != proxy.Stale || !strings.HasPrefix(res.Warning, "111 ") {
		t.Errorf("stale list on a full disk: %v, %+v", err, res)
	} else {
		res.Close()
	}

	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(`# HELP modproxy_store_full_total Fills that could not store their answer because local storage is full (no space left, quota exceeded), by artifact kind.
# TYPE modproxy_store_full_total counter
modproxy_store_full_total{kind="info"} 1
modproxy_store_full_total{kind="list"} 1
modproxy_store_full_total{kind="zip"} 1
`), "modproxy_store_full_total"); err != nil {
		t.Error(err)
	}
	// The series exist from start at zero: what counts is their sum.
	families, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	var upstreamErrors float64
	for _, fam := range families {
		if fam.GetName() == "modproxy_upstream_errors_total" {
			for _, mt := range fam.GetMetric() {
				upstreamErrors += mt.GetCounter().GetValue()
			}
		}
	}
	if upstreamErrors != 0 {
		t.Errorf("a full disk counted as %v upstream errors", upstreamErrors)
	}
	if got := strings.Count(logs.String(), "cache storage is full"); got != 3 {
		t.Errorf("%d log lines say the store is full, want 3:\n%s", got, logs.String())
	}

	// Space returns: the next request fills (nothing was remembered).
	store.full.Store(false)
	res, err := get("example.com/a/@v/v1.1.0.info")
	if err != nil || res.Outcome != proxy.Miss {
		t.Fatalf("after space returned: %v", err)
	}
	res.Close()
}

// TestUpstreamRefusals: an upstream's 400 and 403 are its final word on
// the path: not retried, not served over from a stale copy, remembered
// for negative_ttl with their class (so a repeat gets the same answer, as
// a negative-cache outcome) and counted as not_found (400: clients get a
// 404) and denied (403).
func TestUpstreamRefusals(t *testing.T) {
	for _, tc := range []struct {
		code   int
		class  errclass.Class
		metric string
	}{
		{400, errclass.Invalid, "not_found"},
		{403, errclass.Denied, "denied"},
	} {
		t.Run(fmt.Sprint(tc.code), func(t *testing.T) {
			m := metrics.New()
			f := newFixture(t, outagePolicy, func(o *proxy.Options) { o.Metrics = m })
			const info = "example.com/a/@v/v1.0.0.info"
			f.up.SetFault(info, upstreamtest.Fault{Kind: upstreamtest.Status, Code: tc.code})
			for i, wantOutcome := range []proxy.Outcome{"", proxy.Negative} {
				_, err := f.svc.Get(context.Background(), mustParse(t, info))
				if errclass.Of(err) != tc.class || proxy.ErrorOutcome(err) != wantOutcome {
					t.Errorf("request %d: %v (class %v, outcome %q); want %v, %q", i, err, errclass.Of(err), proxy.ErrorOutcome(err), tc.class, wantOutcome)
				}
			}
			if n := f.up.Requests(info); n != 1 {
				t.Errorf("upstream asked %d times, want 1 (remembered)", n)
			}
			if got := counterValue(t, m, "modproxy_upstream_errors_total", "class", tc.metric); got != 1 {
				t.Errorf("modproxy_upstream_errors_total{class=%q} = %v, want 1", tc.metric, got)
			}
			f.clock.Add(outagePolicy.NegativeTTL)
			if _, err := f.svc.Get(context.Background(), mustParse(t, info)); errclass.Of(err) != tc.class || f.up.Requests(info) != 2 {
				t.Errorf("after negative_ttl: %v, %d requests; want asked again", err, f.up.Requests(info))
			}

			// A stale list that the upstream now refuses is not served.
			const list = "example.com/a/@v/list"
			res, err := f.svc.Get(context.Background(), mustParse(t, list))
			if err != nil {
				t.Fatal(err)
			}
			res.Close()
			f.up.SetFault(list, upstreamtest.Fault{Kind: upstreamtest.Status, Code: tc.code})
			f.clock.Add(outagePolicy.TTL + outagePolicy.StaleWhileRevalidate)
			for i := range 2 {
				if res, err := f.svc.Get(context.Background(), mustParse(t, list)); err == nil {
					res.Close()
					t.Errorf("request %d: a stale list the upstream refuses was served (%s)", i, res.Outcome)
				} else if errclass.Of(err) != tc.class {
					t.Errorf("request %d: %v (class %v), want %v", i, err, errclass.Of(err), tc.class)
				}
			}
			if n := f.up.Requests(list); n != 2 {
				t.Errorf("upstream asked for the list %d times, want 2 (the refusal is remembered)", n)
			}
		})
	}
}

// counterValue returns the value of the counter name{label="value"}, 0 if
// there is none.
func counterValue(t *testing.T, m *metrics.Metrics, name, label, value string) float64 {
	t.Helper()
	families, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, fam := range families {
		if fam.GetName() != name {
			continue
		}
		for _, mt := range fam.GetMetric() {
			for _, lp := range mt.GetLabel() {
				if lp.GetName() == label && lp.GetValue() == value {
					return mt.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}
