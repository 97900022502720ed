package proxy_test

import (
	"context"
	"io"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/modproxy/modproxy/internal/artifact"
	"github.com/modproxy/modproxy/internal/cachepolicy"
	"github.com/modproxy/modproxy/internal/proxy"
	storagefs "github.com/modproxy/modproxy/internal/storage/fs"
	"github.com/modproxy/modproxy/internal/upstream"
)

// heldLister answers a module's list, the current one (setList) at the
// time a fetch starts; with hold set, the next list fetch tells held and
// answers only after release is closed, with the list it read at its
// start.
type heldLister struct {
	mu      sync.Mutex
	list    string
	hold    bool
	held    chan struct{}
	release chan struct{}
	fetches int
}

func (f *heldLister) setList(l string) {
	f.mu.Lock()
	f.list = l
	f.mu.Unlock()
}

// holdNext makes the next list fetch wait for release.
func (f *heldLister) holdNext() {
	f.mu.Lock()
	f.hold, f.held, f.release = true, make(chan struct{}), make(chan struct{})
	f.mu.Unlock()
}

func (f *heldLister) Fetch(ctx context.Context, path string) (*upstream.Response, error) {
	if !strings.HasSuffix(path, "/@v/list") {
		return nil, &upstream.Error{Upstream: "held", Status: 404, Msg: "not found"}
	}
	f.mu.Lock()
	l, hold, held, release := f.list, f.hold, f.held, f.release
	f.hold = false
	f.fetches++
	f.mu.Unlock()
	if hold {
		close(held)
		select {
		case <-release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return &upstream.Response{Body: io.NopCloser(strings.NewReader(l)), Size: int64(len(l)), Source: "held"}, nil
}

// refreshRaceFixture is a service over a heldLister whose clock is the
// real one (file modification times are) plus an offset the test moves.
type refreshRaceFixture struct {
	up     *heldLister
	svc    *proxy.Service
	mu     sync.Mutex
	offset time.Duration
}

// wall is the real time, read outside the test's bubble.
func newRefreshRaceFixture(t *testing.T, wall time.Time) *refreshRaceFixture {
	t.Helper()
	store, err := storagefs.New(filepath.Join(t.TempDir(), "cache"))
	if err != nil {
		t.Fatal(err)
	}
	f := &refreshRaceFixture{up: &heldLister{list: "v1.0.0\n"}}
	bubble := time.Now()
	policy := cachepolicy.Default()
	policy.TTL, policy.StaleWhileRevalidate = time.Minute, time.Hour
	f.svc = proxy.New(proxy.Options{Store: store, TempDir: store.TempDir(), Upstream: f.up, Policy: policy, Now: func() time.Time {
		f.mu.Lock()
		defer f.mu.Unlock()
		return wall.Add(time.Since(bubble) + f.offset)
	}})
	t.Cleanup(f.svc.Close)
	return f
}

func (f *refreshRaceFixture) move(d time.Duration) {
	f.mu.Lock()
	f.offset += d
	f.mu.Unlock()
}

func (f *refreshRaceFixture) list(t *testing.T) (string, proxy.Outcome) {
	t.Helper()
	l, out, err := f.tryList()
	if err != nil {
		t.Fatal(err)
	}
	return l, out
}

// tryList is list for another goroutine than the test's.
func (f *refreshRaceFixture) tryList() (string, proxy.Outcome, error) {
	req, err := artifact.Parse("example.com/m/@v/list")
	if err != nil {
		return "", "", err
	}
	res, err := f.svc.Get(context.Background(), req)
	if err != nil {
		return "", "", err
	}
	defer res.Close()
	b, err := io.ReadAll(res.Object)
	return string(b), res.Outcome, err
}

// revalidationHeld caches the list v1.0.0, lets it go stale and asks
// for it: the stale-while-revalidate fetch reads the old list upstream
// and waits for f.up.release; the upstream's list is v1.0.0 and v1.1.0
// from then on.
func (f *refreshRaceFixture) revalidationHeld(t *testing.T) {
	t.Helper()
	if l, _ := f.list(t); l != "v1.0.0\n" {
		t.Fatalf("list %q", l)
	}
	f.move(2 * time.Minute) // past the TTL, within stale-while-revalidate
	f.up.holdNext()
	if l, out := f.list(t); l != "v1.0.0\n" || out != proxy.Stale {
		t.Fatalf("list %q (%v), want the stale one while it is revalidated", l, out)
	}
	<-f.up.held
	f.up.setList("v1.0.0\nv1.1.0\n")
}

// TestRefreshDuringFetch: a refresh that arrives while a fetch of the
// list (here a stale-while-revalidate one) is under way, with the old list
// already read upstream, is not satisfied by that fetch: the request
// after the refresh that joins it fetches again and gets the new list,
// and so does the next one.
func TestRefreshDuringFetch(t *testing.T) {
	wall := time.Now() // the store's modification times are real
	synctest.Test(t, func(t *testing.T) {
		f := newRefreshRaceFixture(t, wall)
		f.revalidationHeld(t)
		if err := f.svc.Refresh("example.com/m"); err != nil {
			t.Fatal(err)
		}
		type answer struct {
			list string
			err  error
		}
		got := make(chan answer, 1)
		go func() {
			l, _, err := f.tryList()
			got <- answer{l, err}
		}()
		synctest.Wait() // the request after the refresh waits for the revalidation
		close(f.up.release)
		if a := <-got; a.err != nil || a.list != "v1.0.0\nv1.1.0\n" {
			t.Errorf("list asked after the refresh %q, %v; want the new one", a.list, a.err)
		}
		if l, _ := f.list(t); l != "v1.0.0\nv1.1.0\n" {
			t.Errorf("next list %q, want the new one", l)
		}
	})
}

// TestRefreshFetchEndsLate: a fetch that began before a refresh and
// stored its answer clearly after it (by modification time) is still
// not taken for one fetched after the refresh: the next request fetches
// again.
func TestRefreshFetchEndsLate(t *testing.T) {
	wall := time.Now() // the store's modification times are real
	synctest.Test(t, func(t *testing.T) {
		f := newRefreshRaceFixture(t, wall)
		f.revalidationHeld(t)
		f.move(-time.Hour) // the refresh is long before the revalidation stores its answer
		if err := f.svc.Refresh("example.com/m"); err != nil {
			t.Fatal(err)
		}
		close(f.up.release)
		synctest.Wait() // the revalidation has stored the old list
		if l, _ := f.list(t); l != "v1.0.0\nv1.1.0\n" {
			t.Errorf("list after the refresh %q, want the new one", l)
		}
	})
}
