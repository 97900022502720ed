package cacheadmin_test

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/modproxy/modproxy/internal/audit"
	"github.com/modproxy/modproxy/internal/cacheadmin"
)

// refreshed records OnRefresh calls as "NAMESPACE MODULE".
type refreshed struct {
	mu  sync.Mutex
	got []string
}

func (r *refreshed) on(ns, mod string) error {
	if ns == "nope" {
		return errors.New("no namespace nope")
	}
	r.mu.Lock()
	r.got = append(r.got, ns+" "+mod)
	r.mu.Unlock()
	return nil
}

func (r *refreshed) calls() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got)
}

// TestRefresh: a refresh applies at once on the replica asked, reaches
// another replica through the coordinator's broadcast, and is audited;
// an invalid path or namespace is ErrInvalid and applies nowhere.
func TestRefresh(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t)
		c := newFakeCoord(false)
		var here, there refreshed
		s := f.service(t, func(o *cacheadmin.Options) { o.Coordinator = c; o.OnRefresh = here.on })
		other := f.service(t, func(o *cacheadmin.Options) { o.Coordinator = c; o.OnRefresh = there.on })
		other.Start(context.Background())
		ctx := context.Background()
		if err := s.Refresh(ctx, "admin 127.0.0.1", cacheadmin.RefreshRequest{Module: "example.com/m", All: true}); err != nil {
			t.Fatal(err)
		}
		if got := here.calls(); !slices.Equal(got, []string{"* example.com/m"}) {
			t.Errorf("local OnRefresh calls %q", got)
		}
		synctest.Wait()
		if got := there.calls(); !slices.Equal(got, []string{"* example.com/m"}) {
			t.Errorf("other replica's OnRefresh calls %q", got)
		}
		for _, req := range []cacheadmin.RefreshRequest{{Module: "not a path"}, {Module: "example.com/m", Namespace: "nope"}} {
			if err := s.Refresh(ctx, "test", req); !errors.Is(err, cacheadmin.ErrInvalid) {
				t.Errorf("Refresh(%+v) = %v, want ErrInvalid", req, err)
			}
		}
		synctest.Wait()
		if n := len(there.calls()); n != 1 {
			t.Errorf("refused refreshes reached the other replica: %q", there.calls())
		}
		f.audit.Close()
		evs, err := audit.Read(filepath.Join(f.dir, "audit.log"))
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) != 1 || evs[0].Action != "refresh" || evs[0].Target != "*:example.com/m" || evs[0].Actor != "admin 127.0.0.1" {
			t.Errorf("audit %+v, want one refresh of *:example.com/m", evs)
		}
		other.Close()
	})
}

// TestRefreshRateLimit: an identity gets RefreshBurst refreshes at once,
// then one every RefreshEvery; beyond that a *RateLimitError says when
// to come back, and the refresh applies nowhere. Other identities, and
// refreshes without one (the admin API), are not affected.
func TestRefreshRateLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t)
		var here refreshed
		s := f.service(t, func(o *cacheadmin.Options) {
			o.OnRefresh = here.on
			o.RefreshBurst, o.RefreshEvery = 2, 10*time.Second
		})
		ctx := context.Background()
		refresh := func(id string) error {
			return s.Refresh(ctx, "test", cacheadmin.RefreshRequest{Module: "example.com/m", Identity: id})
		}
		for range 2 {
			if err := refresh("ci"); err != nil {
				t.Fatal(err)
			}
		}
		err := refresh("ci")
		var rl *cacheadmin.RateLimitError
		if !errors.As(err, &rl) || rl.RetryAfter() != 10*time.Second {
			t.Fatalf("third refresh at once: %v, want a rate limit of 10s", err)
		}
		if n := len(here.calls()); n != 2 {
			t.Errorf("%d refreshes applied, want 2", n)
		}
		if err := refresh("other"); err != nil {
			t.Errorf("another identity: %v", err)
		}
		for range 5 {
			if err := refresh(""); err != nil {
				t.Errorf("without an identity: %v", err)
			}
		}
		time.Sleep(10 * time.Second)
		if err := refresh("ci"); err != nil {
			t.Errorf("after RetryAfter: %v", err)
		}
		if err := refresh("ci"); !errors.As(err, &rl) {
			t.Errorf("right after: %v, want a rate limit", err)
		}
	})
}
