package proxy_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"strings"
	"testing"

	"github.com/modproxy/modproxy/internal/cachepolicy"
	"github.com/modproxy/modproxy/internal/errclass"
	"github.com/modproxy/modproxy/internal/proxy"
	"github.com/modproxy/modproxy/internal/routing"
	storagefs "github.com/modproxy/modproxy/internal/storage/fs"
	"github.com/modproxy/modproxy/internal/upstream"
)

// staticFetcher answers the paths it holds and "not found" for others.
type staticFetcher map[string]string

func (f staticFetcher) Fetch(ctx context.Context, path string) (*upstream.Response, error) {
	body, ok := f[path]
	if !ok {
		return nil, &upstream.Error{Upstream: "static", Path: path, NotExist: true, Msg: "no such file"}
	}
	return &upstream.Response{Body: io.NopCloser(strings.NewReader(body)), Size: int64(len(body)), Source: "static"}, nil
}

func newStaticService(t *testing.T, f staticFetcher, rules *routing.Rules) *proxy.Service {
	t.Helper()
	store, err := storagefs.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	svc := proxy.New(proxy.Options{Store: store, Upstream: f, Rules: rules, TempDir: store.TempDir(), Policy: cachepolicy.Default()})
	t.Cleanup(svc.Close)
	return svc
}

// TestErrorClasses checks the class of each error the service returns,
// and that an invalid answer keeps its cause.
func TestErrorClasses(t *testing.T) {
	mustRange := func(s string) routing.Range {
		r, err := routing.ParseRange(s)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	rules := routing.New(nil, []routing.Deny{
		{Match: "example.com/evil", Reason: "malware"},
		{Match: "example.com/leaky", Versions: mustRange("v1.0.0"), Reason: "leaked", Gone: true},
	}, nil, 0)
	svc := newStaticService(t, staticFetcher{
		"example.com/a/@v/v1.0.0.info": "not json",
	}, rules)
	get := func(p string) error {
		t.Helper()
		res, err := svc.Get(context.Background(), mustParse(t, p))
		if err == nil {
			res.Close()
			t.Fatalf("Get(%s) succeeded", p)
		}
		return err
	}

	err := get("example.com/a/@v/v1.0.0.info")
	var ire *proxy.InvalidResponseError
	var syntax *json.SyntaxError
	if errclass.Of(err) != errclass.Integrity || !errors.As(err, &ire) || !errors.As(err, &syntax) {
		t.Errorf("invalid answer: class %v, error %v; want integrity, an *InvalidResponseError keeping its *json.SyntaxError", errclass.Of(err), err)
	}
	if err := get("example.com/evil/@v/list"); errclass.Of(err) != errclass.Denied {
		t.Errorf("denied module: class %v (%v), want denied", errclass.Of(err), err)
	}
	if err := get("example.com/leaky/@v/v1.0.0.mod"); errclass.Of(err) != errclass.Gone {
		t.Errorf("gone version: class %v (%v), want gone", errclass.Of(err), err)
	}
	// Not found upstream, then remembered by the negative cache.
	const missing = "example.com/missing/@v/list"
	if err := get(missing); errclass.Of(err) != errclass.NotExist || proxy.ErrorOutcome(err) != "" {
		t.Errorf("upstream not found: class %v, outcome %q (%v); want not-exist, no outcome", errclass.Of(err), proxy.ErrorOutcome(err), err)
	}
	if err := get(missing); errclass.Of(err) != errclass.NotExist || proxy.ErrorOutcome(err) != proxy.Negative {
		t.Errorf("negative cache: class %v, outcome %q (%v); want not-exist, negative", errclass.Of(err), proxy.ErrorOutcome(err), err)
	}
	if res, err := svc.Get(proxy.CacheOnly(context.Background()), mustParse(t, "example.com/b/@v/list")); err == nil {
		res.Close()
		t.Error("cache-only miss succeeded")
	} else if errclass.Of(err) != errclass.NotExist || !errors.Is(err, iofs.ErrNotExist) {
		t.Errorf("cache-only miss: class %v (%v), want not-exist", errclass.Of(err), err)
	}
}

// TestInvalidResponseErrorText: the cause is part of the text, as it was
// when it was kept as a string.
func TestInvalidResponseErrorText(t *testing.T) {
	err := &proxy.InvalidResponseError{Key: "k", Source: "https://up.example", Err: fmt.Errorf("body has %d bytes", 3)}
	if got, want := err.Error(), "upstream https://up.example answered k with invalid content: body has 3 bytes"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}
