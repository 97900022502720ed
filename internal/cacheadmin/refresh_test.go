package cacheadmin_test

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"testing/synctest"

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
