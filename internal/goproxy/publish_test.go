package goproxy_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/modproxy/modproxy/internal/goproxy"
	"github.com/modproxy/modproxy/internal/hosted"
)

// fakePublisher records uploads and answers with err.
type fakePublisher struct {
	err  error
	got  []hosted.Upload
	zips []string
}

func (f *fakePublisher) Publish(_ context.Context, u hosted.Upload) (hosted.Result, error) {
	b, err := io.ReadAll(u.Zip)
	if err != nil {
		return hosted.Result{}, fmt.Errorf("reading the zip: %w", err)
	}
	f.got = append(f.got, u)
	f.zips = append(f.zips, string(b))
	if f.err != nil {
		return hosted.Result{}, f.err
	}
	return hosted.Result{Created: true, Zip: "h1:zip", Mod: "h1:mod", Index: 7}, nil
}

func multipartBody(t *testing.T, parts ...string) (*bytes.Buffer, string) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for i := 0; i+1 < len(parts); i += 2 {
		w, err := mw.CreateFormFile(parts[i], parts[i])
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(w, parts[i+1]); err != nil {
			t.Fatal(err)
		}
	}
	if err := mw.Close(); err != nil {
		t.Fatal(err)
	}
	return &buf, mw.FormDataContentType()
}

func TestPublishHandler(t *testing.T) {
	for _, tc := range []struct {
		name, method, path, token string
		parts                     []string
		pubErr                    error
		max                       int64
		want                      int
	}{
		{name: "created", path: "/api/publish/corp.example.com/!lib/@v/v1.0.0", token: "admin", parts: []string{"info", "{}", "mod", "module m\n", "zip", "ZIP"}, want: 201},
		{name: "wrong token", path: "/api/publish/corp.example.com/lib/@v/v1.0.0", token: "nope", parts: []string{"mod", "m", "zip", "z"}, want: 401},
		{name: "no token", path: "/api/publish/corp.example.com/lib/@v/v1.0.0", parts: []string{"mod", "m", "zip", "z"}, want: 401},
		{name: "GET", method: "GET", path: "/api/publish/corp.example.com/lib/@v/v1.0.0", token: "admin", want: 405},
		{name: "bad path", path: "/api/publish/corp.example.com/lib", token: "admin", parts: []string{"mod", "m", "zip", "z"}, want: 400},
		{name: "no zip part", path: "/api/publish/corp.example.com/lib/@v/v1.0.0", token: "admin", parts: []string{"mod", "m"}, want: 400},
		{name: "unknown part", path: "/api/publish/corp.example.com/lib/@v/v1.0.0", token: "admin", parts: []string{"readme", "x", "zip", "z"}, want: 400},
		{name: "too large", path: "/api/publish/corp.example.com/lib/@v/v1.0.0", token: "admin", parts: []string{"mod", "m", "zip", strings.Repeat("z", 4096)}, max: 1024, want: 413},
		{name: "invalid", path: "/api/publish/corp.example.com/lib/@v/v1.0.0", token: "admin", parts: []string{"mod", "m", "zip", "z"}, pubErr: fmt.Errorf("x: %w", hosted.ErrInvalid), want: 400},
		{name: "not hosted", path: "/api/publish/corp.example.com/lib/@v/v1.0.0", token: "admin", parts: []string{"mod", "m", "zip", "z"}, pubErr: hosted.ErrNotHosted, want: 403},
		{name: "conflict", path: "/api/publish/corp.example.com/lib/@v/v1.0.0", token: "admin", parts: []string{"mod", "m", "zip", "z"}, pubErr: hosted.ErrConflict, want: 409},
		{name: "purged", path: "/api/publish/corp.example.com/lib/@v/v1.0.0", token: "admin", parts: []string{"mod", "m", "zip", "z"}, pubErr: hosted.ErrPurged, want: 410},
		{name: "undecidable", path: "/api/publish/corp.example.com/lib/@v/v1.0.0", token: "admin", parts: []string{"mod", "m", "zip", "z"}, pubErr: hosted.ErrUnavailable, want: 503},
		{name: "other failure", path: "/api/publish/corp.example.com/lib/@v/v1.0.0", token: "admin", parts: []string{"mod", "m", "zip", "z"}, pubErr: io.ErrUnexpectedEOF, want: 500},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pub := &fakePublisher{err: tc.pubErr}
			h := goproxy.New(goproxy.Options{Publisher: pub, PublishToken: "admin", MaxPublishBytes: tc.max})
			body, ct := multipartBody(t, tc.parts...)
			method := tc.method
			if method == "" {
				method = "POST"
			}
			req := httptest.NewRequest(method, tc.path, body)
			req.Header.Set("Content-Type", ct)
			if tc.token != "" {
				req.Header.Set("Authorization", "Bearer "+tc.token)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tc.want {
				t.Fatalf("status %d, want %d: %s", rec.Code, tc.want, rec.Body)
			}
			if tc.want == 201 {
				u := pub.got[0]
				if u.Module != "corp.example.com/Lib" || u.Version != "v1.0.0" || string(u.Mod) != "module m\n" || string(u.Info) != "{}" || pub.zips[0] != "ZIP" || u.Identity != "admin" {
					t.Fatalf("upload %+v zip %q", u, pub.zips[0])
				}
				if !strings.Contains(rec.Body.String(), `"log_index":7`) {
					t.Fatalf("reply %s", rec.Body)
				}
			}
		})
	}
}

// TestPublishRefusedWithoutToken: with authentication off and no admin
// token, no one may publish; without hosted modules there is no API.
func TestPublishRefusedWithoutToken(t *testing.T) {
	for _, tc := range []struct {
		opts goproxy.Options
		want int
	}{
		{goproxy.Options{Publisher: &fakePublisher{}}, http.StatusForbidden},
		{goproxy.Options{}, http.StatusNotFound},
	} {
		body, ct := multipartBody(t, "mod", "m", "zip", "z")
		req := httptest.NewRequest("POST", "/api/publish/corp.example.com/lib/@v/v1.0.0", body)
		req.Header.Set("Content-Type", ct)
		req.Header.Set("Authorization", "Bearer ")
		rec := httptest.NewRecorder()
		goproxy.New(tc.opts).ServeHTTP(rec, req)
		if rec.Code != tc.want {
			t.Errorf("status %d, want %d: %s", rec.Code, tc.want, rec.Body)
		}
	}
}
