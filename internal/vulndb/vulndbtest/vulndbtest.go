// Package vulndbtest builds Go vulnerability databases for tests: OSV
// entries in, the vulndb API's files out (index/db.json,
// index/modules.json, ID/ID.json), served on loopback or written as the
// database's zip archive.
package vulndbtest

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"maps"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// Entry is one advisory.
type Entry struct {
	ID       string // "GO-2099-0001"
	Modified time.Time
	Aliases  []string
	Summary  string
	Affected []Affected
}

// Affected is a module an advisory names with one SEMVER range.
type Affected struct {
	Module string
	// Introduced and Fixed are OSV versions (no "v"): Introduced "" means
	// "0", Fixed "" means not fixed.
	Introduced, Fixed string
	// Packages are the vulnerable packages and symbols (govulncheck
	// reports an entry only for code that reaches them).
	Packages []Package
}

// Package is a vulnerable package with its vulnerable symbols.
type Package struct {
	Path    string
	Symbols []string
}

// Files are a database's files by path ("index/db.json", "ID/X.json").
// Tests may change them (a corrupt entry, a missing one) before serving
// or writing them.
type Files map[string][]byte

// Build returns the database of entries, with indexes as the vulndb API
// defines them.
func Build(t testing.TB, entries ...Entry) Files {
	t.Helper()
	type vuln struct {
		ID       string    `json:"id"`
		Modified time.Time `json:"modified"`
		Fixed    string    `json:"fixed,omitempty"`
	}
	files := Files{}
	mods := map[string][]vuln{}
	var latest time.Time
	for _, e := range entries {
		if e.Modified.After(latest) {
			latest = e.Modified
		}
		b, err := json.MarshalIndent(osv(e), "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		files["ID/"+e.ID+".json"] = b
		for _, a := range e.Affected {
			mods[a.Module] = append(mods[a.Module], vuln{ID: e.ID, Modified: e.Modified, Fixed: a.Fixed})
		}
	}
	type module struct {
		Path  string `json:"path"`
		Vulns []vuln `json:"vulns"`
	}
	var idx []module
	for _, p := range slices.Sorted(maps.Keys(mods)) {
		idx = append(idx, module{Path: p, Vulns: mods[p]})
	}
	var err error
	if files["index/modules.json"], err = json.Marshal(idx); err != nil {
		t.Fatal(err)
	}
	if files["index/db.json"], err = json.Marshal(map[string]time.Time{"modified": latest}); err != nil {
		t.Fatal(err)
	}
	return files
}

// osv is the OSV document of e.
func osv(e Entry) map[string]any {
	var affected []any
	for _, a := range e.Affected {
		intro := a.Introduced
		if intro == "" {
			intro = "0"
		}
		events := []any{map[string]string{"introduced": intro}}
		if a.Fixed != "" {
			events = append(events, map[string]string{"fixed": a.Fixed})
		}
		var imports []any
		for _, p := range a.Packages {
			imports = append(imports, map[string]any{"path": p.Path, "symbols": p.Symbols})
		}
		affected = append(affected, map[string]any{
			"package":            map[string]string{"name": a.Module, "ecosystem": "Go"},
			"ranges":             []any{map[string]any{"type": "SEMVER", "events": events}},
			"ecosystem_specific": map[string]any{"imports": imports},
		})
	}
	return map[string]any{
		"schema_version": "1.3.1",
		"id":             e.ID,
		"modified":       e.Modified,
		"published":      e.Modified,
		"aliases":        e.Aliases,
		"summary":        e.Summary,
		"details":        e.Summary,
		"affected":       affected,
		// govulncheck's text report prints it (and needs it).
		"database_specific": map[string]string{"url": "https://vulndb.test.example/" + e.ID},
	}
}

// WriteZip writes the files as the database's zip archive at path.
func (f Files) WriteZip(t testing.TB, path string) {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, name := range slices.Sorted(maps.Keys(f)) {
		w, err := zw.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(f[name]); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// Server serves a database over HTTP on loopback, as the vulndb API does
// (.json only). It is safe for concurrent use.
type Server struct {
	addr     string
	mu       sync.Mutex
	files    Files
	fail     map[string]int // path -> status to answer instead
	requests map[string]int
}

// NewServer serves files on 127.0.0.1 until the test ends.
func NewServer(t testing.TB, files Files) *Server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{addr: ln.Addr().String(), files: files, fail: map[string]int{}, requests: map[string]int{}}
	hs := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = hs.Serve(ln)
	}()
	t.Cleanup(func() {
		hs.Close()
		<-done
	})
	return s
}

// URL is the database's base URL.
func (s *Server) URL() string { return "http://" + s.addr }

// Set replaces the files served.
func (s *Server) Set(files Files) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.files = files
}

// Fail makes path ("index/db.json") answer status; 0 serves it again.
func (s *Server) Fail(path string, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if status == 0 {
		delete(s.fail, path)
		return
	}
	s.fail[path] = status
}

// Requests is how often path was asked for.
func (s *Server) Requests(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests[path]
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := strings.TrimPrefix(r.URL.Path, "/")
	s.mu.Lock()
	s.requests[p]++
	status, b := s.fail[p], s.files[p]
	_, ok := s.files[p]
	s.mu.Unlock()
	switch {
	case status != 0:
		http.Error(w, "injected failure", status)
	case !ok:
		http.Error(w, "not found", http.StatusNotFound)
	default:
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(b)
	}
}
