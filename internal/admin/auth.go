package admin

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"net/http"
	"strings"

	"github.com/modproxy/modproxy/internal/access"
)

// BootstrapIdentity is the name audit records give the configured admin
// token (admin.token): not a valid token name, so no token can pass for it.
const BootstrapIdentity = "(admin.token)"

// errForbidden is an identity without the admin scope.
var errForbidden = errors.New("the identity lacks the admin scope")

// identify establishes who calls the API. It returns r with the identity
// in its context (access.NewContext) when there is one, and an error of
// class access.ErrUnauthenticated, access.ErrInvalid or access.ErrRejected
// (answered 401) or errForbidden (403) when the call is refused.
//
// The configured token is compared in constant time (both sides hashed
// first, so neither the length nor the first differing byte shows).
// Otherwise, with an access service, the credentials presented (a token
// of the service, Bearer or Basic, or a verified client certificate) must
// be an identity with the admin scope. Without credentials and without a
// configured token the call passes with no identity (the loopback API of
// a server without tokens).
func (h *handler) identify(r *http.Request) (*http.Request, error) {
	if h.hasToken && h.isAdminToken(r) {
		id := access.Identity{Name: BootstrapIdentity, Grant: access.Grant{Scopes: []access.Scope{access.ScopeAdmin}}}
		return r.WithContext(access.NewContext(r.Context(), id)), nil
	}
	presented := len(r.Header["Authorization"]) > 0 ||
		r.TLS != nil && len(r.TLS.VerifiedChains) > 0
	if h.access != nil && presented {
		id, err := h.access.Authenticate(r)
		if err != nil {
			return r, err
		}
		if !h.access.Allowed(id, access.ScopeAdmin, "", "") {
			return r, &access.AuthError{Class: errForbidden, Reason: "no admin scope", Name: id.Name}
		}
		return r.WithContext(access.NewContext(r.Context(), id)), nil
	}
	if h.hasToken {
		if presented {
			return r, &access.AuthError{Class: access.ErrRejected, Reason: "not the admin token"}
		}
		return r, &access.AuthError{Class: access.ErrUnauthenticated, Reason: "no bearer token"}
	}
	return r, nil
}

// isAdminToken reports whether r carries the configured token as Bearer.
func (h *handler) isAdminToken(r *http.Request) bool {
	const scheme = "Bearer "
	v := r.Header.Get("Authorization")
	if len(v) < len(scheme) || !strings.EqualFold(v[:len(scheme)], scheme) {
		return false
	}
	got := sha256.Sum256([]byte(strings.TrimSpace(v[len(scheme):])))
	return subtle.ConstantTimeCompare(got[:], h.tokenSum[:]) == 1
}

// refuse answers a call identify refused: 403 for an identity without the
// admin scope, 401 with a Bearer challenge otherwise. The reason is
// logged (never a secret: AuthError texts hold none).
func (h *handler) refuse(w http.ResponseWriter, r *http.Request, err error) {
	h.log.Info("admin API authentication failed", "path", r.URL.Path, "remote", r.RemoteAddr, "err", err)
	if errors.Is(err, errForbidden) {
		writeError(w, http.StatusForbidden, "this identity may not use the admin API (it needs the admin scope)")
		return
	}
	challenge := `Bearer realm="modproxy admin"`
	if r.Header.Get("Authorization") != "" {
		challenge += `, error="invalid_token"`
	}
	w.Header().Set("WWW-Authenticate", challenge)
	writeError(w, http.StatusUnauthorized, "missing or invalid bearer token")
}

// identityName is the name of the identity r's context carries, or "".
func identityName(r *http.Request) string {
	id, _ := access.FromContext(r.Context())
	return id.Name
}
