package admin_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/modproxy/modproxy/internal/admin"
	"github.com/modproxy/modproxy/internal/policy"
	"github.com/modproxy/modproxy/internal/vulndb"
)

// advisoryBackend is the fake with the optional AdvisoryBackend.
type advisoryBackend struct {
	*fakeBackend
	exp vulndb.Exposure
}

func (b advisoryBackend) Advisories(context.Context) (admin.Advisories, error) {
	return admin.Advisories{Advisories: []admin.Advisory{admin.AdvisoryOf(b.exp)}}, nil
}

func (b advisoryBackend) Advisory(_ context.Context, id string) (admin.Advisory, error) {
	if id != b.exp.ID {
		return admin.Advisory{}, fmt.Errorf("%w: %s", admin.ErrNotFound, id)
	}
	return admin.AdvisoryOf(b.exp), nil
}

func TestAdvisories(t *testing.T) {
	at := time.Date(2099, 5, 6, 7, 8, 9, 0, time.UTC)
	exp := vulndb.Exposure{
		Advisory: vulndb.Advisory{ID: "GO-2099-0001", Affected: []vulndb.Affected{{Module: "example.com/a", Ranges: []policy.Range{
			{Events: []policy.Event{{Introduced: "0"}, {Fixed: "v1.0.1"}, {Introduced: "v1.2.0"}, {Fixed: "v1.2.3"}}},
			{Events: []policy.Event{{Introduced: "v2.0.0"}}},
		}}}},
		Versions: []vulndb.Cached{{Module: "example.com/a", Version: "v1.0.0", LastAccess: at}},
	}
	h := admin.New(admin.Options{Backend: advisoryBackend{newFake(), exp}})
	rec := do(t, h, http.MethodGet, "/api/advisories/GO-2099-0001", "")
	var a admin.Advisory
	if rec.Code != 200 || json.Unmarshal(rec.Body.Bytes(), &a) != nil {
		t.Fatalf("GET /api/advisories/ID: %d %s", rec.Code, rec.Body)
	}
	if len(a.Modules) != 1 || fmt.Sprint(a.Modules[0].Ranges) != "[<v1.0.1, >=v1.2.0 <v1.2.3 >=v2.0.0]" ||
		len(a.Versions) != 1 || !a.Versions[0].LastDownload.Equal(at) || a.Versions[0].Identity != "" {
		t.Errorf("advisory = %+v", a)
	}
	if rec := do(t, h, http.MethodGet, "/api/advisories", ""); rec.Code != 200 {
		t.Errorf("GET /api/advisories: %d", rec.Code)
	}
	for _, p := range []string{"/api/advisories/GO-2099-0002", "/api/advisories/", "/api/advisories/a/b"} {
		if rec := do(t, h, http.MethodGet, p, ""); rec.Code != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", p, rec.Code)
		}
	}
	if rec := do(t, admin.New(admin.Options{Backend: newFake()}), http.MethodGet, "/api/advisories", ""); rec.Code != http.StatusNotFound {
		t.Errorf("a backend without advisories: %d, want 404", rec.Code)
	}
}
