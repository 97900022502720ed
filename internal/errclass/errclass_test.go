package errclass_test

import (
	"context"
	"errors"
	"fmt"
	iofs "io/fs"
	"os"
	"syscall"
	"testing"

	"github.com/modproxy/modproxy/internal/errclass"
)

type classed struct {
	c   errclass.Class
	err error
}

func (e *classed) Error() string         { return "classed" }
func (e *classed) Unwrap() error         { return e.err }
func (e *classed) Class() errclass.Class { return e.c }

func TestOf(t *testing.T) {
	sentinel := errclass.New(errclass.Invalid, "bad path")
	for _, tc := range []struct {
		name string
		err  error
		want errclass.Class
	}{
		{"nil", nil, errclass.Internal},
		{"plain", errors.New("disk on fire"), errclass.Internal},
		{"not exist", fmt.Errorf("open x: %w", iofs.ErrNotExist), errclass.NotExist},
		{"deadline", fmt.Errorf("fill: %w", context.DeadlineExceeded), errclass.Timeout},
		{"canceled", fmt.Errorf("fill: %w", context.Canceled), errclass.Internal},
		{"classer", &classed{c: errclass.Gone}, errclass.Gone},
		{"wrapped classer", fmt.Errorf("a: %w", fmt.Errorf("b: %w", &classed{c: errclass.Mismatch})), errclass.Mismatch},
		// The error's own class beats what its cause would say.
		{"classer over not exist", &classed{c: errclass.Integrity, err: iofs.ErrNotExist}, errclass.Integrity},
		{"classer over deadline", &classed{c: errclass.Unavailable, err: context.DeadlineExceeded}, errclass.Unavailable},
		// The outermost classer wins.
		{"outermost", &classed{c: errclass.Denied, err: &classed{c: errclass.NotExist}}, errclass.Denied},
		// A full local disk decides whatever wraps it.
		{"no space", &iofs.PathError{Op: "write", Path: "tmp/put-1", Err: syscall.ENOSPC}, errclass.StoreFull},
		{"quota", fmt.Errorf("put k: %w", &os.LinkError{Op: "rename", Old: "a", New: "b", Err: syscall.EDQUOT}), errclass.StoreFull},
		{"no space under a classer", &classed{c: errclass.Unavailable, err: os.NewSyscallError("write", syscall.ENOSPC)}, errclass.StoreFull},
		{"other errno", &iofs.PathError{Op: "write", Path: "x", Err: syscall.EIO}, errclass.Internal},
		{"sentinel", sentinel, errclass.Invalid},
		{"wrapped sentinel", fmt.Errorf("%w: %w", sentinel, errors.New("detail")), errclass.Invalid},
	} {
		if got := errclass.Of(tc.err); got != tc.want {
			t.Errorf("%s: Of(%v) = %v, want %v", tc.name, tc.err, got, tc.want)
		}
	}
	if err := fmt.Errorf("x: %w", sentinel); !errors.Is(err, sentinel) || sentinel.Error() != "bad path" {
		t.Errorf("sentinel: Is %v, text %q", errors.Is(err, sentinel), sentinel.Error())
	}
}

func TestVariants(t *testing.T) {
	all := map[errclass.Class]struct {
		kind  errclass.Class
		retry bool
		name  string
	}{
		errclass.Internal:        {errclass.Internal, false, "internal"},
		errclass.NotExist:        {errclass.NotExist, false, "not-exist"},
		errclass.Invalid:         {errclass.Invalid, false, "invalid"},
		errclass.Denied:          {errclass.Denied, false, "denied"},
		errclass.Gone:            {errclass.Denied, false, "gone"},
		errclass.Unavailable:     {errclass.Unavailable, true, "unavailable"},
		errclass.Timeout:         {errclass.Unavailable, true, "timeout"},
		errclass.Integrity:       {errclass.Integrity, false, "integrity"},
		errclass.Mismatch:        {errclass.Integrity, false, "mismatch"},
		errclass.StoreFull:       {errclass.Unavailable, true, "store-full"},
		errclass.Unauthenticated: {errclass.Unauthenticated, false, "unauthenticated"},
	}
	if len(all) != errclass.NumClasses {
		t.Errorf("the test lists %d classes, the package has %d", len(all), errclass.NumClasses)
	}
	for c, want := range all {
		if c.Kind() != want.kind || c.Retry() != want.retry || c.String() != want.name {
			t.Errorf("%v: Kind %v, Retry %v, String %q; want %v, %v, %q", c, c.Kind(), c.Retry(), c.String(), want.kind, want.retry, want.name)
		}
	}
	if s := errclass.Class(errclass.NumClasses).String(); s != fmt.Sprintf("Class(%d)", errclass.NumClasses) {
		t.Errorf("out of range: %q", s)
	}
}
