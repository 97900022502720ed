package upstreamtest

import (
	"bytes"
	"context"
	"io"
	"log"
	"net"
	"net/http"
	pathpkg "path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/module"
	"golang.org/x/mod/semver"
)

// DefaultSumDBName is the name of the checksum database a Server serves
// unless WithSumDBName or WithoutSumDB is given.
const DefaultSumDBName = "sum.test.example"

// config is what Options set.
type config struct {
	sumdbName string
	sumdbKeys [2]string // signer, verifier; empty: generate
	noSumDB   bool
}

// Option configures a Server in New.
type Option func(*config)

// WithSumDBName names the checksum database served at /sumdb/NAME/
// (default [DefaultSumDBName]). The name must be a valid note key name
// (non-empty, no spaces, no "+").
func WithSumDBName(name string) Option {
	return func(c *config) { c.sumdbName = name }
}

// WithSumDBKeys makes the checksum database sign with the given keys (from
// note.GenerateKey or another Server's SumDBKeys) instead of fresh ones.
// The key name must equal the database name.
func WithSumDBKeys(signer, verifier string) Option {
	return func(c *config) { c.sumdbKeys = [2]string{signer, verifier} }
}

// WithoutSumDB serves no checksum database: every /sumdb/ path, including
// /sumdb/NAME/supported, answers 404, so a client falls back to the next
// GOPROXY entry or to direct access for the database.
func WithoutSumDB() Option {
	return func(c *config) { c.noSumDB = true }
}

// Server is a fake GOPROXY upstream listening on a loopback address.
// All methods are safe for concurrent use. Methods that fail the test
// (New, Add, AddQuery, SetFault, Start) call t.Fatalf and so must be called
// from the test's goroutine when they can fail.
type Server struct {
	t    testing.TB
	addr string     // host:port, fixed for the Server's life
	sum  *sumDB     // nil with WithoutSumDB; immutable
	life sync.Mutex // serializes Start and Stop

	mu      sync.Mutex
	mods    map[string]map[string]*version // module path -> version -> artifacts
	queries map[string]map[string]string   // module path -> query -> version
	faults  faults
	counts  map[string]int
	total   int
	log     []string
	gen     *generation // the serving generation; nil while stopped
}

// generation is one Start..Stop period of serving.
type generation struct {
	srv      *http.Server
	stopped  chan struct{}  // closed by Stop (under Server.mu)
	served   chan struct{}  // closed when srv.Serve returns
	handlers sync.WaitGroup // in-flight handlers; Add only under Server.mu while not stopped
}

// New starts a Server serving mods on 127.0.0.1 with a free port. It calls
// t.Fatalf if a module is invalid (see [Module]) or the server cannot start,
// and registers Stop with t.Cleanup. Unless WithoutSumDB is given, it also
// serves a checksum database with a fresh key (see [Server.SumDB]).
func New(t testing.TB, mods []Module, opts ...Option) *Server {
	t.Helper()
	cfg := config{sumdbName: DefaultSumDBName}
	for _, opt := range opts {
		opt(&cfg)
	}
	s := &Server{
		t:       t,
		mods:    make(map[string]map[string]*version),
		queries: make(map[string]map[string]string),
		counts:  make(map[string]int),
	}
	if !cfg.noSumDB {
		sum, err := newSumDB(cfg.sumdbName, cfg.sumdbKeys, s.goSumRecord)
		if err != nil {
			t.Fatalf("upstreamtest: %v", err)
		}
		s.sum = sum
	}
	for _, m := range mods {
		v, err := build(m)
		if err != nil {
			t.Fatalf("upstreamtest.New: %v", err)
		}
		s.put(v)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("upstreamtest: listen: %v", err)
	}
	s.addr = ln.Addr().String()
	s.serve(ln)
	t.Cleanup(s.Stop)
	return s
}

// URL returns the base URL, e.g. "http://127.0.0.1:PORT", without a
// trailing slash. It stays the same across Stop and Start.
func (s *Server) URL() string { return "http://" + s.addr }

// Add serves one more module version from now on (@v/list and @latest
// change accordingly). Adding a version that is already served replaces its
// content; a checksum database record already looked up for it is kept, as
// a real database would, so the served bytes then disagree with it. Add
// calls t.Fatalf if m is invalid.
func (s *Server) Add(m Module) {
	s.t.Helper()
	v, err := build(m)
	if err != nil {
		s.t.Fatalf("upstreamtest.Add: %v", err)
	}
	s.put(v)
}

// put records v as served.
func (s *Server) put(v *version) {
	s.mu.Lock()
	defer s.mu.Unlock()
	byVers := s.mods[v.mod.Path]
	if byVers == nil {
		byVers = make(map[string]*version)
		s.mods[v.mod.Path] = byVers
	}
	byVers[v.mod.Version] = v
}

// AddQuery makes $path/@v/$query.info (query case-encoded in the request)
// answer the .info of version: query is a non-canonical revision such as a
// branch name, a commit hash or "v1.2". The version is resolved at request
// time: if it is not served then, the query answers 404. Only .info resolves
// queries; .mod and .zip answer 404 for them, as the go command never asks.
// AddQuery calls t.Fatalf if path is invalid or version not canonical.
func (s *Server) AddQuery(path, query, version string) {
	s.t.Helper()
	if err := module.CheckPath(path); err != nil {
		s.t.Fatalf("upstreamtest.AddQuery: %v", err)
	}
	if query == "" || version == "" || module.CanonicalVersion(version) != version {
		s.t.Fatalf("upstreamtest.AddQuery(%q, %q, %q): want a non-empty query and a canonical version", path, query, version)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.queries[path]
	if q == nil {
		q = make(map[string]string)
		s.queries[path] = q
	}
	q[query] = version
}

// Stop closes the listener and every connection, and waits for in-flight
// handlers (hung and slow ones end at once). Afterwards connections to the
// port are refused until Start. Stop is a no-op on a stopped Server.
func (s *Server) Stop() {
	s.life.Lock()
	defer s.life.Unlock()
	s.mu.Lock()
	g := s.gen
	s.gen = nil
	if g != nil {
		close(g.stopped)
	}
	s.mu.Unlock()
	if g == nil {
		return
	}
	_ = g.srv.Close()
	<-g.served
	g.handlers.Wait()
}

// Start listens again on the same address as before Stop and serves again,
// with the same modules, faults and counts. It is a no-op on a running
// Server, and calls t.Fatalf if the address cannot be reclaimed within a few
// seconds.
func (s *Server) Start() {
	s.t.Helper()
	s.life.Lock()
	defer s.life.Unlock()
	s.mu.Lock()
	running := s.gen != nil
	s.mu.Unlock()
	if running {
		return
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		ln, err := net.Listen("tcp", s.addr)
		if err == nil {
			s.serve(ln)
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("upstreamtest: listen again on %s: %v", s.addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// serve starts a generation serving on ln. The caller holds s.life or is New.
func (s *Server) serve(ln net.Listener) {
	g := &generation{
		stopped: make(chan struct{}),
		served:  make(chan struct{}),
	}
	g.srv = &http.Server{
		Handler:           http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { s.handle(g, w, r) }),
		ReadHeaderTimeout: time.Minute,
		ErrorLog:          log.New(io.Discard, "", 0),
	}
	s.mu.Lock()
	s.gen = g
	s.mu.Unlock()
	go func() {
		defer close(g.served)
		_ = g.srv.Serve(ln)
	}()
}

// SetFault injects f into the requests whose path (escaped, relative to
// the base URL; a leading "/" is ignored) equals path, or matches path as a
// path.Match pattern ("example.com/a/@v/*" matches every file of
// example.com/a; "*" does not cross "/"), or every request if path is
// "ALL". Setting the same path again replaces its fault and restarts its
// Times. When several faults match, the exact path wins, then patterns in
// the order first set, then "ALL". SetFault calls t.Fatalf for an invalid
// fault or pattern.
func (s *Server) SetFault(path string, f Fault) {
	s.t.Helper()
	if err := f.validate(); err != nil {
		s.t.Fatalf("upstreamtest.SetFault(%q): %v", path, err)
	}
	key := strings.TrimPrefix(path, "/")
	if _, err := pathpkg.Match(key, ""); err != nil {
		s.t.Fatalf("upstreamtest.SetFault(%q): %v", path, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.set(key, f)
}

// ClearFaults removes every fault.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = faults{}
}

// Requests returns how many requests were received for exactly the escaped
// path (relative to the base URL; a leading "/" is ignored), faulted or
// not, since New or ResetCounts.
func (s *Server) Requests(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts[strings.TrimPrefix(path, "/")]
}

// Total returns how many requests were received since New or ResetCounts.
func (s *Server) Total() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.total
}

// Log returns the path of every request received since New or ResetCounts,
// in arrival order (escaped, relative to the base URL, e.g.
// "example.com/a/@v/list" or "sumdb/NAME/supported").
func (s *Server) Log() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.log)
}

// ResetCounts forgets the counts and the log.
func (s *Server) ResetCounts() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.counts)
	s.total = 0
	s.log = nil
}

// lookup returns the served path@vers, or nil.
func (s *Server) lookup(path, vers string) *version {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mods[path][vers]
}

// ZipBytes returns a copy of the honest .zip of path@version (path not
// escaped), or nil if it is not served.
func (s *Server) ZipBytes(path, version string) []byte {
	if v := s.lookup(path, version); v != nil {
		return bytes.Clone(v.zip)
	}
	return nil
}

// ModBytes returns a copy of the honest .mod of path@version (path not
// escaped), or nil if it is not served.
func (s *Server) ModBytes(path, version string) []byte {
	if v := s.lookup(path, version); v != nil {
		return bytes.Clone(v.gomod)
	}
	return nil
}

// GoSum returns the two go.sum lines of path@version, each ending in "\n":
//
//	PATH VERSION h1:<hash of the zip>
//	PATH VERSION/go.mod h1:<hash of the .mod>
//
// or "" if it is not served. The checksum database serves the same lines.
func (s *Server) GoSum(path, version string) string {
	if v := s.lookup(path, version); v != nil {
		return v.gosum
	}
	return ""
}

// handle serves one request of generation g: count and log it, then apply
// the matching fault or answer honestly.
func (s *Server) handle(g *generation, w http.ResponseWriter, r *http.Request) {
	p := strings.TrimPrefix(r.URL.Path, "/")
	s.mu.Lock()
	select {
	case <-g.stopped:
		s.mu.Unlock()
		panic(http.ErrAbortHandler) // raced with Stop: behave as a closed connection
	default:
	}
	g.handlers.Add(1)
	s.counts[p]++
	s.total++
	s.log = append(s.log, p)
	f, faulted := s.faults.match(p)
	s.mu.Unlock()
	defer g.handlers.Done()

	if !faulted {
		writeResponse(w, s.honest(r, p, false))
		return
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	go func() {
		select {
		case <-g.stopped:
			cancel()
		case <-ctx.Done():
		}
	}()
	s.serveFault(w, r, p, f, ctx.Done())
}

// response is a complete answer, rendered before it is written so that
// faults can alter it.
type response struct {
	code   int
	header http.Header
	body   []byte // shared with the artifacts: copy before changing
}

// okResponse is a 200 response with the given content type.
func okResponse(contentType string, body []byte) response {
	h := make(http.Header)
	h.Set("Content-Type", contentType)
	return response{code: http.StatusOK, header: h, body: body}
}

// textResponse is a response with a one-line text body.
func textResponse(code int, msg string) response {
	h := make(http.Header)
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	msg = strings.ReplaceAll(msg, "\n", " ")
	return response{code: code, header: h, body: []byte(msg + "\n")}
}

// notFound is the 404 answer for an unknown module, version or path.
func notFound(msg string) response {
	return textResponse(http.StatusNotFound, "not found: "+msg)
}

// writeHeader writes resp's status and headers, with its Content-Length.
func writeHeader(w http.ResponseWriter, resp response) {
	h := w.Header()
	for k, v := range resp.header {
		h[k] = v
	}
	h.Set("Content-Length", strconv.Itoa(len(resp.body)))
	w.WriteHeader(resp.code)
}

// writeResponse writes resp. For HEAD, net/http drops the body.
func writeResponse(w http.ResponseWriter, resp response) {
	writeHeader(w, resp)
	_, _ = w.Write(resp.body)
}

const (
	contentText = "text/plain; charset=UTF-8"
	contentJSON = "application/json"
	contentZip  = "application/zip"
)

// honest renders the protocol's answer for path p (escaped, relative to
// the base). With wrong, .info, @latest, .mod and .zip answer about another
// version (see WrongVersion).
func (s *Server) honest(r *http.Request, p string, wrong bool) response {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		resp := textResponse(http.StatusMethodNotAllowed, "method not allowed: "+r.Method)
		resp.header.Set("Allow", "GET, HEAD")
		return resp
	}
	if rest, ok := strings.CutPrefix(p, "sumdb/"); ok {
		return s.serveSumDB(r, rest)
	}
	if escPath, ok := strings.CutSuffix(p, "/@latest"); ok {
		modPath, err := module.UnescapePath(escPath)
		if err != nil {
			return notFound(err.Error())
		}
		return s.latest(modPath, wrong)
	}
	escPath, file, ok := strings.Cut(p, "/@v/")
	if !ok {
		return notFound("unknown path /" + p)
	}
	modPath, err := module.UnescapePath(escPath)
	if err != nil {
		return notFound(err.Error())
	}
	if file == "list" {
		return s.list(modPath)
	}
	dot := strings.LastIndex(file, ".")
	if dot < 0 {
		return notFound("unknown path /" + p)
	}
	escVers, ext := file[:dot], file[dot+1:]
	if ext != "info" && ext != "mod" && ext != "zip" {
		return notFound("unknown path /" + p)
	}
	vers, err := module.UnescapeVersion(escVers)
	if err != nil {
		return notFound(err.Error())
	}

	s.mu.Lock()
	v := s.mods[modPath][vers]
	if v == nil && ext == "info" {
		if target, ok := s.queries[modPath][vers]; ok {
			v = s.mods[modPath][target]
			if v == nil {
				s.mu.Unlock()
				return notFound(modPath + "@" + vers + ": resolves to " + target + ", which is not served")
			}
		}
	}
	if v == nil {
		s.mu.Unlock()
		return notFound(modPath + "@" + vers + ": unknown revision " + vers)
	}
	var other string
	var ov *version
	if wrong {
		other, ov = s.otherLocked(modPath, v.mod.Version)
	}
	s.mu.Unlock()

	switch {
	case ext == "info" && !wrong:
		return okResponse(contentJSON, v.info)
	case ext == "info" && ov != nil:
		return okResponse(contentJSON, ov.info)
	case ext == "info":
		return okResponse(contentJSON, infoJSON(other, v.mod.infoTime()))
	case ext == "mod" && ov != nil:
		return okResponse(contentText, ov.gomod)
	case ext == "mod":
		return okResponse(contentText, v.gomod)
	case ext == "zip" && !wrong:
		return okResponse(contentZip, v.zip)
	case ext == "zip" && ov != nil:
		return okResponse(contentZip, ov.zip)
	default: // zip of a made-up version
		z, err := makeZip(modPath, other, v.mod.Files)
		if err != nil {
			return textResponse(http.StatusInternalServerError, err.Error())
		}
		return okResponse(contentZip, z)
	}
}

// list renders $mod/@v/list: the served non-pseudo versions in semver
// order; 404 for a module with no served version at all.
func (s *Server) list(modPath string) response {
	s.mu.Lock()
	byVers := s.mods[modPath]
	known := len(byVers) > 0
	var vs []string
	for vers := range byVers {
		if !module.IsPseudoVersion(vers) {
			vs = append(vs, vers)
		}
	}
	s.mu.Unlock()
	if !known {
		return notFound("module " + modPath + ": no versions")
	}
	semver.Sort(vs)
	var b strings.Builder
	for _, v := range vs {
		b.WriteString(v)
		b.WriteByte('\n')
	}
	return okResponse(contentText, []byte(b.String()))
}

// latest renders $mod/@latest: the .info of the highest release, else of
// the highest pre-release, else of the highest pseudo-version.
func (s *Server) latest(modPath string, wrong bool) response {
	s.mu.Lock()
	defer s.mu.Unlock()
	var best [3]*version // release, pre-release, pseudo
	for vers, v := range s.mods[modPath] {
		class := 0
		switch {
		case module.IsPseudoVersion(vers):
			class = 2
		case semver.Prerelease(vers) != "":
			class = 1
		}
		if b := best[class]; b == nil || semver.Compare(vers, b.mod.Version) > 0 ||
			semver.Compare(vers, b.mod.Version) == 0 && vers > b.mod.Version {
			best[class] = v
		}
	}
	for _, v := range best {
		if v == nil {
			continue
		}
		if !wrong {
			return okResponse(contentJSON, v.info)
		}
		other, ov := s.otherLocked(modPath, v.mod.Version)
		if ov != nil {
			return okResponse(contentJSON, ov.info)
		}
		return okResponse(contentJSON, infoJSON(other, v.mod.infoTime()))
	}
	return notFound("module " + modPath + ": no versions")
}

// otherLocked picks the version WrongVersion reports instead of vers: the
// highest other served version of modPath (returned with its artifacts), or
// a made-up vN.999.0 of the same major version (returned with nil).
// The caller holds s.mu.
func (s *Server) otherLocked(modPath, vers string) (string, *version) {
	var best *version
	for ov, v := range s.mods[modPath] {
		if ov == vers {
			continue
		}
		if best == nil || semver.Compare(ov, best.mod.Version) > 0 ||
			semver.Compare(ov, best.mod.Version) == 0 && ov > best.mod.Version {
			best = v
		}
	}
	if best != nil {
		return best.mod.Version, best
	}
	suffix := ""
	if strings.HasSuffix(vers, "+incompatible") {
		suffix = "+incompatible"
	}
	other := semver.Major(vers) + ".999.0" + suffix
	if other == vers {
		other = semver.Major(vers) + ".998.0" + suffix
	}
	return other, nil
}
