package vulndb_test

import (
	"testing"
	"time"

	"github.com/modproxy/modproxy/internal/policy"
	"github.com/modproxy/modproxy/internal/vulndb"
)

func TestInRange(t *testing.T) {
	ev := func(pairs ...string) policy.Range {
		var r policy.Range
		for i := 0; i+1 < len(pairs); i += 2 {
			if pairs[i] == "i" {
				r.Events = append(r.Events, policy.Event{Introduced: pairs[i+1]})
			} else {
				r.Events = append(r.Events, policy.Event{Fixed: pairs[i+1]})
			}
		}
		return r
	}
	for _, tc := range []struct {
		r    policy.Range
		v    string
		want bool
	}{
		{ev("i", "0", "f", "v1.1.0"), "v1.0.0", true},
		{ev("i", "0", "f", "v1.1.0"), "v1.1.0", false},
		{ev("i", "0", "f", "v1.1.0"), "v1.0.0-pre", true},
		{ev("i", "", "f", "v1.1.0"), "v0.0.0-20200101000000-abcdefabcdef", true},
		{ev("i", "v1.2.0"), "v1.1.9", false},
		{ev("i", "v1.2.0"), "v1.2.0", true},
		{ev("i", "v1.2.0"), "v9.0.0", true},
		{ev("i", "0", "f", "v1.0.1", "i", "v1.2.0", "f", "v1.2.3"), "v1.1.0", false},
		{ev("i", "0", "f", "v1.0.1", "i", "v1.2.0", "f", "v1.2.3"), "v1.2.2", true},
		{ev("i", "0", "f", "v1.0.1", "i", "v1.2.0", "f", "v1.2.3"), "v1.2.3", false},
		// events out of order
		{ev("f", "v1.2.3", "i", "v1.2.0", "f", "v1.0.1", "i", "0"), "v1.0.0", true},
		{ev("f", "v1.0.0"), "v0.9.0", false},
	} {
		if got := vulndb.InRange(tc.r, tc.v); got != tc.want {
			t.Errorf("InRange(%v, %s) = %v, want %v", tc.r.Events, tc.v, got, tc.want)
		}
	}
}

func TestExposures(t *testing.T) {
	at := time.Date(2099, 5, 6, 7, 8, 9, 0, time.UTC)
	advs := []vulndb.Advisory{
		{ID: "GO-2099-0001", Affected: []vulndb.Affected{{Module: "example.com/a", Ranges: []policy.Range{{Events: []policy.Event{{Introduced: "0"}, {Fixed: "v1.1.0"}}}}}}},
		{ID: "GO-2099-0002", Affected: []vulndb.Affected{{Module: "example.com/none", Ranges: []policy.Range{{Events: []policy.Event{{Introduced: "0"}}}}}}},
	}
	cached := []vulndb.Cached{
		{Module: "example.com/a", Version: "v1.1.0", LastAccess: at},
		{Module: "example.com/a", Version: "v1.0.0", LastAccess: at},
		{Module: "example.com/b", Version: "v1.0.0", LastAccess: at},
	}
	got := vulndb.Exposures(advs, cached, false)
	if len(got) != 1 || got[0].ID != "GO-2099-0001" || len(got[0].Versions) != 1 || got[0].Versions[0].Version != "v1.0.0" || !got[0].Versions[0].LastAccess.Equal(at) {
		t.Errorf("Exposures = %+v", got)
	}
	if all := vulndb.Exposures(advs, cached, true); len(all) != 2 || all[1].Versions != nil {
		t.Errorf("Exposures(all) = %+v", all)
	}
}
