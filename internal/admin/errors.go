// Package admin is modproxy's admin API (JSON) and web dashboard, served on
// their own listener. It depends on a Backend, implemented by internal/app.
package admin

import "errors"

// Errors a Backend wraps to choose the HTTP status (besides the error
// classes of package cacheadmin; see handler.fail).
var (
	ErrBadRequest = errors.New("bad request")
	ErrNotFound   = errors.New("not found")
)
