package routing

import (
	"errors"
	"testing"

	"github.com/modproxy/modproxy/internal/errclass"
)

func TestRules(t *testing.T) {
	mustRange := func(s string) Range {
		r, err := ParseRange(s)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	r := New(
		[]Route{{Match: "corp.example.com", Target: 1}, {Match: "*.internal.example", Target: 2}},
		[]Deny{
			{Match: "example.com/leaky", Versions: mustRange(">=v1.2.0 <v1.3.0"), Reason: "leaked a secret"},
			{Match: "example.com/evil", Reason: "malware", Gone: true},
		},
		nil, 0)
	for path, want := range map[string]int{"corp.example.com/x": 1, "corp.example.com": 1, "git.internal.example/y": 2, "example.com/z": 0, "corp.example.com.evil/x": 0} {
		if got := r.Target(path); got != want {
			t.Errorf("Target(%s) = %d, want %d", path, got, want)
		}
	}
	var de *DeniedError
	if err := r.CheckVersion("example.com/leaky", "v1.2.5"); !errors.As(err, &de) || errclass.Of(err) != errclass.Denied || de.Reason != "leaked a secret" {
		t.Errorf("leaky v1.2.5: %v", err)
	}
	for _, v := range []string{"v1.1.9", "v1.3.0", "v2.0.0+incompatible"} {
		if err := r.CheckVersion("example.com/leaky", v); err != nil {
			t.Errorf("leaky %s: %v", v, err)
		}
	}
	if err := r.CheckModule("example.com/evil/sub"); !errors.As(err, &de) || errclass.Of(err) != errclass.Gone {
		t.Errorf("evil: %v", err)
	}
	if got := string(r.FilterList("example.com/leaky", []byte("v1.1.0\nv1.2.0\nv1.2.1\nv1.3.0\n"))); got != "v1.1.0\nv1.3.0\n" {
		t.Errorf("FilterList = %q", got)
	}
	allow := New(nil, nil, []string{"example.com/ok", "golang.org/x"}, 0)
	if err := allow.CheckModule("example.com/other"); !errors.As(err, &de) || errclass.Of(err) != errclass.Denied {
		t.Errorf("allow list: %v", err)
	}
	if err := allow.CheckVersion("golang.org/x/mod", "v0.1.0"); err != nil {
		t.Errorf("allowed module: %v", err)
	}
	if _, err := ParseRange(">=banana"); err == nil {
		t.Error("bad range parsed")
	}
	if rg := mustRange("v1.4.2"); !rg.Contains("v1.4.2") || rg.Contains("v1.4.3") {
		t.Error("exact version range")
	}
}
