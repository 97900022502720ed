package goproxy

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"

	"github.com/modproxy/modproxy/internal/artifact"
	"github.com/modproxy/modproxy/internal/proxy"
	"github.com/modproxy/modproxy/internal/toolchain"
)

// Toolchains is what the handler needs from the toolchain mirror (package
// toolchain) to answer /dl/: the site's listing, archives and their
// SHA-256. cacheOnly asks for an answer from the cache alone.
type Toolchains interface {
	Listing(ctx context.Context, all, cacheOnly bool) (*toolchain.Listing, error)
	Archive(ctx context.Context, name string, cacheOnly bool) (*toolchain.Archive, error)
	SHA256(ctx context.Context, name string, cacheOnly bool) (string, error)
}

var (
	jsonCT   = []string{"application/json"}
	sha256CT = []string{"text/plain; charset=utf-8"}
)

// serveDL answers /dl/REST, the toolchain distribution site's paths:
// "?mode=json[&include=all]" (the listing, as the site answered it),
// FILE (an archive, verified when it was stored; Range and conditional
// requests through http.ServeContent) and FILE.sha256 (its SHA-256 in
// hex, as the site's download host answers it). Errors go through the
// answer table like every other path's: a file the listing does not name
// is 404, a mismatch 502 "SECURITY: ..." naming the file and both hashes,
// the site unreachable 502/504 with Retry-After.
func (h *Handler) serveDL(w *recorder, r *http.Request, rest string, cacheOnly bool) {
	switch {
	case h.dl == nil && h.namespace != "":
		textError(w, http.StatusNotFound, "not found: toolchains are not mirrored under a namespace; the toolchain mirror (when dl.source is set) is served at /dl/ only")
		return
	case h.dl == nil:
		textError(w, http.StatusNotFound, "not found: no toolchain distribution site is mirrored here (dl.source is not set)")
		return
	}
	ctx := r.Context()
	rest = strings.TrimLeft(rest, "/")
	switch {
	case rest == "":
		q := r.URL.Query()
		include := q.Get("include")
		if q.Get("mode") != "json" || (include != "" && include != "all") {
			textError(w, http.StatusNotFound, "not found: only the JSON listing is mirrored here (?mode=json, ?mode=json&include=all)")
			return
		}
		l, err := h.dl.Listing(ctx, include == "all", cacheOnly)
		if err != nil {
			h.serveError(w, r, artifact.Request{}, err)
			return
		}
		w.outcome = proxy.Outcome(l.Outcome)
		hd := w.Header()
		hd["Content-Type"] = jsonCT
		hd.Set("Cache-Control", h.mutableCC)
		hd.Set("Age", strconv.Itoa(int(l.Age.Seconds())))
		if l.Warning != "" {
			hd.Set("Warning", l.Warning)
		}
		http.ServeContent(w, r, "", l.ModTime, bytes.NewReader(l.Data))
	case strings.HasSuffix(rest, ".sha256"):
		sum, err := h.dl.SHA256(ctx, strings.TrimSuffix(rest, ".sha256"), cacheOnly)
		if err != nil {
			h.serveError(w, r, artifact.Request{}, err)
			return
		}
		hd := w.Header()
		hd["Content-Type"] = sha256CT
		hd["Cache-Control"] = immutableCCValue
		hd.Set("Content-Length", strconv.Itoa(len(sum)))
		w.WriteHeader(http.StatusOK)
		if r.Method != http.MethodHead {
			_, _ = io.WriteString(w, sum)
		}
	default:
		a, err := h.dl.Archive(ctx, rest, cacheOnly)
		if err != nil {
			h.serveError(w, r, artifact.Request{}, err)
			return
		}
		defer a.Close()
		w.outcome = proxy.Outcome(a.Outcome)
		info := a.Info()
		hd := w.Header()
		hd.Set("Content-Type", archiveType(rest))
		hd["Cache-Control"] = immutableCCValue
		if a.SHA256 != "" {
			hd.Set("ETag", `"sha256:`+a.SHA256+`"`)
		} else {
			hd.Set("ETag", proxy.ETag(info.Size, info.ModTime))
		}
		var content io.ReadSeeker = a.Object
		if f, ok := a.Object.(interface{ OSFile() *os.File }); ok {
			content = f.OSFile() // lets net/http use sendfile for the body
		}
		http.ServeContent(w, r, "", info.ModTime, content)
	}
}

// archiveType is the Content-Type of a distribution archive.
func archiveType(name string) string {
	switch {
	case strings.HasSuffix(name, ".tar.gz"):
		return "application/gzip"
	case strings.HasSuffix(name, ".zip"):
		return "application/zip"
	}
	return "application/octet-stream"
}
