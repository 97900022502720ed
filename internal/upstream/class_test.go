package upstream_test

import (
	"context"
	"errors"
	"fmt"
	iofs "io/fs"
	"testing"

	"github.com/modproxy/modproxy/internal/errclass"
	"github.com/modproxy/modproxy/internal/upstream"
)

// TestErrorClass: the class of each kind of failed fetch is decided here,
// not by the HTTP edge.
func TestErrorClass(t *testing.T) {
	for _, tc := range []struct {
		name      string
		err       *upstream.Error
		want      errclass.Class
		transient bool
	}{
		{"404", &upstream.Error{Status: 404}, errclass.NotExist, false},
		{"410", &upstream.Error{Status: 410}, errclass.NotExist, false},
		{"adapter not found", &upstream.Error{NotExist: true, Msg: "unknown revision"}, errclass.NotExist, false},
		{"cause not found", &upstream.Error{Msg: "reading go.mod", Err: fmt.Errorf("open: %w", iofs.ErrNotExist)}, errclass.NotExist, true},
		{"403", &upstream.Error{Status: 403}, errclass.Denied, false},
		{"400", &upstream.Error{Status: 400}, errclass.Invalid, false},
		{"timeout", &upstream.Error{Msg: "timed out", Timeout: true}, errclass.Timeout, true},
		{"deadline", &upstream.Error{Msg: "go list failed", Err: context.DeadlineExceeded}, errclass.Timeout, true},
		{"500", &upstream.Error{Status: 500}, errclass.Unavailable, true},
		{"429", &upstream.Error{Status: 429}, errclass.Unavailable, true},
		{"401", &upstream.Error{Status: 401}, errclass.Unavailable, false},
		{"transport", &upstream.Error{Msg: "connection refused", Err: errors.New("dial")}, errclass.Unavailable, true},
		{"breaker open", &upstream.Error{Msg: "skipped", BreakerOpen: true}, errclass.Unavailable, true},
		{"too large", &upstream.Error{Msg: "too large", Err: upstream.ErrTooLarge}, errclass.Unavailable, false},
	} {
		if got := errclass.Of(fmt.Errorf("fill: %w", tc.err)); got != tc.want {
			t.Errorf("%s: class %v, want %v", tc.name, got, tc.want)
		}
		if got := tc.err.Transient(); got != tc.transient {
			t.Errorf("%s: Transient() = %v, want %v", tc.name, got, tc.transient)
		}
	}
}

// TestNotExistText: an adapter's not-found names no HTTP status it never
// received, and is fs.ErrNotExist.
func TestNotExistText(t *testing.T) {
	err := &upstream.Error{Upstream: "direct", Path: "example.com/a/@v/v1.0.0.info", NotExist: true, Msg: "unknown revision v1.0.0"}
	if got, want := err.Error(), "direct/example.com/a/@v/v1.0.0.info: unknown revision v1.0.0"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if !errors.Is(err, iofs.ErrNotExist) || !err.NotFound() {
		t.Errorf("not fs.ErrNotExist / NotFound: %v", err)
	}
}
