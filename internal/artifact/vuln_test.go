package artifact_test

import (
	"errors"
	"testing"

	"github.com/modproxy/modproxy/internal/artifact"
)

func TestParseVuln(t *testing.T) {
	for p, want := range map[string]string{
		"index/db.json":        "",
		"index/modules.json":   "",
		"ID/GO-2024-0001.json": "GO-2024-0001",
		"ID/GHSA-x_y.z.json":   "GHSA-x_y.z",
	} {
		id, err := artifact.ParseVuln(p)
		if err != nil || id != want {
			t.Errorf("ParseVuln(%q) = %q, %v; want %q", p, id, err, want)
		}
	}
	for _, p := range []string{"", "index", "index/vulns.json", "ID/.json", "ID/../x.json", "ID/a..b.json", "ID/-x.json",
		"ID/a/b.json", "ID/GO-1.json.gz", "ID/a b.json", "id/GO-1.json", "/index/db.json"} {
		if _, err := artifact.ParseVuln(p); !errors.Is(err, artifact.ErrInvalid) {
			t.Errorf("ParseVuln(%q) = %v, want ErrInvalid", p, err)
		}
	}
}
