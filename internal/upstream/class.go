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
// its 400 (the request is malformed: a client's "," list should move on),
// Timeout when the fetch ran out of time, and Unavailable otherwise (other
// statuses, transport failures, an open breaker, an oversized body).
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
