package doctor

import (
	"context"
	"crypto/x509"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modproxy/modproxy/internal/upstream/upstreamtest"
)

// netOptions are options for probing fake proxies on loopback.
func netOptions(t *testing.T, env map[string]string) Options {
	o := testOptions(t, env)
	o.Offline = false
	o.Timeout = 5 * time.Second
	o.Canary = "example.com/canary"
	return o
}

// testDialer sends every host ending in ".test" to 127.0.0.1 and refuses
// everything that is not loopback.
func testDialer(ctx context.Context, network, addr string) (net.Conn, error) {
	host, port, _ := net.SplitHostPort(addr)
	if strings.HasSuffix(host, ".test") {
		addr = net.JoinHostPort("127.0.0.1", port)
	}
	return refuseDialer(ctx, network, addr)
}

// listHandler serves list as every @v/list and 404 for the rest; it
// records the Authorization header of the last request.
type listHandler struct {
	list, contentType string
	status            int
	mu                sync.Mutex
	auth              string
}

func (h *listHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	h.auth = r.Header.Get("Authorization")
	h.mu.Unlock()
	if !strings.HasSuffix(r.URL.Path, "/@v/list") {
		http.NotFound(w, r)
		return
	}
	if h.contentType != "" {
		w.Header().Set("Content-Type", h.contentType)
	}
	if h.status != 0 {
		w.WriteHeader(h.status)
	}
	io.WriteString(w, h.list)
}

func (h *listHandler) lastAuth() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.auth
}

func healthyEnv(t *testing.T, srv *upstreamtest.Server) map[string]string {
	env := baseEnv(t)
	_, vkey := srv.SumDB()
	env["GOPROXY"] = srv.URL()
	env["GOSUMDB"] = vkey
	return env
}

func TestProbeHealthyProxy(t *testing.T) {
	srv := upstreamtest.New(t, testModules())
	name, _ := srv.SumDB()
	rep := mustRun(t, netOptions(t, healthyEnv(t, srv)))
	checkExpect(t, rep, []expect{
		{IDProxyDNS, OK, "127.0.0.1 is an IP address"},
		{IDProxyConnect, OK, "connected to 127.0.0.1:"},
		{IDProxyHTTP, OK, "GET " + srv.URL() + "/example.com/canary/@v/list: 200 OK in "},
		{IDProxyLatency, OK, ""},
		{IDProxyProtocol, OK, "2 versions, highest v1.1.0"},
		{IDProxySumDB, OK, "signed tree head verified"},
		{IDGoSumDBRoute, OK, "through " + srv.URL() + "/sumdb/" + name + "/"},
		{IDProxyChain, OK, srv.URL() + ": 200, served"},
		{IDHTTPProxyEnv, OK, "connected directly"},
	})
	if rep.HasProblems() || len(find(rep, IDProxyTLS)) != 0 {
		t.Errorf("unexpected findings:\n%s", dump(rep))
	}
}

func TestProbeSlowProxy(t *testing.T) {
	srv := upstreamtest.New(t, testModules())
	srv.SetFault("example.com/canary/@v/list", upstreamtest.Fault{Kind: upstreamtest.Delay, Delay: 200 * time.Millisecond})
	o := netOptions(t, healthyEnv(t, srv))
	o.SlowResponse = 50 * time.Millisecond
	rep := mustRun(t, o)
	checkExpect(t, rep, []expect{{IDProxyLatency, Warning, "slow above 50ms"}, {IDProxyHTTP, OK, "200 OK in "}})
	for _, f := range find(rep, IDProxyLatency) {
		d, err := time.ParseDuration(strings.Fields(f.Seen)[0])
		if err != nil || d < 200*time.Millisecond {
			t.Errorf("latency %q: %v", f.Seen, err)
		}
	}
}

func TestProbeTimeout(t *testing.T) {
	hung := upstreamtest.New(t, testModules())
	hung.SetFault("example.com/canary/@v/list", upstreamtest.Fault{Kind: upstreamtest.Hang})
	good := upstreamtest.New(t, testModules())
	env := healthyEnv(t, hung)
	o := netOptions(t, env)
	o.Timeout = 300 * time.Millisecond
	rep := mustRun(t, o)
	checkExpect(t, rep, []expect{
		{IDProxyHTTP, Problem, "timed out after"},
		{IDProxyHTTP, Problem, "(waiting for the response)"},
		{IDProxyHTTP, Problem, "it is the last entry"},
		{IDProxyChain, Problem, "download fails"},
	})

	// "," stops at the timeout; "|" falls through to the next proxy.
	env["GOPROXY"] = hung.URL() + "," + good.URL()
	checkExpect(t, mustRun(t, o), []expect{{IDProxyHTTP, Problem, `stops here instead of trying the next entry (",")`}, {IDProxyChain, Problem, "download fails"}})
	env["GOPROXY"] = hung.URL() + "|" + good.URL()
	rep = mustRun(t, o)
	checkExpect(t, rep, []expect{{IDProxyHTTP, Problem, `moves to the next entry ("|")`}, {IDProxyChain, Warning, good.URL() + ": 200, served"}})
}

// newTLSServer is httptest.NewTLSServer without handshake error logs (the
// tests provoke them).
func newTLSServer(t *testing.T, h http.Handler) *httptest.Server {
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

func TestProbeSelfSignedTLS(t *testing.T) {
	h := &listHandler{list: "v1.0.0\n"}
	srv := newTLSServer(t, h)
	env := baseEnv(t)
	env["GOPROXY"] = srv.URL
	env["GOSUMDB"] = "off"
	o := netOptions(t, env)

	// System roots: the test certificate is unknown.
	rep := mustRun(t, o)
	checkExpect(t, rep, []expect{
		{IDProxyTLS, Problem, "certificate signed by unknown authority"},
		{IDProxyTLS, Problem, "SSL_CERT_FILE"},
		{IDProxyChain, Problem, "download fails"},
	})
	if len(find(rep, IDProxyHTTP)) != 0 {
		t.Errorf("HTTP reported after a TLS failure:\n%s", dump(rep))
	}

	// Trusted: certificate details and expiry.
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	o.RootCAs = pool
	checkExpect(t, mustRun(t, o), []expect{{IDProxyTLS, OK, "valid until"}, {IDProxyHTTP, OK, "200 OK"}, {IDProxyProtocol, OK, "1 versions"}})
	o.Now = func() time.Time { return srv.Certificate().NotAfter.Add(-48 * time.Hour) }
	checkExpect(t, mustRun(t, o), []expect{{IDProxyTLS, Warning, "expires in 48h"}})
	o.Now = nil

	// Trusted, but for another name.
	o.DialContext = testDialer
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	env["GOPROXY"] = "https://proxy.doctor.test:" + port
	checkExpect(t, mustRun(t, o), []expect{{IDProxyTLS, Problem, "not valid for this host name"}})

	// Plain HTTP on an https URL.
	plain := httptest.NewServer(h)
	t.Cleanup(plain.Close)
	env["GOPROXY"] = strings.Replace(plain.URL, "http://", "https://", 1)
	checkExpect(t, mustRun(t, o), []expect{{IDProxyTLS, Problem, "does not speak TLS"}})
}

func TestProbeSumDBSupportedFails(t *testing.T) {
	bad := upstreamtest.New(t, testModules())
	name, vkey := bad.SumDB()
	bad.SetFault("sumdb/"+name+"/supported", upstreamtest.Fault{Kind: upstreamtest.ServerError})
	env := healthyEnv(t, bad)
	rep := mustRun(t, netOptions(t, env))
	checkExpect(t, rep, []expect{
		{IDProxySumDB, Problem, "/sumdb/" + name + "/supported: 500 Internal Server Error"},
		{IDProxySumDB, Problem, "must answer 404"},
		{IDGoSumDBRoute, Problem, "the go command stops; checksum lookups fail"},
		{IDProxyHTTP, OK, "200 OK"},
	})

	// With "|" the go command asks the next proxy, which serves it.
	good := upstreamtest.New(t, testModules(), upstreamtest.WithSumDBKeys(bad.SumDBKeys()))
	env["GOPROXY"] = bad.URL() + "|" + good.URL()
	env["GOSUMDB"] = vkey
	rep = mustRun(t, netOptions(t, env))
	checkExpect(t, rep, []expect{{IDProxySumDB, Warning, `tries the next entry ("|")`}, {IDGoSumDBRoute, OK, "through " + good.URL()}})
	absent(t, rep, IDGoSumDBRoute, Problem)
}

func TestProbeSumDBDirect(t *testing.T) {
	srv := upstreamtest.New(t, testModules(), upstreamtest.WithoutSumDB())
	db := upstreamtest.New(t, testModules())
	name, vkey := db.SumDB()
	env := baseEnv(t)
	env["GOPROXY"] = srv.URL() + ",direct"
	env["GOSUMDB"] = vkey

	// Not proxied: the go command connects to https://NAME, which this test
	// cannot reach.
	rep := mustRun(t, netOptions(t, env))
	checkExpect(t, rep, []expect{
		{IDProxySumDB, OK, "not proxied here"},
		{IDGoSumDBRoute, Problem, "reached directly at https://" + name},
	})

	// An explicit URL bypasses the proxies.
	env["GOSUMDB"] = vkey + " " + db.URL() + "/sumdb/" + name
	rep = mustRun(t, netOptions(t, env))
	checkExpect(t, rep, []expect{{IDGoSumDBRoute, OK, "reached at the GOSUMDB URL"}, {IDGoSumDBRoute, OK, "signed tree head verified"}})
	if len(find(rep, IDProxySumDB)) != 0 {
		t.Errorf("proxies asked for /supported although GOSUMDB has a URL:\n%s", dump(rep))
	}

	// The same name with another key: the signature does not verify.
	env["GOSUMDB"] = testKey(t, name) + " " + db.URL() + "/sumdb/" + name
	checkExpect(t, mustRun(t, netOptions(t, env)), []expect{{IDGoSumDBRoute, Problem, "does not verify with the GOSUMDB key"}})
}

func TestProbeBadAnswers(t *testing.T) {
	for _, tc := range []struct {
		name string
		h    *listHandler
		want expect
	}{
		{"html", &listHandler{list: "<html><body>Please log in</body></html>", contentType: "text/html"}, expect{IDProxyProtocol, Problem, "HTML page"}},
		{"garbage", &listHandler{list: "hello\nworld\n"}, expect{IDProxyProtocol, Problem, `not a version list (line "hello")`}},
		{"mixed", &listHandler{list: "v1.0.0\nbogus\n"}, expect{IDProxyProtocol, Warning, "1 versions and 1 lines that are not versions"}},
		{"empty", &listHandler{list: ""}, expect{IDProxyProtocol, OK, "empty"}},
		{"unauthorized", &listHandler{list: "who are you?\n", status: http.StatusUnauthorized}, expect{IDProxyHTTP, Problem, "add a netrc entry"}},
		{"forbidden", &listHandler{list: "blocked by policy\n", status: http.StatusForbidden}, expect{IDProxyHTTP, Problem, "403 Forbidden: blocked by policy"}},
		{"not found", &listHandler{list: "not found\n", status: http.StatusNotFound}, expect{IDProxyHTTP, OK, "is not served here"}},
		{"bad gateway", &listHandler{list: "upstream down\n", status: http.StatusBadGateway}, expect{IDProxyChain, Problem, "502 Bad Gateway: upstream down, download fails"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(tc.h)
			t.Cleanup(srv.Close)
			env := baseEnv(t)
			env["GOPROXY"] = srv.URL + ",direct"
			env["GOSUMDB"] = "off"
			checkExpect(t, mustRun(t, netOptions(t, env)), []expect{tc.want})
		})
	}
}

func TestProbeSendsNetrcCredentials(t *testing.T) {
	h := &listHandler{list: "v1.0.0\n"}
	srv := newTLSServer(t, h)
	env := baseEnv(t)
	env["GOPROXY"] = srv.URL
	env["GOSUMDB"] = "off"
	home := t.TempDir()
	u, _ := url.Parse(srv.URL)
	writeFile(t, filepath.Join(home, ".netrc"), "machine "+u.Host+" login bob password tok\n", 0o600)
	o := netOptions(t, env)
	o.LookupEnv = mapLookup(map[string]string{"HOME": home})
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	o.RootCAs = pool
	checkExpect(t, mustRun(t, o), []expect{{IDProxyHTTP, OK, "sent basic auth from netrc machine " + u.Host}})
	if got := h.lastAuth(); !strings.HasPrefix(got, "Basic ") {
		t.Errorf("Authorization = %q", got)
	}
}

func TestProbeUnreachable(t *testing.T) {
	env := baseEnv(t)
	env["GOSUMDB"] = "off"
	env["GOPROXY"] = "https://proxy.example.com,direct"
	checkExpect(t, mustRun(t, netOptions(t, env)), []expect{{IDProxyDNS, Problem, "looking up proxy.example.com failed"}, {IDProxyChain, Problem, "download fails"}})

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	env["GOPROXY"] = "http://" + addr + ",direct"
	checkExpect(t, mustRun(t, netOptions(t, env)), []expect{{IDProxyConnect, Problem, "TCP connection to " + addr + " failed"}})

	// The same dead proxy as a fallback the canary does not need: a warning.
	good := upstreamtest.New(t, testModules(), upstreamtest.WithoutSumDB())
	env["GOPROXY"] = good.URL() + "|http://" + addr
	rep := mustRun(t, netOptions(t, env))
	checkExpect(t, rep, []expect{{IDProxyConnect, Warning, "a fallback: used only when an earlier entry fails"}, {IDProxyChain, OK, good.URL() + ": 200, served"}})
	if rep.HasProblems() {
		t.Errorf("problems with a working first proxy:\n%s", dump(rep))
	}
}

func TestProbeThroughHTTPProxy(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	fwd := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.URL.String())
		mu.Unlock()
		if r.URL.Host != "goproxy.corp.test" {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		if strings.HasSuffix(r.URL.Path, "/@v/list") {
			io.WriteString(w, "v1.0.0\n")
			return
		}
		http.NotFound(w, r)
	}))
	t.Cleanup(fwd.Close)
	env := baseEnv(t)
	env["GOPROXY"] = "http://goproxy.corp.test,direct"
	env["GOSUMDB"] = "off"
	o := netOptions(t, env)
	o.Proxy = func(*http.Request) (*url.URL, error) { return url.Parse(fwd.URL) }
	rep := mustRun(t, o)
	checkExpect(t, rep, []expect{
		{IDProxyDNS, OK, "goproxy.corp.test is resolved by the HTTP proxy " + fwd.URL},
		{IDProxyConnect, OK, "through HTTP proxy " + fwd.URL},
		{IDProxyHTTP, OK, "200 OK"},
		{IDHTTPProxyEnv, OK, "through HTTP proxy " + fwd.URL},
	})
	mu.Lock()
	if len(seen) == 0 || seen[0] != "http://goproxy.corp.test/example.com/canary/@v/list" {
		t.Errorf("forward proxy saw %v", seen)
	}
	mu.Unlock()

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + l.Addr().String()
	l.Close()
	env["GOPROXY"] = "https://goproxy.corp.test,direct"
	o.Proxy = func(*http.Request) (*url.URL, error) { return url.Parse(dead) }
	checkExpect(t, mustRun(t, o), []expect{{IDProxyConnect, Problem, "connecting to the HTTP proxy " + dead + " failed"}})
}

func TestProbeFileProxy(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "example.com/canary/@v/list"), "v1.0.0\nv1.2.0\n", 0o644)
	env := baseEnv(t)
	env["GOPROXY"] = "file://" + filepath.ToSlash(dir) + ",direct"
	env["GOSUMDB"] = "off"
	rep := mustRun(t, netOptions(t, env))
	checkExpect(t, rep, []expect{{IDProxyHTTP, OK, "200 OK"}, {IDProxyProtocol, OK, "highest v1.2.0"}, {IDProxyChain, OK, "200, served"}})
	if len(find(rep, IDProxyDNS))+len(find(rep, IDProxyLatency)) != 0 {
		t.Errorf("network findings for a file proxy:\n%s", dump(rep))
	}
}

func TestProbeModuleRoute(t *testing.T) {
	empty := upstreamtest.New(t, nil, upstreamtest.WithoutSumDB())
	full := upstreamtest.New(t, testModules())
	_, vkey := full.SumDB()
	env := baseEnv(t)
	env["GOPROXY"] = empty.URL() + "," + full.URL() + ",direct"
	env["GOSUMDB"] = vkey
	o := netOptions(t, env)
	o.Module, _ = ParseModule("example.com/Upper/mod@v0.1.0")
	rep := mustRun(t, o)
	checkExpect(t, rep, []expect{
		{IDModuleRoute, OK, empty.URL() + ": 404 Not Found"},
		{IDModuleRoute, OK, full.URL() + ": 200, served from here"},
		{IDModuleCached, OK, "not cached"},
	})
	if full.Requests("example.com/!upper/mod/@v/v0.1.0.info") != 1 {
		t.Errorf("requests: %v", full.Log())
	}

	o.Module, _ = ParseModule("example.com/missing@v1.0.0")
	env["GOPROXY"] = empty.URL() + "," + full.URL()
	checkExpect(t, mustRun(t, o), []expect{{IDModuleRoute, Warning, "no entry serves it"}})
}
