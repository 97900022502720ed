package goproxy

import (
	"compress/gzip"
	"context"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/modproxy/modproxy/internal/artifact"
)

// VulnDB is the vulnerability database served under /vuln/ (package
// vulndb): Open returns a file by its database path ("index/db.json",
// "index/modules.json", "ID/ID.json") with its modification time; errors
// carry their class (an unknown path Invalid, no database or entry
// NotExist: both 404).
type VulnDB interface {
	Open(ctx context.Context, name string) (io.ReadSeekCloser, time.Time, error)
}

const vulnNone = "no vulnerability database is served here"

// serveVuln answers /vuln/REST as the vulndb API does: each file as .json
// (ranges and preconditions through http.ServeContent) and as .json.gz,
// compressed while it is sent. The .gz form is the file's bytes gzipped,
// not a Content-Encoding: govulncheck reads the body with gzip itself.
func (h *Handler) serveVuln(w *recorder, r *http.Request, rest string) {
	if h.vuln == nil {
		textError(w, http.StatusNotFound, vulnNone)
		return
	}
	name, gz := strings.CutSuffix(rest, ".gz")
	f, mod, err := h.vuln.Open(r.Context(), name)
	if err != nil {
		h.serveError(w, r, artifact.Request{}, err)
		return
	}
	defer f.Close()
	hd := w.Header()
	hd.Set("Cache-Control", h.mutableCC)
	if !gz {
		hd.Set("Content-Type", "application/json")
		http.ServeContent(w, r, "", mod, f)
		return
	}
	hd.Set("Content-Type", "application/gzip")
	if !mod.IsZero() {
		hd.Set("Last-Modified", mod.UTC().Format(http.TimeFormat))
	}
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}
	zw, _ := gzip.NewWriterLevel(w, gzip.BestSpeed)
	if _, err := io.Copy(zw, f); err != nil {
		h.log.Warn("vulnerability database: sending failed", "path", r.URL.Path, "err", err)
		return
	}
	_ = zw.Close()
}
