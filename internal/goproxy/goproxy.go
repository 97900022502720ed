// Package goproxy is the HTTP face of modproxy: the GOPROXY protocol
// (module paths and /sumdb/NAME/...), the toolchain distribution site's
// mirror (/dl/, dl.go), the vulnerability database (/vuln/), health
// endpoints and the access log.
//
// It maps the domain's error classes (package errclass) to HTTP, in one
// table (answers), and nothing else decides statuses:
//
//	NotExist                 404 "not found: ..."
//	Invalid                  404 (so "," chains fall through); 400 under /sumdb/
//	Denied / Gone            403 / 410
//	Unavailable / Timeout    502 / 504 "timed out: ...", with Retry-After
//	StoreFull                503 "cache storage is full", with Retry-After
//	Integrity / Mismatch     502 / 502 "SECURITY: ..."
//	Unauthenticated          401 "authentication required: ...", WWW-Authenticate: Basic
//	Internal                 500 "internal error" (the error is logged)
//
// No request can make it read or write outside the store: paths are parsed
// by package artifact before anything else happens.
package goproxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/modproxy/modproxy/internal/access"
	"github.com/modproxy/modproxy/internal/accesslog"
	"github.com/modproxy/modproxy/internal/artifact"
	"github.com/modproxy/modproxy/internal/clients"
	"github.com/modproxy/modproxy/internal/errclass"
	"github.com/modproxy/modproxy/internal/hosted"
	"github.com/modproxy/modproxy/internal/metrics"
	"github.com/modproxy/modproxy/internal/proxy"
	"github.com/modproxy/modproxy/internal/upstream"
)

// Service is what the handler needs from the cache service.
type Service interface {
	Get(ctx context.Context, req artifact.Request) (*proxy.Result, error)
	SumDBSupported(name string) bool
}

// Options configures a Handler.
type Options struct {
	Service Service
	// Logger gets the access log (one line per request, see package
	// accesslog: formatted directly when its handler is an
	// *accesslog.Handler) and errors.
	Logger *slog.Logger
	// MutableMaxAge is the Cache-Control max-age of list, latest and query answers.
	MutableMaxAge time.Duration
	// Ready reports readiness for /readyz, with a detail text shown either
	// way; nil means always ready.
	Ready func(ctx context.Context) (string, error)
	// Metrics counts requests and serves /metrics when set.
	Metrics *metrics.Metrics
	// Observe, when set, is called after every protocol request with its
	// cache outcome ("" for errors), status and bytes sent.
	Observe func(outcome proxy.Outcome, status int, bytes int64)
	// Access, when set, requires an identity on every request but /healthz
	// and /readyz (401 with a Basic challenge otherwise) and limits module
	// reads to the identity's grant in Namespace ("" the root); a refused
	// module answers like a missing one (404).
	Access    *access.Service
	Namespace string
	// Toolchains, when set, answers /dl/ (the toolchain distribution
	// site's mirror); unset, /dl/ is 404.
	Toolchains Toolchains
	// Refresh and Tokens, when both set, serve POST /api/refresh
	// (refresh.go) for identities Tokens authenticates, whatever Access.
	Refresh Refresher
	Tokens  *access.Service
	// Publisher, when set, serves the publish API (POST
	// hosted.APIPrefix...); PublishToken is the token it requires when
	// Access is nil (the admin token; "" refuses publishing), and
	// MaxPublishBytes bounds an upload's body (default 512 MiB).
	Publisher       Publisher
	PublishToken    string
	MaxPublishBytes int64
	// HostedLog, when set, serves the private log of hosted modules under
	// /sumdb-hosted/ (the checksum database protocol); with Access, only
	// to identities that may read every private module here.
	HostedLog http.Handler
	// Clients, when set, counts every protocol request per identity
	// (requests, bytes, last seen, last module); one Tracker may be shared
	// by several handlers.
	Clients *clients.Tracker
	// Vuln, when set, is served under /vuln/ (nil: 404 there).
	Vuln VulnDB
}

// Handler serves the GOPROXY protocol. It is safe for concurrent use.
type Handler struct {
	svc       Service
	log       *slog.Logger
	mutableCC string
	ready     func(ctx context.Context) (string, error)
	metricsH  http.Handler
	kinds     [numKinds]*metrics.KindCounters // by artifact.Kind
	parsed    *artifact.ParseCache
	observe   func(outcome proxy.Outcome, status int, bytes int64)
	durations durationTimers
	access    *access.Service
	namespace string
	dl        Toolchains      // nil: /dl/ is not mirrored
	refresh   Refresher       // nil: no refresh endpoint
	tokens    *access.Service // authenticates refresh requests

	publisher    Publisher
	publishToken string
	maxPublish   int64
	hostedLog    http.Handler
	clients      *clients.Tracker
	vuln         VulnDB
}

// numKinds bounds the artifact kinds, for arrays indexed by kind.
const numKinds = artifact.SumDB + 1

// New returns a Handler.
func New(opts Options) *Handler {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	h := &Handler{
		svc:       opts.Service,
		log:       opts.Logger,
		mutableCC: fmt.Sprintf("public, max-age=%d", int(opts.MutableMaxAge.Seconds())),
		ready:     opts.Ready,
		observe:   opts.Observe,
		parsed:    artifact.NewParseCache(),
		access:    opts.Access,
		namespace: opts.Namespace,
		dl:        opts.Toolchains,
		vuln:      opts.Vuln,
		clients:   opts.Clients,

		publisher:    opts.Publisher,
		publishToken: opts.PublishToken,
		maxPublish:   opts.MaxPublishBytes,
		hostedLog:    opts.HostedLog,
	}
	if opts.Refresh != nil && opts.Tokens != nil {
		h.refresh, h.tokens = opts.Refresh, opts.Tokens
	}
	if h.maxPublish <= 0 {
		h.maxPublish = 512 << 20
	}
	if opts.Metrics != nil {
		h.metricsH = opts.Metrics.Handler()
	}
	for k := artifact.List; k < numKinds; k++ {
		h.kinds[k] = metrics.NewKindCounters(opts.Metrics, k.String())
	}
	h.durations = newDurationTimers(opts.Metrics)
	return h
}

const immutableCC = "public, max-age=31536000, immutable"

var (
	immutableCCValue = []string{immutableCC}
	contentTypes     = func() (ct [numKinds][]string) {
		for k := artifact.List; k < numKinds; k++ {
			ct[k] = []string{k.ContentType()}
		}
		return ct
	}()
)

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rec := &recorder{ResponseWriter: w, status: http.StatusOK}
	h.serve(rec, r)
	end := time.Now()
	if rec.kind != 0 {
		h.kinds[rec.kind].Request(rec.status)
		h.durations.observe(rec.kind, rec.outcome, end.Sub(start))
		if h.observe != nil {
			h.observe(rec.outcome, rec.status, rec.bytes)
		}
		h.clients.Observe(rec.identity, rec.module, rec.bytes, end)
	}
	accesslog.Log(r.Context(), h.log, &accesslog.Entry{Time: end, Method: r.Method, Path: r.URL.Path, Status: rec.status,
		Bytes: rec.bytes, Duration: end.Sub(start), Cache: string(rec.outcome), Remote: remoteHost(r.RemoteAddr), Identity: rec.identity, Level: logLevel(r.URL.Path)})
}

// remoteHost is the host of a request's RemoteAddr (the TCP peer), or
// the whole value when it has no port.
func remoteHost(addr string) string {
	if host, _, err := net.SplitHostPort(addr); err == nil {
		return host
	}
	return addr
}

// logLevel is the access log's level for a path: health probes, which
// load balancers and orchestrators send every few seconds, at debug.
func logLevel(path string) slog.Level {
	if path == "/healthz" || path == "/readyz" {
		return slog.LevelDebug
	}
	return slog.LevelInfo
}

func (h *Handler) serve(w *recorder, r *http.Request) {
	if r.Method == http.MethodPost && r.URL.Path == RefreshPath && h.refresh != nil {
		h.serveRefresh(w, r)
		return
	}
	if strings.HasPrefix(r.URL.Path, hosted.APIPrefix) {
		if h.access != nil && !h.authenticate(w, r) {
			return
		}
		h.servePublish(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		textError(w, http.StatusMethodNotAllowed, "method not allowed")
		return
	}
	p := r.URL.Path
	if h.access != nil && p != "/healthz" && p != "/readyz" {
		if !h.authenticate(w, r) {
			return
		}
	}
	switch p {
	case "/healthz":
		text(w, http.StatusOK, "ok")
		return
	case "/readyz":
		if h.ready != nil {
			detail, err := h.ready(r.Context())
			if err != nil {
				w.Header().Set("Cache-Control", "no-store")
				text(w, http.StatusServiceUnavailable, "not ready: "+err.Error()+"\n"+detail)
				return
			}
			text(w, http.StatusOK, "ready\n"+detail)
			return
		}
		text(w, http.StatusOK, "ready")
		return
	case "/", "":
		text(w, http.StatusOK, "modproxy: a caching Go module proxy. Use this URL as GOPROXY.")
		return
	case "/metrics":
		if h.metricsH != nil {
			h.metricsH.ServeHTTP(w, r)
			return
		}
	}
	if strings.HasPrefix(p, hostedLogPrefix+"/") && h.hostedLog != nil {
		h.serveHostedLog(w, r)
		return
	}
	if strings.ContainsRune(p, 0) || strings.Contains(r.URL.RawPath, "%00") {
		textError(w, http.StatusBadRequest, "bad path")
		return
	}
	// Cache-only requests: the /cached-only/ prefix (in the spirit of the
	// public mirror's) or "Cache-Control: only-if-cached" (RFC 9111).
	rest, cacheOnly := strings.CutPrefix(p, "/cached-only/")
	if cacheOnly {
		p = "/" + rest
	}
	if cacheOnly = cacheOnly || onlyIfCached(r.Header); cacheOnly {
		r = r.WithContext(proxy.CacheOnly(r.Context()))
	}
	if p == "/dl" || strings.HasPrefix(p, "/dl/") {
		h.serveDL(w, r, strings.TrimPrefix(p, "/dl"), cacheOnly)
		return
	}
	if rest, ok := strings.CutPrefix(p, "/sumdb/"); ok {
		h.serveSumDB(w, r, rest)
		return
	}
	if rest, ok := strings.CutPrefix(p, "/vuln/"); ok {
		h.serveVuln(w, r, rest)
		return
	}
	req, err := h.parsed.Parse(strings.TrimPrefix(p, "/"))
	if err != nil {
		h.serveError(w, r, artifact.Request{}, err)
		return
	}
	h.serveArtifact(w, r, req)
}

func (h *Handler) serveSumDB(w *recorder, r *http.Request, rest string) {
	req, err := artifact.ParseSumDB(rest)
	if err != nil {
		h.serveError(w, r, artifact.Request{Kind: artifact.SumDB}, err)
		return
	}
	if !h.svc.SumDBSupported(req.SumDBName) {
		textError(w, http.StatusNotFound, fmt.Sprintf("checksum database %s is not proxied here", req.SumDBName))
		return
	}
	if req.SumDBPath == "supported" {
		w.WriteHeader(http.StatusOK)
		return
	}
	h.serveArtifact(w, r, req)
}

func (h *Handler) serveArtifact(w *recorder, r *http.Request, req artifact.Request) {
	w.kind, w.module = req.Kind, req.Module
	if !h.mayRead(w, req) {
		h.serveError(w, r, req, &hiddenMiss{key: req.Key})
		return
	}
	res, err := h.svc.Get(serviceContext(w, r), req)
	if err != nil {
		h.serveError(w, r, req, err)
		return
	}
	defer res.Close()
	w.outcome = res.Outcome
	if res.Policy != nil {
		policyHeaders(w.Header(), res.Policy)
	}
	if res.Redirect != "" {
		w.Header().Set("Cache-Control", "private, max-age=60")
		if res.H1 != "" {
			w.Header().Set("X-Go-Checksum", res.H1)
		}
		http.Redirect(w, r, res.Redirect, http.StatusFound)
		return
	}
	hd := w.Header()
	// Shared, never-modified value slices: no allocation per request.
	hd["Content-Type"] = contentTypes[req.Kind]
	info := res.Object.Info()
	if res.HashHeaders != nil {
		hd["Etag"], hd["X-Go-Checksum"] = res.HashHeaders.ETag, res.HashHeaders.Checksum
	} else if res.H1 != "" {
		hd.Set("ETag", `"`+res.H1+`"`)
		hd.Set("X-Go-Checksum", res.H1)
	} else if res.Mem != nil {
		hd["Etag"] = res.Mem.ETag
	} else {
		hd.Set("ETag", proxy.ETag(info.Size, info.ModTime))
	}
	if req.Immutable() {
		hd["Cache-Control"] = immutableCCValue
	} else {
		hd.Set("Cache-Control", h.mutableCC)
		hd.Set("Age", strconv.Itoa(int(res.Age.Seconds())))
	}
	if res.Warning != "" {
		hd.Set("Warning", res.Warning)
	}
	if res.Mem != nil && plainRequest(r) {
		// Fast path for small cached files: every header is known and no
		// precondition or range needs evaluating.
		hd["Last-Modified"] = res.Mem.LastModified
		hd["Content-Length"] = res.Mem.ContentLength
		w.WriteHeader(http.StatusOK)
		if r.Method != http.MethodHead {
			_, _ = w.Write(res.Mem.Data)
		}
		return
	}
	var content io.ReadSeeker = res.Object
	if f, ok := res.Object.(interface{ OSFile() *os.File }); ok {
		content = f.OSFile() // lets net/http use sendfile for the body
	}
	http.ServeContent(w, r, "", info.ModTime, content)
}

// plainRequest reports a request without preconditions or ranges, which
// can be answered without http.ServeContent.
func plainRequest(r *http.Request) bool {
	h := r.Header
	return unset(h, "Range") && unset(h, "If-None-Match") && unset(h, "If-Modified-Since") &&
		unset(h, "If-Match") && unset(h, "If-Unmodified-Since") && unset(h, "If-Range")
}

// unset reports h.Get(key) == "" for a canonical key, without
// canonicalizing it again.
func unset(h http.Header, key string) bool {
	v := h[key]
	return len(v) == 0 || v[0] == ""
}

func onlyIfCached(h http.Header) bool {
	for _, v := range h["Cache-Control"] {
		for d := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(d), "only-if-cached") {
				return true
			}
		}
	}
	return false
}

// serveError answers a request that failed with err: the error's class
// (decided in the domain, errclass.Of) picks the answer from the table.
func (h *Handler) serveError(w *recorder, r *http.Request, req artifact.Request, err error) {
	if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		w.status = 499 // client went away; nothing to write
		return
	}
	if o := proxy.ErrorOutcome(err); o != "" {
		w.outcome = o
	}
	c := errclass.Of(err)
	a := answerFor(c, req.Kind == artifact.SumDB)
	msg := a.prefix + err.Error()
	if a.text != "" {
		msg = a.text
	}
	if c == errclass.NotExist && h.access != nil && req.Kind != artifact.SumDB && req.Module != "" {
		msg = notFoundText(req)
	}
	if a.challenge {
		w.Header()["Www-Authenticate"] = challenge
	}
	if a.log {
		h.log.Error("request failed", "key", req.Key, "err", err)
	}
	if c.Retry() {
		w.Header().Set("Retry-After", retryAfter)
	}
	textError(w, a.status, msg)
}

// answer is how an error class is answered over HTTP.
type answer struct {
	status int
	prefix string // put before the error's text
	text   string // shown instead of the error's text, which is not for clients
	log    bool   // the error is logged here (no one else logs it)
	// challenge asks for credentials (WWW-Authenticate: Basic).
	challenge bool
}

// answers maps every error class to its HTTP answer: the one place where
// domain errors become statuses. Invalid requests are 404, so that a
// client's "," list moves on, except under /sumdb/ (sumdbAnswers). A full
// store is 503: this server, not the upstream, cannot answer for now (the
// domain logs and counts it, with the local paths its text holds).
var answers = [errclass.NumClasses]answer{
	errclass.Internal:        {status: http.StatusInternalServerError, text: "internal error", log: true},
	errclass.NotExist:        {status: http.StatusNotFound, prefix: "not found: "},
	errclass.Invalid:         {status: http.StatusNotFound},
	errclass.Denied:          {status: http.StatusForbidden},
	errclass.Gone:            {status: http.StatusGone},
	errclass.Unavailable:     {status: http.StatusBadGateway},
	errclass.Timeout:         {status: http.StatusGatewayTimeout, prefix: "timed out: "},
	errclass.Integrity:       {status: http.StatusBadGateway},
	errclass.Mismatch:        {status: http.StatusBadGateway, prefix: "SECURITY: "},
	errclass.StoreFull:       {status: http.StatusServiceUnavailable, text: "cache storage is full: the answer could not be stored; try again later"},
	errclass.Unauthenticated: {status: http.StatusUnauthorized, prefix: "authentication required: ", challenge: true},
}

// sumdbAnswers are the answers that differ under /sumdb/.
var sumdbAnswers = map[errclass.Class]answer{
	errclass.Invalid: {status: http.StatusBadRequest},
}

// retryAfter is the Retry-After of answers whose class has the retry hint.
const retryAfter = "30"

func answerFor(c errclass.Class, sumdb bool) answer {
	if a, ok := sumdbAnswers[c]; ok && sumdb {
		return a
	}
	if int(c) < len(answers) {
		return answers[c]
	}
	return answers[errclass.Internal]
}

func text(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(code)
	fmt.Fprintln(w, msg)
}

func textError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	text(w, code, upstream.Sanitize(msg, 500))
}

// recorder captures what the access log needs.
type recorder struct {
	http.ResponseWriter
	status  int
	bytes   int64
	outcome proxy.Outcome
	kind    artifact.Kind
	wrote   bool
	// identity is the authenticated identity's name ("" with auth off).
	identity string
	// id is the authenticated identity (nil with auth off).
	id *access.Identity
	// module is the module path of the request, when it names one.
	module string
}

func (r *recorder) WriteHeader(code int) {
	if !r.wrote {
		r.status, r.wrote = code, true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(p []byte) (int, error) {
	r.wrote = true
	n, err := r.ResponseWriter.Write(p)
	r.bytes += int64(n)
	return n, err
}

// ReadFrom passes bodies on to the underlying writer's ReadFrom (sendfile
// for files on a TCP connection), counting the bytes.
func (r *recorder) ReadFrom(src io.Reader) (int64, error) {
	r.wrote = true
	var n int64
	var err error
	if rf, ok := r.ResponseWriter.(io.ReaderFrom); ok {
		n, err = rf.ReadFrom(src)
	} else {
		n, err = io.Copy(r.ResponseWriter, src)
	}
	r.bytes += n
	return n, err
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
