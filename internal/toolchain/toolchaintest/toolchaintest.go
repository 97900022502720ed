// Package toolchaintest is a fake Go toolchain distribution site for
// tests, on loopback: a JSON listing ("?mode=json": the newest release;
// "?mode=json&include=all": every release) with the SHA-256 and size of
// archives made in the test, the archives themselves (each answered with a
// redirect to a download path, as the real site does), request counting
// and faults (a tampered archive, the site down, held archive downloads).
package toolchaintest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// File is an archive of a release.
type File struct {
	Name    string // e.g. go1.22.0.linux-amd64.tar.gz
	Version string // e.g. go1.22.0
	Data    []byte
}

// Archive returns the file name of release version (name is
// "VERSION.OS-ARCH.tar.gz" or the like) holding size pseudo-random bytes,
// the same for the same name and size.
func Archive(version, name string, size int) File {
	var seed [32]byte
	copy(seed[:], name)
	data := make([]byte, size)
	_, _ = rand.NewChaCha8(seed).Read(data)
	return File{Name: name, Version: version, Data: data}
}

// SHA256 is the hex SHA-256 of the file's data.
func (f File) SHA256() string {
	h := sha256.Sum256(f.Data)
	return hex.EncodeToString(h[:])
}

// Site is a running fake distribution site.
type Site struct {
	// URL is the site's base URL (the listing is URL+"/?mode=json", an
	// archive URL+"/"+NAME).
	URL string

	mu          sync.Mutex
	files       []File // in release order, oldest first
	tampered    map[string]bool
	down        bool
	hold        chan struct{} // archive downloads wait for it to close when set
	listingBody []byte        // answered for both listings instead, when set
	requests    map[string]int
}

// New starts a site serving files; it is closed at the end of the test.
func New(t testing.TB, files ...File) *Site {
	s := &Site{files: files, tampered: map[string]bool{}, requests: map[string]int{}}
	srv := httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(srv.Close)
	s.URL = srv.URL + "/dl"
	return s
}

// Requests returns how many requests the site answered for what: a
// listing query ("?mode=json", "?mode=json&include=all") or an archive
// name (its download, not the redirect).
func (s *Site) Requests(what string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests[what]
}

// Add publishes another file (listed from now on).
func (s *Site) Add(f File) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.files = append(s.files, f)
}

// Tamper makes the site send name with one byte flipped (the listing
// keeps the honest hash), or honestly again.
func (s *Site) Tamper(name string, on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tampered[name] = on
}

// SetDown makes every answer a 500, or lets the site answer again.
func (s *Site) SetDown(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down = on
}

// SetListing makes the site answer both listings with body (an invalid
// listing, say).
func (s *Site) SetListing(body string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.listingBody = []byte(body)
}

// Hold makes archive downloads wait (after they are counted) until the
// returned function is called.
func (s *Site) Hold() (release func()) {
	ch := make(chan struct{})
	s.mu.Lock()
	s.hold = ch
	s.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			s.hold = nil
			s.mu.Unlock()
			close(ch)
		})
	}
}

type listedFile struct {
	Filename string `json:"filename"`
	OS       string `json:"os"`
	Arch     string `json:"arch"`
	Version  string `json:"version"`
	SHA256   string `json:"sha256"`
	Size     int    `json:"size"`
	Kind     string `json:"kind"`
}

type release struct {
	Version string       `json:"version"`
	Stable  bool         `json:"stable"`
	Files   []listedFile `json:"files"`
}

// Listing returns the JSON the site answers "?mode=json" (all false) or
// "?mode=json&include=all" with, for fakes that serve it without HTTP.
func (s *Site) Listing(all bool) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.listing(all)
}

// listing is the site's JSON: newest release first; all or only the newest.
func (s *Site) listing(all bool) []byte {
	var rels []release
	byVersion := map[string]int{}
	for i := len(s.files) - 1; i >= 0; i-- {
		f := s.files[i]
		j, ok := byVersion[f.Version]
		if !ok {
			j = len(rels)
			byVersion[f.Version] = j
			rels = append(rels, release{Version: f.Version, Stable: true})
		}
		osArch := strings.TrimPrefix(f.Name, f.Version+".")
		osArch, _, _ = strings.Cut(osArch, ".")
		goos, goarch, _ := strings.Cut(osArch, "-")
		rels[j].Files = append(rels[j].Files, listedFile{Filename: f.Name, OS: goos, Arch: goarch, Version: f.Version,
			SHA256: f.SHA256(), Size: len(f.Data), Kind: "archive"})
	}
	if !all && len(rels) > 1 {
		rels = rels[:1]
	}
	b, _ := json.MarshalIndent(rels, "", " ")
	return b
}

func (s *Site) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	p := r.URL.Path
	if s.down {
		switch {
		case p == "/dl/" || p == "/dl":
			s.requests["?"+r.URL.RawQuery]++
		case strings.HasPrefix(p, "/files/"):
			s.requests[strings.TrimPrefix(p, "/files/")]++
		}
		s.mu.Unlock()
		http.Error(w, "site down", http.StatusInternalServerError)
		return
	}
	switch {
	case p == "/dl/" || p == "/dl":
		q := "?" + r.URL.RawQuery
		s.requests[q]++
		var body []byte
		switch q {
		case "?mode=json":
			body = s.listing(false)
		case "?mode=json&include=all":
			body = s.listing(true)
		}
		if body != nil && s.listingBody != nil {
			body = s.listingBody
		}
		s.mu.Unlock()
		if body == nil {
			http.Error(w, "only ?mode=json is faked", http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
		return
	case strings.HasPrefix(p, "/dl/"):
		s.mu.Unlock()
		http.Redirect(w, r, "/files/"+strings.TrimPrefix(p, "/dl/"), http.StatusFound)
		return
	}
	name := strings.TrimPrefix(p, "/files/")
	var data []byte
	for _, f := range s.files {
		if f.Name == name {
			data = f.Data
		}
	}
	s.requests[name]++
	if data != nil && s.tampered[name] {
		data = append([]byte(nil), data...)
		data[len(data)/2] ^= 0xff
	}
	hold := s.hold
	s.mu.Unlock()
	if data == nil {
		http.NotFound(w, r)
		return
	}
	if hold != nil {
		select {
		case <-hold:
		case <-r.Context().Done():
			return
		}
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(data))
}
