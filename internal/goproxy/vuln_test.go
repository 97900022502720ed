package goproxy_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/modproxy/modproxy/internal/artifact"
	"github.com/modproxy/modproxy/internal/goproxy"
)

// fakeVuln serves fixed files; an unknown path is invalid, a missing
// file does not exist (as vulndb answers).
type fakeVuln map[string]string

var vulnTime = time.Date(2099, 1, 2, 3, 4, 5, 0, time.UTC)

func (f fakeVuln) Open(_ context.Context, name string) (io.ReadSeekCloser, time.Time, error) {
	if _, err := artifact.ParseVuln(name); err != nil {
		return nil, time.Time{}, err
	}
	s, ok := f[name]
	if !ok {
		return nil, time.Time{}, fmt.Errorf("%s: %w", name, fs.ErrNotExist)
	}
	return nopCloser{strings.NewReader(s)}, vulnTime, nil
}

type nopCloser struct{ io.ReadSeeker }

func (nopCloser) Close() error { return nil }

func TestVuln(t *testing.T) {
	db := fakeVuln{"index/db.json": `{"modified":"2099-01-02T03:04:05Z"}`, "index/modules.json": `[]`, "ID/GO-2099-0001.json": `{"id":"GO-2099-0001"}`}
	h := goproxy.New(goproxy.Options{Vuln: db})
	for name, want := range db {
		for _, gz := range []bool{false, true} {
			path := "/vuln/" + name
			if gz {
				path += ".gz"
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
			if rec.Code != 200 || rec.Header().Get("Last-Modified") != vulnTime.Format(http.TimeFormat) {
				t.Fatalf("GET %s: %d, Last-Modified %q", path, rec.Code, rec.Header().Get("Last-Modified"))
			}
			body := rec.Body.Bytes()
			ct := "application/json"
			if gz {
				ct = "application/gzip"
				zr, err := gzip.NewReader(bytes.NewReader(body))
				if err != nil {
					t.Fatalf("GET %s: %v", path, err)
				}
				if body, err = io.ReadAll(zr); err != nil {
					t.Fatal(err)
				}
			}
			if string(body) != want || rec.Header().Get("Content-Type") != ct || rec.Header().Get("Content-Encoding") != "" {
				t.Errorf("GET %s = %q (Content-Type %q, Content-Encoding %q), want %q as %s", path, body,
					rec.Header().Get("Content-Type"), rec.Header().Get("Content-Encoding"), want, ct)
			}
			rec = httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodHead, path, nil))
			if rec.Code != 200 || rec.Body.Len() != 0 || rec.Header().Get("Content-Type") != ct {
				t.Errorf("HEAD %s: %d, %d bytes, Content-Type %q", path, rec.Code, rec.Body.Len(), rec.Header().Get("Content-Type"))
			}
		}
	}
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "/vuln/index/db.json", nil)
	req.Header.Set("If-Modified-Since", vulnTime.Format(http.TimeFormat))
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusNotModified {
		t.Errorf("conditional GET: %d, want 304", rec.Code)
	}
	for _, p := range []string{"/vuln/ID/GO-2099-0002.json", "/vuln/ID/GO-2099-0002.json.gz", "/vuln/ID/../index/db.json", "/vuln/index/vulns.json", "/vuln/"} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, p, nil))
		if rec.Code != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", p, rec.Code)
		}
	}
	rec = httptest.NewRecorder()
	goproxy.New(goproxy.Options{}).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/vuln/index/db.json", nil))
	if rec.Code != http.StatusNotFound || !strings.Contains(rec.Body.String(), "no vulnerability database") {
		t.Errorf("without a database: %d %q", rec.Code, rec.Body.String())
	}
}
