package vulndb

import (
	"reflect"
	"testing"

	"github.com/modproxy/modproxy/internal/policy"
)

// TestParseEntry: OSV SEMVER versions (no "v") become canonical Go
// versions, pseudo-versions and prereleases included; other range types
// are not the policy's; aliases are kept.
func TestParseEntry(t *testing.T) {
	b := []byte(`{"id": "GO-2099-0001", "modified": "2099-01-02T03:04:05Z", "aliases": ["CVE-2099-1", "GHSA-xxxx"],
	  "affected": [
	    {"package": {"name": "example.com/m", "ecosystem": "Go"}, "ranges": [
	      {"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "0.0.0-20200220183623-bac4c82f6975"}, {"introduced": "1.2.0-rc.1"}, {"fixed": "1.2.3"}]},
	      {"type": "GIT", "repo": "x", "events": [{"introduced": "abc"}]}]},
	    {"package": {"name": "stdlib", "ecosystem": "Go"}, "ranges": [{"type": "SEMVER", "events": [{"introduced": "1.21.0"}]}]}]}`)
	e, err := parseEntry("GO-2099-0001", b)
	if err != nil {
		t.Fatal(err)
	}
	want := []affectedMeta{
		{Module: "example.com/m", Ranges: []policy.Range{{Events: []policy.Event{{Introduced: "0"}, {Fixed: "v0.0.0-20200220183623-bac4c82f6975"}, {Introduced: "v1.2.0-rc.1"}, {Fixed: "v1.2.3"}}}}},
		{Module: "stdlib", Ranges: []policy.Range{{Events: []policy.Event{{Introduced: "v1.21.0"}}}}},
	}
	if !reflect.DeepEqual(e.Affected, want) || !reflect.DeepEqual(e.Aliases, []string{"CVE-2099-1", "GHSA-xxxx"}) {
		t.Errorf("parseEntry = %+v", e)
	}
	for name, bad := range map[string]string{
		"both in one event": `{"id": "GO-2099-0001", "affected": [{"package": {"name": "m"}, "ranges": [{"type": "SEMVER", "events": [{"introduced": "1.0.0", "fixed": "1.0.1"}]}]}]}`,
		"not semver":        `{"id": "GO-2099-0001", "affected": [{"package": {"name": "m"}, "ranges": [{"type": "SEMVER", "events": [{"fixed": "v1.0.1"}]}]}]}`,
		"no package name":   `{"id": "GO-2099-0001", "affected": [{"package": {}}]}`,
		"other id":          `{"id": "GO-2099-0002"}`,
	} {
		if _, err := parseEntry("GO-2099-0001", []byte(bad)); err == nil {
			t.Errorf("%s: parsed", name)
		}
	}
}
