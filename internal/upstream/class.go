package upstream

import (
	"context"
	"errors"
	iofs "io/fs"
	"net/http"

	"github.com/modproxy/modproxy/internal/errclass"
)

// Class implements errclass.Classer: NotExist for not-found answers (or a
// cause that is fs.ErrNotExist), Denied for an upstream's 403, Invalid for
// its 400, Timeout when the fetch ran out of time, and Unavailable
// otherwise (other statuses, transport failures, an open breaker, an
// oversized body).
//
// Upstreams answer 400 and 403 for what they will not serve (a path they
// consider malformed, a module their policy excludes): like a not-found,
// it is their final word on the path, so proxy remembers it for
// negative_ttl and never serves a stale copy over it; clients get a 404
// for a 400 (their "," list moves on; 400 under /sumdb/) and the 403.
func (e *Error) Class() errclass.Class {
	switch {
	case errors.Is(e, iofs.ErrNotExist):
		return errclass.NotExist
	case e.Status == http.StatusForbidden:
		return errclass.Denied
	case e.Status == http.StatusBadRequest:
		return errclass.Invalid
	case e.Timeout || errors.Is(e.Err, context.DeadlineExceeded):
		return errclass.Timeout
	}
	return errclass.Unavailable
}
