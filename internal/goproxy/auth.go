package goproxy

import (
	"context"
	"net/http"

	"github.com/modproxy/modproxy/internal/access"
	"github.com/modproxy/modproxy/internal/artifact"
	"github.com/modproxy/modproxy/internal/errclass"
)

// challenge is the WWW-Authenticate of unauthenticated answers: Basic, so
// that the go command sends its netrc credentials (the token as password).
var challenge = []string{`Basic realm="modproxy"`}

// authError is a failed authentication (an *access.AuthError), of class
// errclass.Unauthenticated.
type authError struct{ err error }

func (e *authError) Error() string         { return e.err.Error() }
func (e *authError) Unwrap() error         { return e.err }
func (e *authError) Class() errclass.Class { return errclass.Unauthenticated }

// authenticate establishes the identity of r when authentication is
// required, keeping it in the recorder (for the access log, the grant
// check and the service's context; no copy of the request). It answers
// the request itself (401, logged) and returns false when there is none.
func (h *Handler) authenticate(w *recorder, r *http.Request) bool {
	id, err := h.access.Authenticate(r)
	if err != nil {
		h.log.Info("authentication failed", "path", r.URL.Path, "remote", r.RemoteAddr, "err", err)
		h.serveError(w, r, artifact.Request{}, &authError{err: err})
		return false
	}
	w.identity, w.id = id.Name, &id
	return true
}

// identityOrZero is the identity authenticate established, the zero
// Identity without one.
func (w *recorder) identityOrZero() access.Identity {
	if w.id == nil {
		return access.Identity{}
	}
	return *w.id
}

// serviceContext is the context the cache service gets for r: with the
// identity (access.NewContext, for audit records of a fill) when there is
// one.
func serviceContext(w *recorder, r *http.Request) context.Context {
	if w.id == nil {
		return r.Context()
	}
	return access.NewContextOf(r.Context(), w.id)
}

// mayRead reports whether the request's identity may read req (always when
// authentication is off). Checksum database paths are readable by every
// authenticated identity.
func (h *Handler) mayRead(w *recorder, req artifact.Request) bool {
	if h.access == nil || req.Kind == artifact.SumDB {
		return true
	}
	if w.id == nil {
		return false
	}
	return h.access.Allowed(*w.id, access.ScopeRead, h.namespace, req.Module)
}

// hiddenMiss is the answer to a module the identity may not read: the
// same as a miss (see notFoundText), so that its existence does not leak.
type hiddenMiss struct{ key string }

func (e *hiddenMiss) Error() string         { return e.key }
func (e *hiddenMiss) Class() errclass.Class { return errclass.NotExist }

// notFoundText is the text of every module not-found answer when
// authentication is required: the request's path only, so that a module
// refused to the identity and one that does not exist answer alike (an
// upstream's or version control's detail would tell them apart).
func notFoundText(req artifact.Request) string { return "not found: " + req.Key }
