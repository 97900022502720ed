package admin

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/modproxy/modproxy/internal/access"
	"github.com/modproxy/modproxy/internal/cacheadmin"
)

// Options configures the admin handler.
type Options struct {
	// Backend serves the data; required.
	Backend Backend
	// Token, when not empty, is the bearer token every /api/ request must
	// carry. Without a token the API answers only requests addressed to an
	// IP literal or a localhost name (a defence against DNS rebinding), so
	// it is meant for loopback listeners; see RequireToken.
	Token string
	// Logger receives internal errors and admin actions; nil discards.
	Logger *slog.Logger
	// Access, when set, lets tokens and client certificates with the
	// admin scope use the API besides Token (see identify); callers are
	// then named in the log and, through the request context, in audit
	// records.
	Access *access.Service
	// Metrics, when set, is served at /metrics (without the token, like
	// /healthz: scrapers rarely carry one, and metrics hold no secrets).
	Metrics http.Handler
}

const (
	// maxBody bounds request bodies.
	maxBody = 1 << 20
	// Default and largest limits for list endpoints.
	defaultModulesLimit = 50
	maxModulesLimit     = 1000
	defaultAuditLimit   = 100
	maxAuditLimit       = 10000
	// actorName is the actor of every mutation made through the API; the
	// client address is appended.
	actorName = "admin"
)

// The dashboard's content security policy: everything from this origin
// only, no inline scripts or styles, no framing.
const pageCSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

//go:embed web
var webFS embed.FS

// New returns the admin handler: the JSON API under /api/, the dashboard
// at / and /static/, /healthz and, when set, /metrics. It panics when
// opts.Backend is nil.
func New(opts Options) http.Handler {
	if opts.Backend == nil {
		panic("admin: Options.Backend is nil")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	h := &handler{
		b:        opts.Backend,
		hasToken: opts.Token != "",
		tokenSum: sha256.Sum256([]byte(opts.Token)),
		access:   opts.Access,
		log:      opts.Logger,
		static:   loadStatic(),
	}
	h.routes = h.apiRoutes()
	maps.Copy(h.routes, h.advisoryRoutes())

	mux := http.NewServeMux()
	mux.HandleFunc("/api/", h.serveAPI)
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		io.WriteString(w, "ok\n")
	})
	if opts.Metrics != nil {
		mux.Handle("/metrics", opts.Metrics)
	}
	mux.HandleFunc("/static/", h.serveStatic)
	mux.HandleFunc("/{$}", h.serveStatic)

	// Browsers send Sec-Fetch-Site/Origin: a cross-site page cannot make
	// a logged-in (or tokenless loopback) browser purge the cache.
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusForbidden, "cross-origin request refused")
	}))
	protected := cop.Handler(mux)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Referrer-Policy", "no-referrer")
		protected.ServeHTTP(w, r)
	})
}

// RequireToken reports whether an admin listener on listenAddr (host:port,
// or a bare host) must have a token: true unless the host is a loopback
// address or "localhost". An empty host (all interfaces) and host names
// other than localhost need one.
func RequireToken(listenAddr string) bool {
	host, _, err := net.SplitHostPort(listenAddr)
	if err != nil {
		host = strings.TrimSuffix(strings.TrimPrefix(listenAddr, "["), "]")
	}
	if strings.EqualFold(host, "localhost") {
		return false
	}
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return true
	}
	return !addr.Unmap().IsLoopback()
}

type handler struct {
	b        Backend
	hasToken bool
	tokenSum [sha256.Size]byte
	access   *access.Service
	log      *slog.Logger
	routes   map[string]route
	static   map[string]staticFile
}

// apiFunc serves one API call: the value is sent as JSON with 200.
type apiFunc func(r *http.Request) (any, error)

// route maps methods to functions for one path. allow is the Allow header.
type route struct {
	methods map[string]apiFunc
	allow   string
}

func newRoute(m map[string]apiFunc) route {
	if f, ok := m[http.MethodGet]; ok {
		m[http.MethodHead] = f
	}
	order := []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodDelete}
	var allow []string
	for _, k := range order {
		if _, ok := m[k]; ok {
			allow = append(allow, k)
		}
	}
	return route{methods: m, allow: strings.Join(allow, ", ")}
}

func (h *handler) apiRoutes() map[string]route {
	get := func(f apiFunc) route { return newRoute(map[string]apiFunc{http.MethodGet: f}) }
	post := func(f apiFunc) route { return newRoute(map[string]apiFunc{http.MethodPost: f}) }
	return map[string]route{
		"/api/status":        get(h.status),
		"/api/upstreams":     get(h.upstreams),
		"/api/stats":         get(h.stats),
		"/api/modules":       get(h.modules),
		"/api/gc/plan":       get(h.gcPlan),
		"/api/gc/run":        post(h.gcRun),
		"/api/purge":         post(h.purge),
		"/api/trash":         get(h.trash),
		"/api/trash/restore": post(h.restore),
		"/api/pins": newRoute(map[string]apiFunc{
			http.MethodGet:    h.pins,
			http.MethodPost:   h.addPin,
			http.MethodDelete: h.removePin,
		}),
		"/api/audit":   get(h.audit),
		"/api/offline": post(h.offline),
		"/api/refresh": post(h.refresh), // refresh.go
		"/api/clients": get(h.clients),
	}
}

func (h *handler) serveAPI(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	r, err := h.identify(r)
	if err != nil {
		h.refuse(w, r, err)
		return
	}
	if _, ok := access.FromContext(r.Context()); !ok && !localHost(r.Host) {
		writeError(w, http.StatusForbidden,
			"the admin API without a token answers only requests addressed to localhost or an IP address")
		return
	}
	rt, ok := h.routes[r.URL.Path]
	if !ok {
		rt, ok = h.prefixRoute(r.URL.Path)
	}
	if !ok {
		writeError(w, http.StatusNotFound, "no such API endpoint")
		return
	}
	f, ok := rt.methods[r.Method]
	if !ok {
		w.Header().Set("Allow", rt.allow)
		writeError(w, http.StatusMethodNotAllowed, "method not allowed")
		return
	}
	if r.Body != nil {
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	}
	v, err := f(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

// localHost reports whether a Host header names an IP literal or
// localhost: names a DNS-rebinding page could use are refused.
func localHost(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		host = strings.TrimSuffix(strings.TrimPrefix(hostport, "["), "]")
	}
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	_, err = netip.ParseAddr(host)
	return err == nil
}

// fail maps err to a status, the one place that does: ErrBadRequest and
// cacheadmin.ErrInvalid 400, ErrNotFound and cacheadmin.ErrNotFound 404,
// cacheadmin.ErrConflict 409, cacheadmin.ErrUnavailable 503 with
// Retry-After, an oversized body 413, a body that is not
// JSON 415, anything else 500 with a generic message (the error itself is
// logged, never sent).
func (h *handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body larger than %d bytes", tooBig.Limit))
	case errors.Is(err, errMediaType):
		writeError(w, http.StatusUnsupportedMediaType, err.Error())
	case errors.Is(err, ErrBadRequest), errors.Is(err, cacheadmin.ErrInvalid):
		writeError(w, http.StatusBadRequest, err.Error())
	case errors.Is(err, ErrNotFound), errors.Is(err, cacheadmin.ErrNotFound):
		writeError(w, http.StatusNotFound, err.Error())
	case errors.Is(err, cacheadmin.ErrConflict):
		writeError(w, http.StatusConflict, err.Error())
	case errors.Is(err, cacheadmin.ErrUnavailable):
		w.Header().Set("Retry-After", "5")
		writeError(w, http.StatusServiceUnavailable, err.Error())
	default:
		level := slog.LevelError
		if r.Context().Err() != nil {
			level = slog.LevelDebug // the client went away
		}
		h.log.Log(r.Context(), level, "admin API error",
			"method", r.Method, "path", r.URL.Path, "err", err)
		writeError(w, http.StatusInternalServerError, "internal error; see the server log")
	}
}

// actor names the caller of a mutation: "admin@CLIENT-IP".
func actor(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	if host == "" {
		return actorName
	}
	return actorName + "@" + host
}

func (h *handler) logAction(r *http.Request, action string, attrs ...any) {
	if id := identityName(r); id != "" {
		attrs = append(attrs, "identity", id)
	}
	h.log.Info("admin action", append([]any{"action", action, "actor", actor(r)}, attrs...)...)
}

// errMediaType is a request body that is not declared as JSON.
var errMediaType = errors.New("request body must be JSON (Content-Type: application/json)")

func badRequest(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrBadRequest, fmt.Sprintf(format, args...))
}

// decode reads exactly one JSON object of type T from the body; unknown
// fields are errors, so a typo ("reson") does not pass silently.
func decode[T any](r *http.Request) (T, error) {
	var v T
	if r.Body == nil {
		return v, badRequest("request body required")
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/json" {
			return v, errMediaType
		}
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		var tooBig *http.MaxBytesError
		switch {
		case errors.As(err, &tooBig):
			return v, err
		case errors.Is(err, io.EOF):
			return v, badRequest("request body required")
		}
		return v, badRequest("invalid JSON: %v", err)
	}
	if err := dec.Decode(&struct{}{}); !errors.Is(err, io.EOF) {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return v, err
		}
		return v, badRequest("invalid JSON: one object expected")
	}
	return v, nil
}

// intParam parses an optional positive integer query parameter.
func intParam(r *http.Request, name string, def, max int) (int, error) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > max {
		return 0, badRequest("%s must be an integer from 1 to %d", name, max)
	}
	return n, nil
}

// timeParam parses an optional RFC 3339 query parameter.
func timeParam(r *http.Request, name string) (time.Time, error) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, badRequest("%s must be an RFC 3339 time such as 2006-01-02T15:04:05Z", name)
	}
	return t, nil
}

// --- endpoints ---

func (h *handler) status(r *http.Request) (any, error) { return h.b.Status(r.Context()) }

func (h *handler) upstreams(r *http.Request) (any, error) {
	v, err := h.b.Upstreams(r.Context())
	return nonNil(v), err
}

func (h *handler) stats(r *http.Request) (any, error) { return h.b.Stats(r.Context()) }

func (h *handler) modules(r *http.Request) (any, error) {
	limit, err := intParam(r, "limit", defaultModulesLimit, maxModulesLimit)
	if err != nil {
		return nil, err
	}
	q := strings.TrimSpace(r.URL.Query().Get("q"))
	v, err := h.b.Modules(r.Context(), q, limit)
	return nonNil(v), err
}

func (h *handler) gcPlan(r *http.Request) (any, error) { return h.b.GCPlan(r.Context()) }

func (h *handler) gcRun(r *http.Request) (any, error) {
	h.logAction(r, "gc-run")
	return h.b.GCRun(r.Context(), actor(r))
}

func (h *handler) purge(r *http.Request) (any, error) {
	req, err := decode[PurgeRequest](r)
	if err != nil {
		return nil, err
	}
	req.Module = strings.TrimSpace(req.Module)
	req.Versions = strings.TrimSpace(req.Versions)
	req.Reason = strings.TrimSpace(req.Reason)
	if req.Module == "" {
		return nil, badRequest("module is required")
	}
	if req.Reason == "" {
		return nil, badRequest("reason is required")
	}
	h.logAction(r, "purge", "module", req.Module, "versions", req.Versions,
		"reason", req.Reason, "block", req.Block, "hard", req.Hard)
	return h.b.Purge(r.Context(), actor(r), req)
}

func (h *handler) trash(r *http.Request) (any, error) {
	v, err := h.b.Trash(r.Context())
	return nonNil(v), err
}

func (h *handler) restore(r *http.Request) (any, error) {
	req, err := decode[struct {
		ID string `json:"id"`
	}](r)
	if err != nil {
		return nil, err
	}
	id := strings.TrimSpace(req.ID)
	if id == "" {
		return nil, badRequest("id is required")
	}
	h.logAction(r, "restore", "id", id)
	return h.b.Restore(r.Context(), actor(r), id)
}

func (h *handler) pins(r *http.Request) (any, error) {
	p, err := h.b.Pins(r.Context())
	p.Patterns, p.Sets = nonNil(p.Patterns), nonNil(p.Sets)
	return p, err
}

func pinRequest(r *http.Request) (PinRequest, error) {
	p, err := decode[PinRequest](r)
	if err != nil {
		return p, err
	}
	p.Pattern, p.Set = strings.TrimSpace(p.Pattern), strings.TrimSpace(p.Set)
	if (p.Pattern == "") == (p.Set == "") {
		return p, badRequest("exactly one of pattern and set is required")
	}
	return p, nil
}

func (h *handler) addPin(r *http.Request) (any, error) {
	p, err := pinRequest(r)
	if err != nil {
		return nil, err
	}
	h.logAction(r, "pin-add", "pattern", p.Pattern, "set", p.Set)
	if err := h.b.AddPin(r.Context(), actor(r), p); err != nil {
		return nil, err
	}
	return map[string]any{"ok": true, "added": p}, nil
}

func (h *handler) removePin(r *http.Request) (any, error) {
	p, err := pinRequest(r)
	if err != nil {
		return nil, err
	}
	h.logAction(r, "pin-remove", "pattern", p.Pattern, "set", p.Set)
	if err := h.b.RemovePin(r.Context(), actor(r), p); err != nil {
		return nil, err
	}
	return map[string]any{"ok": true, "removed": p}, nil
}

func (h *handler) audit(r *http.Request) (any, error) {
	q := r.URL.Query()
	aq := AuditQuery{
		Action:   strings.TrimSpace(q.Get("action")),
		Actor:    strings.TrimSpace(q.Get("actor")),
		Identity: strings.TrimSpace(q.Get("identity")),
		Target:   strings.TrimSpace(q.Get("target")),
	}
	var err error
	if aq.Since, err = timeParam(r, "since"); err != nil {
		return nil, err
	}
	if aq.Until, err = timeParam(r, "until"); err != nil {
		return nil, err
	}
	if !aq.Since.IsZero() && !aq.Until.IsZero() && aq.Until.Before(aq.Since) {
		return nil, badRequest("until is before since")
	}
	if aq.Limit, err = intParam(r, "limit", defaultAuditLimit, maxAuditLimit); err != nil {
		return nil, err
	}
	v, err := h.b.Audit(r.Context(), aq)
	return nonNil(v), err
}

func (h *handler) offline(r *http.Request) (any, error) {
	req, err := decode[struct {
		On *bool `json:"on"`
	}](r)
	if err != nil {
		return nil, err
	}
	if req.On == nil {
		return nil, badRequest(`"on" (true or false) is required`)
	}
	h.logAction(r, "offline", "on", *req.On)
	if err := h.b.SetOffline(r.Context(), actor(r), *req.On); err != nil {
		return nil, err
	}
	return map[string]bool{"offline": *req.On}, nil
}

// nonNil makes nil slices encode as [] rather than null.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// --- responses ---

func writeJSON(w http.ResponseWriter, code int, v any) {
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(v); err != nil {
		code = http.StatusInternalServerError
		buf.Reset()
		buf.WriteString(`{"error":"internal error: cannot encode the response"}` + "\n")
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(code)
	w.Write(buf.Bytes())
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}

// --- dashboard ---

type staticFile struct {
	data        []byte
	contentType string
	etag        string
}

// loadStatic reads the embedded web/ directory once.
func loadStatic() map[string]staticFile {
	files := map[string]staticFile{}
	err := fs.WalkDir(webFS, "web", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := webFS.ReadFile(p)
		if err != nil {
			return err
		}
		ct, ok := contentTypes[path.Ext(p)]
		if !ok {
			ct = "application/octet-stream"
		}
		sum := sha256.Sum256(data)
		files[strings.TrimPrefix(p, "web/")] = staticFile{
			data:        data,
			contentType: ct,
			etag:        `"` + hex.EncodeToString(sum[:8]) + `"`,
		}
		return nil
	})
	if err != nil {
		panic("admin: embedded web files: " + err.Error()) // cannot happen: embedded at build time
	}
	return files
}

// contentTypes are fixed rather than taken from the system's MIME tables,
// which differ between machines.
var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".svg":  "image/svg+xml",
}

func (h *handler) serveStatic(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	name := "index.html"
	if r.URL.Path != "/" {
		name = strings.TrimPrefix(r.URL.Path, "/static/")
	}
	f, ok := h.static[name]
	if !ok || name == "index.html" && r.URL.Path != "/" {
		http.NotFound(w, r)
		return
	}
	hdr := w.Header()
	hdr.Set("Content-Type", f.contentType)
	hdr.Set("ETag", f.etag)
	// Revalidate every time: after an upgrade the page and its script
	// must not come from different versions.
	hdr.Set("Cache-Control", "no-cache")
	hdr.Set("Content-Security-Policy", pageCSP)
	hdr.Set("X-Frame-Options", "DENY")
	http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(f.data))
}
