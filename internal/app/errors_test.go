package app

import (
	"context"
	"errors"
	iofs "io/fs"
	"testing"

	"github.com/modproxy/modproxy/internal/config"
	"github.com/modproxy/modproxy/internal/errclass"
	"github.com/modproxy/modproxy/internal/routing"
)

// TestDenyRules: the operator's `status` of a deny rule becomes routing's
// refused (403, the default) or gone (410).
func TestDenyRules(t *testing.T) {
	deny, err := translateDeny([]config.DenyRule{
		{Match: "example.com/a", Reason: "default"},
		{Match: "example.com/b", Reason: "refused", Status: 403},
		{Match: "example.com/c", Versions: "<v1.2.0", Reason: "gone", Status: 410},
	})
	if err != nil {
		t.Fatal(err)
	}
	rules := routing.New(nil, deny, nil, 0)
	for path, want := range map[string]errclass.Class{"example.com/a": errclass.Denied, "example.com/b": errclass.Denied} {
		if got := errclass.Of(rules.CheckModule(path)); got != want {
			t.Errorf("%s: %v, want %v", path, got, want)
		}
	}
	if got := errclass.Of(rules.CheckVersion("example.com/c", "v1.1.0")); got != errclass.Gone {
		t.Errorf("example.com/c@v1.1.0: %v, want gone", got)
	}
	if err := rules.CheckVersion("example.com/c", "v1.2.0"); err != nil {
		t.Errorf("example.com/c@v1.2.0: %v, want allowed", err)
	}
	if _, err := translateDeny([]config.DenyRule{{Match: "example.com/a", Versions: ">=banana", Reason: "r"}}); err == nil {
		t.Error("bad version range accepted")
	}
}

// TestOffFetcher: "off" is not found (a "," list moves on, as the go
// command's GOPROXY=off ends a list), and its text names no HTTP status.
func TestOffFetcher(t *testing.T) {
	_, err := offFetcher{}.Fetch(context.Background(), "example.com/a/@v/list")
	if errclass.Of(err) != errclass.NotExist || !errors.Is(err, iofs.ErrNotExist) {
		t.Errorf("off: %v (class %v), want not-exist", err, errclass.Of(err))
	}
	if got, want := err.Error(), `off/example.com/a/@v/list: module lookup disabled by "off" in the upstream list`; got != want {
		t.Errorf("off: %q, want %q", got, want)
	}
}
