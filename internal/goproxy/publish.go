package goproxy

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"strings"
	"time"

	"golang.org/x/mod/module"

	"github.com/modproxy/modproxy/internal/access"
	"github.com/modproxy/modproxy/internal/hosted"
)

// Publisher is what the publish API needs of the hosted modules.
type Publisher interface {
	Publish(ctx context.Context, u hosted.Upload) (hosted.Result, error)
}

// publishAnswers maps the hosted package's errors to statuses: the publish
// API's part of the one table (answers covers the protocol).
var publishAnswers = []struct {
	err    error
	status int
}{
	{hosted.ErrInvalid, http.StatusBadRequest},
	{hosted.ErrNotHosted, http.StatusForbidden},
	{hosted.ErrConflict, http.StatusConflict},
	{hosted.ErrPurged, http.StatusGone},
	{hosted.ErrUnavailable, http.StatusServiceUnavailable},
}

// publishReadTimeout bounds reading an authorised upload's body.
const publishReadTimeout = 30 * time.Minute

// PublishReply is the JSON answer of a successful publish.
type PublishReply struct {
	Module   string `json:"module"`
	Version  string `json:"version"`
	Created  bool   `json:"created"` // false: the same bytes were published before (200)
	H1       string `json:"h1"`
	GoModH1  string `json:"go_mod_h1"`
	LogIndex int64  `json:"log_index"`
}

// servePublish answers POST /api/publish/MODULE/@v/VERSION (see
// hosted.APIPrefix for the body). With authentication required, the
// identity needs the publish scope for the module in this namespace
// (403 otherwise); with it off, the request must carry the admin token
// as a Bearer token (401 otherwise), and without an admin token
// publishing is refused (403).
func (h *Handler) servePublish(w *recorder, r *http.Request) {
	if h.publisher == nil {
		textError(w, http.StatusNotFound, "not found: no hosted modules are configured")
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		textError(w, http.StatusMethodNotAllowed, "method not allowed")
		return
	}
	rest := strings.TrimPrefix(r.URL.Path, hosted.APIPrefix)
	epath, evers, ok := strings.Cut(rest, "/@v/")
	path, err1 := module.UnescapePath(epath)
	vers, err2 := module.UnescapeVersion(evers)
	if !ok || err1 != nil || err2 != nil {
		textError(w, http.StatusBadRequest, "bad publish path: want "+hosted.APIPrefix+"MODULE/@v/VERSION (escaped as in the protocol)")
		return
	}
	identity, ok := h.mayPublish(w, r, path)
	if !ok {
		return
	}
	// An authorised upload may take longer than server.read_timeout, which
	// bounds every other request (GETs without bodies).
	_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(publishReadTimeout))
	r.Body = http.MaxBytesReader(w, r.Body, h.maxPublish)
	mr, err := r.MultipartReader()
	if err != nil {
		textError(w, http.StatusBadRequest, "want a multipart/form-data body: "+err.Error())
		return
	}
	u := hosted.Upload{Namespace: h.namespace, Module: path, Version: vers, Identity: identity}
	for u.Zip == nil {
		part, err := mr.NextPart()
		if err != nil {
			textError(w, http.StatusBadRequest, "incomplete upload: want the parts info (optional), mod and zip, in that order: "+err.Error())
			return
		}
		switch part.FormName() {
		case hosted.PartInfo:
			u.Info, err = readPart(part, hosted.MaxInfo)
		case hosted.PartMod:
			u.Mod, err = readPart(part, hosted.MaxMod)
		case hosted.PartZip:
			u.Zip = part
		default:
			err = fmt.Errorf("unknown part %q", part.FormName())
		}
		if err != nil {
			textError(w, http.StatusBadRequest, err.Error())
			return
		}
	}
	res, err := h.publisher.Publish(r.Context(), u)
	if err != nil {
		h.publishError(w, r, err)
		return
	}
	status := http.StatusOK
	if res.Created {
		status = http.StatusCreated
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(PublishReply{Module: path, Version: vers, Created: res.Created, H1: res.Zip, GoModH1: res.Mod, LogIndex: res.Index})
}

func readPart(p *multipart.Part, max int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(p, max+1))
	if err != nil {
		return nil, fmt.Errorf("reading part %s: %w", p.FormName(), err)
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("part %s is larger than %d bytes", p.FormName(), max)
	}
	return b, nil
}

// mayPublish decides who may publish path here, answering the request
// itself when no one may. It returns the identity's name.
func (h *Handler) mayPublish(w *recorder, r *http.Request, path string) (string, bool) {
	if h.access != nil { // authenticated by serve already
		id := w.identityOrZero()
		if !h.access.Allowed(id, access.ScopePublish, h.namespace, path) {
			textError(w, http.StatusForbidden, fmt.Sprintf("forbidden: %s may not publish %s here (needs the publish scope for it)", id.Name, path))
			return "", false
		}
		return id.Name, true
	}
	if h.publishToken == "" {
		textError(w, http.StatusForbidden, "publishing is off: it needs auth.mode = \"required\" (a token with the publish scope) or an admin.token")
		return "", false
	}
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || subtle.ConstantTimeCompare([]byte(tok), []byte(h.publishToken)) != 1 {
		w.Header()["Www-Authenticate"] = []string{`Bearer realm="modproxy"`}
		textError(w, http.StatusUnauthorized, "authentication required: publishing needs the admin token (Authorization: Bearer)")
		return "", false
	}
	w.identity = "admin"
	return "admin", true
}

func (h *Handler) publishError(w *recorder, r *http.Request, err error) {
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		textError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("upload larger than %d bytes", tooBig.Limit))
		return
	}
	if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		w.status = 499
		return
	}
	for _, a := range publishAnswers {
		if errors.Is(err, a.err) {
			textError(w, a.status, err.Error())
			return
		}
	}
	h.log.Error("publish failed", "path", r.URL.Path, "err", err)
	textError(w, http.StatusInternalServerError, "internal error")
}

// hostedLogPrefix is where the private log of hosted modules is served.
const hostedLogPrefix = "/sumdb-hosted"

// serveHostedLog serves the private log (x/mod's checksum database
// server chooses those answers). Its records name every hosted module, so
// with authentication required only an identity that may read every
// private module in this namespace (the read scope and no Match patterns)
// sees it; others get the answer of a missing path.
func (h *Handler) serveHostedLog(w *recorder, r *http.Request) {
	if h.access != nil {
		id := w.identityOrZero()
		if !h.access.Allowed(id, access.ScopeRead, h.namespace, "") || len(id.Grant.Match) > 0 {
			textError(w, http.StatusNotFound, "not found: "+strings.TrimPrefix(r.URL.Path, "/"))
			return
		}
	}
	w.Header().Set("Cache-Control", "no-store")
	http.StripPrefix(hostedLogPrefix, h.hostedLog).ServeHTTP(w, r)
}
