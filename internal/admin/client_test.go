package admin_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"

	"github.com/modproxy/modproxy/internal/admin"
	"github.com/modproxy/modproxy/internal/cacheadmin"
)

// TestClient calls the API through the client and gets the backend's
// answers, and its error classes back from the statuses.
func TestClient(t *testing.T) {
	ctx := context.Background()
	f := newFake()
	ts := httptest.NewServer(admin.New(admin.Options{Backend: f, Token: "secret"}))
	defer ts.Close()
	c := &admin.Client{URL: ts.URL + "/", Token: "secret", HTTP: ts.Client()}

	st, err := c.Status(ctx)
	if want, _ := f.Status(ctx); err != nil || !reflect.DeepEqual(st.Store, want.Store) || st.CacheDir != want.CacheDir {
		t.Errorf("Status = %+v, %v", st, err)
	}
	plan, err := c.GCPlan(ctx)
	if want, _ := f.GCPlan(ctx); err != nil || plan.StoreBytes != want.StoreBytes || len(plan.Items) != len(want.Items) {
		t.Errorf("GCPlan = %+v, %v", plan, err)
	}
	if res, err := c.GCRun(ctx); err != nil || res.TrashID != "gc-1" {
		t.Errorf("GCRun = %+v, %v", res, err)
	}
	if tr, err := c.Trash(ctx); err != nil || len(tr) != 1 || tr[0].ID != "gc-20240501-1" {
		t.Errorf("Trash = %+v, %v", tr, err)
	}
	if res, err := c.Restore(ctx, "gc-20240501-1"); err != nil || len(res.Restored) != 1 {
		t.Errorf("Restore = %+v, %v", res, err)
	}
	calls := f.Calls()
	if len(calls) != 2 || calls[0].Method != "GCRun" || calls[1].Method != "Restore" || calls[1].Arg != "gc-20240501-1" {
		t.Errorf("backend calls: %+v", calls)
	}

	_, err = c.Restore(ctx, "nope")
	var ae *admin.APIError
	if !errors.As(err, &ae) || ae.Status != http.StatusNotFound || !errors.Is(err, cacheadmin.ErrNotFound) || !errors.Is(err, admin.ErrNotFound) ||
		err.Error() != fmt.Sprintf("%v: trash batch %q", admin.ErrNotFound, "nope") {
		t.Errorf("Restore of an unknown batch: %v", err)
	}
	for _, tc := range []struct {
		err   error
		class error
	}{
		{fmt.Errorf("%w: bad", cacheadmin.ErrInvalid), cacheadmin.ErrInvalid},
		{fmt.Errorf("%w: busy", cacheadmin.ErrConflict), cacheadmin.ErrConflict},
		{fmt.Errorf("%w: gone", cacheadmin.ErrNotFound), cacheadmin.ErrNotFound},
	} {
		f.mu.Lock()
		f.err = tc.err
		f.mu.Unlock()
		if _, err := c.GCPlan(ctx); !errors.Is(err, tc.class) || err.Error() != tc.err.Error() {
			t.Errorf("backend error %v: client error %v", tc.err, err)
		}
	}
	f.mu.Lock()
	f.err = errors.New("disk on fire")
	f.mu.Unlock()
	if _, err := c.GCPlan(ctx); !errors.As(err, &ae) || ae.Status != http.StatusInternalServerError ||
		errors.Is(err, cacheadmin.ErrInvalid) || errors.Is(err, cacheadmin.ErrNotFound) || errors.Is(err, cacheadmin.ErrConflict) {
		t.Errorf("internal error: %v", err)
	}

	bad := &admin.Client{URL: ts.URL, Token: "wrong", HTTP: ts.Client()}
	if _, err := bad.Status(ctx); !errors.As(err, &ae) || ae.Status != http.StatusUnauthorized {
		t.Errorf("wrong token: %v", err)
	}
}
