package goproxy

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"golang.org/x/mod/module"

	"github.com/modproxy/modproxy/internal/access"
)

// RefreshPath is where the protocol listener takes refresh requests (POST
// only; no module path can be "api/refresh": its first element has no
// dot).
const RefreshPath = "/api/refresh"

// Refresher drops the freshness of a module path's list, @latest and
// query answers in a namespace (see proxy.Service.Refresh), cluster-wide;
// identity is the authenticated caller's name (its refreshes are
// rate-limited), actor names it for the audit log. An error with a
// RetryAfter() time.Duration method (cacheadmin.RateLimitError) refuses
// the refresh for that long: 429 with Retry-After.
type Refresher func(ctx context.Context, identity, actor, namespace, module string) error

// refreshRequest is the body (or the query parameters) of a refresh; the
// same as the admin API's.
type refreshRequest struct {
	Module    string `json:"module"`
	Namespace string `json:"namespace,omitempty"`
}

// serveRefresh answers POST /api/refresh on the protocol listener: the
// caller needs a token (or certificate) whose grant has the publish scope
// for the module path in this handler's namespace (access.Allowed), or
// the admin scope, whatever auth.mode says. Answers are JSON, like the
// admin API's: 200 {"module","namespace"}; 400, 401 (with a Bearer
// challenge), 403, 415, 429 (with Retry-After: the identity's refreshes
// are rate-limited), 500 {"error"}.
func (h *Handler) serveRefresh(w *recorder, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	id, err := h.tokens.Authenticate(r)
	if err != nil {
		w.Header().Set("WWW-Authenticate", `Bearer realm="modproxy"`)
		jsonError(w, http.StatusUnauthorized, "a token with the publish scope is required")
		return
	}
	w.identity = id.Name
	req := refreshRequest{Module: r.URL.Query().Get("module")}
	if req.Module == "" {
		if ct := r.Header.Get("Content-Type"); ct != "" {
			if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
				jsonError(w, http.StatusUnsupportedMediaType, "the body must be JSON")
				return
			}
		}
		if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&req); err != nil {
			jsonError(w, http.StatusBadRequest, "the body is not a refresh request: "+err.Error())
			return
		}
	}
	req.Module = strings.TrimSpace(req.Module)
	if err := module.CheckPath(req.Module); err != nil {
		jsonError(w, http.StatusBadRequest, "module: "+err.Error())
		return
	}
	if req.Namespace != "" && req.Namespace != h.namespace {
		jsonError(w, http.StatusBadRequest, "namespace "+req.Namespace+": send the request to that namespace's URL (URL/NAME"+RefreshPath+")")
		return
	}
	if !h.tokens.Allowed(id, access.ScopePublish, h.namespace, req.Module) && !h.tokens.Allowed(id, access.ScopeAdmin, "", "") {
		jsonError(w, http.StatusForbidden, "the token may not publish "+req.Module)
		return
	}
	if err := h.refresh(r.Context(), id.Name, "token "+id.Name+"@"+remoteHost(r.RemoteAddr), h.namespace, req.Module); err != nil {
		var limited interface{ RetryAfter() time.Duration }
		if errors.As(err, &limited) {
			secs := max(1, int((limited.RetryAfter()+time.Second-1)/time.Second))
			w.Header().Set("Retry-After", strconv.Itoa(secs))
			jsonError(w, http.StatusTooManyRequests, "too many refreshes: retry in "+strconv.Itoa(secs)+"s")
			return
		}
		h.log.Error("refresh failed", "module", req.Module, "err", err)
		jsonError(w, http.StatusInternalServerError, "internal error")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(refreshRequest{Module: req.Module, Namespace: h.namespace})
}

func jsonError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(struct {
		Error string `json:"error"`
	}{msg})
}
