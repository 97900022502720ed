package doctor

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/mod/module"
	"golang.org/x/mod/semver"
	"golang.org/x/mod/sumdb/note"

	"github.com/modproxy/modproxy/internal/upstream"
)

// maxProbeBody bounds how much of a probe response is read.
const maxProbeBody = 64 << 10

// certExpirySoon is when a certificate about to expire is reported.
const certExpirySoon = 14 * 24 * time.Hour

// failure is the step at which a request failed.
type failure string

const (
	failNone         failure = ""
	failDNS          failure = "dns"
	failConnect      failure = "connect"
	failProxyConnect failure = "proxyconnect"
	failTLS          failure = "tls"
	failTimeout      failure = "timeout"
	failOther        failure = "other"
)

// httpResult is what one probe request saw.
type httpResult struct {
	URL  string // redacted
	Via  string // HTTP proxy used, redacted; "" when none
	Auth string // which credentials were sent, never the secret
	// Challenge is the WWW-Authenticate of a 401 (bounded, one line).
	Challenge string
	IsFile    bool // a file:// URL: no network steps
	Latency   time.Duration

	DNSHost   string
	DNSAddrs  []string
	DNSDone   bool
	ConnAddr  string
	Connected bool
	TLS       *tls.ConnectionState
	TLSErr    error // the handshake's own error: net/http may replace it with plain text

	Status      int
	ContentType string
	Body        []byte
	FinalURL    string // after redirects, redacted; "" when not redirected

	Err   error
	Fail  failure
	Phase string // for timeouts: the step that ran out of time
}

// ok reports whether the request got a 200 with a complete body.
func (r *httpResult) ok() bool { return r.Err == nil && r.Status == http.StatusOK }

// notFound reports a 404 or 410 answer: the go command moves to the next
// entry after ",".
func (r *httpResult) notFound() bool {
	return r.Err == nil && (r.Status == http.StatusNotFound || r.Status == http.StatusGone)
}

// summary describes the answer in a few words.
func (r *httpResult) summary() string {
	if r.Err != nil {
		return failureText(r)
	}
	s := fmt.Sprintf("%d %s", r.Status, http.StatusText(r.Status))
	if r.Status != http.StatusOK {
		if line := firstLine(r.Body); line != "" {
			s += ": " + line
		}
	}
	return s
}

func firstLine(b []byte) string {
	line, _, _ := bytes.Cut(bytes.TrimSpace(b), []byte("\n"))
	return upstream.Sanitize(string(line), 120)
}

// proxyProbe is what was learned about one GOPROXY entry.
type proxyProbe struct {
	Entry     proxyEntry
	Canary    string      // the module whose @v/list was asked for
	List      *httpResult // the canary's @v/list
	Supported *httpResult // /sumdb/NAME/supported; nil when not asked
	Latest    *httpResult // /sumdb/NAME/latest through the proxy; nil when not asked
}

// prober sends the probe requests of one Run.
type prober struct {
	c      *checker
	client *http.Client
}

func (c *checker) newProber() (*prober, func()) {
	tr := &http.Transport{
		Proxy:                  c.o.Proxy,
		DialContext:            c.o.DialContext,
		TLSClientConfig:        &tls.Config{RootCAs: c.o.RootCAs},
		TLSHandshakeTimeout:    c.o.Timeout,
		DisableKeepAlives:      true, // every probe sees DNS, TCP and TLS
		ForceAttemptHTTP2:      true,
		MaxResponseHeaderBytes: 64 << 10,
	}
	return &prober{c: c, client: &http.Client{Transport: tr}}, tr.CloseIdleConnections
}

// probe probes every proxy of the chain, then reports the proxies, the
// chain's answer for the canary and the route to the checksum database.
func (c *checker) probe(ctx context.Context, p *prober) {
	used := c.list.Used()
	if c.list.Err != "" {
		c.add(IDProxyChain, Problem, "GOPROXY chain", "not probed: the go command rejects GOPROXY ("+c.list.Err+")", "fix GOPROXY first")
		return
	}
	canary := c.canaries(ctx, used)
	probes := make([]*proxyProbe, len(used))
	var wg sync.WaitGroup
	for i, e := range used {
		if e.Kind != kindProxy && e.Kind != kindFile {
			continue
		}
		wg.Go(func() { probes[i] = p.probeProxy(ctx, e, canary(e)) })
	}
	wg.Wait()
	c.results = map[int]*proxyProbe{}
	for _, pp := range probes {
		if pp != nil {
			c.results[pp.Entry.Index] = pp
		}
	}
	reached := c.reachedForCanary(used)
	for _, pp := range probes {
		if pp == nil {
			continue
		}
		n := len(c.findings)
		c.reportProxy(pp)
		if !reached[pp.Entry.Index] {
			// A fallback that the canary never needed: its failures make
			// the chain less resilient but fail no download today.
			for i := n; i < len(c.findings); i++ {
				if f := &c.findings[i]; f.Status == Problem {
					f.Status = Warning
					f.Seen += "\n(a fallback: used only when an earlier entry fails, as it did not for " + pp.Canary + ")"
				}
			}
		}
	}
	c.reportChain(used)
	c.reportSumDBRoute(ctx, p, used)
}

// canaries returns the canary to ask each entry for: Options.Canary, except
// that a canary that looks private is not sent to a public proxy, which is
// asked for DefaultCanary instead.
func (c *checker) canaries(ctx context.Context, used []proxyEntry) func(proxyEntry) string {
	same := func(proxyEntry) string { return c.o.Canary }
	if c.o.Canary == DefaultCanary || !slices.ContainsFunc(used, c.public.proxy) {
		return same
	}
	priv := c.judgePrivacy(ctx, c.o.Canary)
	if !priv.private {
		return same
	}
	c.add(IDPrivateCanary, Warning, "canary "+c.o.Canary,
		"it looks private ("+priv.reason+"): doctor does not send it to a public proxy, and asks those for "+DefaultCanary+" instead",
		"choose a public module as --canary to probe the public proxies with it")
	return func(e proxyEntry) string {
		if c.public.proxy(e) {
			return DefaultCanary
		}
		return c.o.Canary
	}
}

func (p *prober) probeProxy(ctx context.Context, e proxyEntry, canary string) *proxyProbe {
	c := p.c
	pp := &proxyProbe{Entry: e, Canary: canary}
	esc, _ := module.EscapePath(canary) // validated in Run
	pp.List = p.get(ctx, joinURL(e.URL, esc+"/@v/list"))
	if !c.sumdbOn() || c.sumdb.Err != "" || c.sumdb.URL != nil {
		return pp
	}
	if pp.List.Fail != failNone && pp.List.Fail != failOther {
		// The proxy cannot be reached; asking again would only repeat it.
		return pp
	}
	pp.Supported = p.get(ctx, joinURL(e.URL, "sumdb/"+c.sumdb.Name+"/supported"))
	if pp.Supported.ok() {
		pp.Latest = p.get(ctx, joinURL(e.URL, "sumdb/"+c.sumdb.Name+"/latest"))
	}
	return pp
}

// joinURL appends a relative path to a base URL, as the go command's
// web.Join does.
func joinURL(base *url.URL, rel string) *url.URL {
	u := *base
	u.Path = strings.TrimSuffix(u.Path, "/") + "/" + rel
	u.RawPath = ""
	return &u
}

// traceState collects httptrace events; callbacks may run on transport
// goroutines, even after the request returned.
type traceState struct {
	mu                     sync.Mutex
	dnsStarted, dnsDone    bool
	dnsHost                string
	dnsAddrs               []string
	connStarted, connected bool
	connAddr               string
	tlsStarted, tlsDone    bool
	tlsState               *tls.ConnectionState
	tlsErr                 error
	gotFirstByte           bool
}

func (t *traceState) trace() *httptrace.ClientTrace {
	return &httptrace.ClientTrace{
		DNSStart: func(i httptrace.DNSStartInfo) {
			t.mu.Lock()
			defer t.mu.Unlock()
			t.dnsStarted, t.dnsHost = true, i.Host
		},
		DNSDone: func(i httptrace.DNSDoneInfo) {
			t.mu.Lock()
			defer t.mu.Unlock()
			t.dnsDone = i.Err == nil
			for _, a := range i.Addrs {
				t.dnsAddrs = append(t.dnsAddrs, a.String())
			}
		},
		ConnectStart: func(network, addr string) {
			t.mu.Lock()
			defer t.mu.Unlock()
			t.connStarted = true
			if !t.connected {
				t.connAddr = addr
			}
		},
		ConnectDone: func(network, addr string, err error) {
			t.mu.Lock()
			defer t.mu.Unlock()
			if err == nil {
				t.connected, t.connAddr = true, addr
			}
		},
		TLSHandshakeStart: func() {
			t.mu.Lock()
			defer t.mu.Unlock()
			t.tlsStarted = true
		},
		TLSHandshakeDone: func(st tls.ConnectionState, err error) {
			t.mu.Lock()
			defer t.mu.Unlock()
			t.tlsDone = err == nil
			if err == nil {
				t.tlsState = &st
			} else {
				t.tlsErr = err
			}
		},
		GotFirstResponseByte: func() {
			t.mu.Lock()
			defer t.mu.Unlock()
			t.gotFirstByte = true
		},
	}
}

// get fetches u with the go command's credentials, bounded by
// Options.Timeout, and records every step.
func (p *prober) get(ctx context.Context, u *url.URL) *httpResult {
	c := p.c
	r := &httpResult{URL: u.Redacted()}
	if u.Scheme == "file" {
		return getFile(u)
	}
	ctx, cancel := context.WithTimeout(ctx, c.o.Timeout)
	defer cancel()
	ts := &traceState{}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, ts.trace()), http.MethodGet, u.String(), nil)
	if err != nil {
		r.Err, r.Fail = err, failOther
		return r
	}
	req.Header.Set("User-Agent", "modproxy-doctor")
	r.Auth = c.addCredentials(req)
	if pu, err := c.o.Proxy(req); err == nil && pu != nil {
		r.Via = pu.Redacted()
	}
	start := c.o.Now()
	resp, err := p.client.Do(req)
	if err == nil {
		r.Status = resp.StatusCode
		r.ContentType = resp.Header.Get("Content-Type")
		if resp.StatusCode == http.StatusUnauthorized {
			r.Challenge = challengeOf(resp)
		}
		if resp.Request != nil && resp.Request.URL.String() != u.String() {
			r.FinalURL = resp.Request.URL.Redacted()
		}
		r.Body, err = io.ReadAll(io.LimitReader(resp.Body, maxProbeBody))
		resp.Body.Close()
	}
	r.Latency = c.o.Now().Sub(start)
	ts.mu.Lock()
	defer ts.mu.Unlock()
	r.DNSHost, r.DNSAddrs, r.DNSDone = ts.dnsHost, ts.dnsAddrs, ts.dnsDone
	r.ConnAddr, r.Connected, r.TLS, r.TLSErr = ts.connAddr, ts.connected, ts.tlsState, ts.tlsErr
	if err != nil {
		r.Err = err
		r.Fail, r.Phase = classify(ctx, err, ts)
	}
	return r
}

// getFile reads a file:// URL as the go command does: a missing file is
// "not found".
func getFile(u *url.URL) *httpResult {
	r := &httpResult{URL: u.Redacted(), IsFile: true}
	data, err := os.ReadFile(filepath.FromSlash(u.Path))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		r.Status = http.StatusNotFound
	case err != nil:
		r.Err, r.Fail = err, failOther
	default:
		r.Status, r.Body = http.StatusOK, data
	}
	return r
}

// classify decides at which step a request failed. It relies on error
// types and the trace, never on error text.
func classify(ctx context.Context, err error, ts *traceState) (failure, string) {
	var (
		dnsErr  *net.DNSError
		opErr   *net.OpError
		netErr  net.Error
		unknown x509.UnknownAuthorityError
		host    x509.HostnameError
		invalid x509.CertificateInvalidError
		verify  *tls.CertificateVerificationError
		record  tls.RecordHeaderError
		alert   tls.AlertError
		echErr  *tls.ECHRejectionError
	)
	timeout := errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil || (errors.As(err, &netErr) && netErr.Timeout())
	if timeout {
		switch {
		case ts.dnsStarted && !ts.dnsDone && !ts.connStarted:
			return failTimeout, "DNS lookup"
		case ts.connStarted && !ts.connected:
			return failTimeout, "TCP connect"
		case ts.tlsStarted && !ts.tlsDone:
			return failTimeout, "TLS handshake"
		case !ts.gotFirstByte:
			return failTimeout, "waiting for the response"
		default:
			return failTimeout, "reading the response body"
		}
	}
	switch {
	case errors.As(err, &opErr) && opErr.Op == "proxyconnect":
		return failProxyConnect, ""
	case errors.As(err, &dnsErr):
		return failDNS, ""
	case errors.As(err, &unknown), errors.As(err, &host), errors.As(err, &invalid), errors.As(err, &verify),
		errors.As(err, &record), errors.As(err, &alert), errors.As(err, &echErr):
		return failTLS, ""
	case ts.tlsErr != nil:
		return failTLS, ""
	case !ts.connected && errors.As(err, &opErr) && opErr.Op == "dial":
		return failConnect, ""
	}
	return failOther, ""
}

// failureText describes a failed request in one line.
func failureText(r *httpResult) string {
	switch r.Fail {
	case failTimeout:
		return fmt.Sprintf("timed out after %s (%s)", roundDur(r.Latency), r.Phase)
	default:
		return upstream.Sanitize(r.Err.Error(), 300)
	}
}

func roundDur(d time.Duration) time.Duration {
	switch {
	case d >= time.Second:
		return d.Round(10 * time.Millisecond)
	case d >= time.Millisecond:
		return d.Round(time.Millisecond)
	}
	return d.Round(time.Microsecond)
}

// reportProxy turns the probes of one proxy into findings: DNS, connect,
// TLS, HTTP, latency, protocol and checksum database support.
func (c *checker) reportProxy(pp *proxyProbe) {
	e, r := pp.Entry, pp.List
	name := fmt.Sprintf("GOPROXY entry %d %s", e.Index, e.Name())
	if e.Kind == kindFile {
		c.reportHTTP(pp, name)
		return
	}
	host := e.URL.Hostname()
	via := ""
	if r.Via != "" {
		via = " through HTTP proxy " + r.Via
	}

	// DNS.
	switch {
	case r.Fail == failDNS && r.Via == "":
		c.add(IDProxyDNS, Problem, name+": DNS", "looking up "+host+" failed: "+failureText(r),
			"check the host name in GOPROXY; on a VPN or corporate network check that it is connected and that its DNS is used; if only an HTTP proxy can reach the internet, set HTTPS_PROXY")
		return
	case r.Fail == failTimeout && r.Phase == "DNS lookup":
		c.add(IDProxyDNS, Problem, name+": DNS", "looking up "+r.DNSHost+" "+failureText(r), "check the DNS servers in use (VPN, /etc/resolv.conf) or raise --timeout")
		return
	case r.Via != "":
		c.add(IDProxyDNS, OK, name+": DNS", host+" is resolved by the HTTP proxy "+r.Via+dnsLine(r, " (local lookup of the proxy: ", ")"), "")
	case net.ParseIP(host) != nil:
		c.add(IDProxyDNS, OK, name+": DNS", host+" is an IP address: no lookup", "")
	case r.DNSDone:
		c.add(IDProxyDNS, OK, name+": DNS", dnsLine(r, "", ""), "")
	default:
		c.add(IDProxyDNS, OK, name+": DNS", host+" resolved by the dialer", "")
	}

	// TCP.
	switch {
	case r.Fail == failProxyConnect || (r.Via != "" && r.Fail == failDNS):
		c.add(IDProxyConnect, Problem, name+": connect", "connecting to the HTTP proxy "+r.Via+" failed: "+failureText(r),
			"check HTTPS_PROXY / HTTP_PROXY (host, port, scheme), or add the GOPROXY host to NO_PROXY if it is reachable directly")
		return
	case r.Fail == failConnect:
		c.add(IDProxyConnect, Problem, name+": connect", "TCP connection to "+orStr(r.ConnAddr, e.URL.Host)+" failed"+via+": "+failureText(r),
			"check the port and that the proxy is running; a firewall may block it (then an HTTP proxy may be needed: HTTPS_PROXY)")
		return
	case r.Fail == failTimeout && r.Phase == "TCP connect":
		c.add(IDProxyConnect, Problem, name+": connect", "TCP connection to "+orStr(r.ConnAddr, e.URL.Host)+via+" "+failureText(r),
			"a firewall silently dropping packets looks like this: check the network path, or set HTTPS_PROXY if direct connections are not allowed")
		return
	case r.Connected:
		c.add(IDProxyConnect, OK, name+": connect", "connected to "+r.ConnAddr+via, "")
	}

	// TLS.
	if e.URL.Scheme == "https" {
		if !c.reportTLS(r, name) {
			return
		}
	}
	c.reportHTTP(pp, name)
}

func dnsLine(r *httpResult, pre, post string) string {
	if !r.DNSDone {
		return ""
	}
	return fmt.Sprintf("%s%s -> %s%s", pre, r.DNSHost, strings.Join(r.DNSAddrs, ", "), post)
}

func orStr(s, def string) string {
	if s != "" {
		return s
	}
	return def
}

// reportTLS reports the TLS step; it returns false when the request
// failed there.
func (c *checker) reportTLS(r *httpResult, name string) bool {
	title := name + ": TLS"
	if r.Fail == failTimeout && r.Phase == "TLS handshake" {
		c.add(IDProxyTLS, Problem, title, "TLS handshake "+failureText(r),
			"a TLS-intercepting proxy or firewall can stall handshakes: check with your network team, or raise --timeout")
		return false
	}
	if r.Fail == failTLS {
		var (
			unknown x509.UnknownAuthorityError
			host    x509.HostnameError
			invalid x509.CertificateInvalidError
			record  tls.RecordHeaderError
		)
		err := r.Err
		if r.TLSErr != nil {
			err = r.TLSErr
		}
		switch {
		case errors.As(err, &unknown):
			issuer := ""
			if unknown.Cert != nil {
				issuer = fmt.Sprintf(" (certificate for %s issued by %q)", certName(unknown.Cert), unknown.Cert.Issuer.String())
			}
			c.add(IDProxyTLS, Problem, title,
				"certificate signed by unknown authority"+issuer+": typical behind a TLS-intercepting corporate proxy or with a private CA",
				"install the issuing root CA in the system trust store (update-ca-certificates, Keychain, certmgr), or point SSL_CERT_FILE / SSL_CERT_DIR at it; GOINSECURE does not apply to GOPROXY")
		case errors.As(err, &host):
			c.add(IDProxyTLS, Problem, title, "the certificate is not valid for this host name: "+upstream.Sanitize(host.Error(), 300),
				"use the host name the certificate names in GOPROXY, or have the certificate reissued")
		case errors.As(err, &invalid) && invalid.Reason == x509.Expired:
			c.add(IDProxyTLS, Problem, title, "certificate expired or not yet valid: "+upstream.Sanitize(invalid.Error(), 300),
				"check this machine's clock (date); otherwise the server's certificate must be renewed")
		case errors.As(err, &record):
			c.add(IDProxyTLS, Problem, title, "the server does not speak TLS on this port (it answered plain HTTP?)",
				"use http:// if this is a local proxy without TLS, or fix the port")
		default:
			c.add(IDProxyTLS, Problem, title, "TLS handshake failed: "+failureText(r),
				"check the server's TLS configuration; a proxy or firewall may interfere")
		}
		return false
	}
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return true // failed before TLS, or no trace: reported at the HTTP step
	}
	leaf := r.TLS.PeerCertificates[0]
	seen := fmt.Sprintf("%s, certificate for %s issued by %q, valid until %s", tls.VersionName(r.TLS.Version), certName(leaf), leaf.Issuer.String(), leaf.NotAfter.UTC().Format("2006-01-02"))
	if left := leaf.NotAfter.Sub(c.o.Now()); left < certExpirySoon {
		c.add(IDProxyTLS, Warning, title, seen+fmt.Sprintf(": expires in %s", left.Round(time.Hour)), "have the certificate renewed before it expires")
	} else {
		c.add(IDProxyTLS, OK, title, seen, "")
	}
	return true
}

func certName(cert *x509.Certificate) string {
	if cert.Subject.CommonName != "" {
		return cert.Subject.CommonName
	}
	if len(cert.DNSNames) > 0 {
		return cert.DNSNames[0]
	}
	if len(cert.IPAddresses) > 0 {
		return cert.IPAddresses[0].String()
	}
	return cert.Subject.String()
}

// reportHTTP reports the HTTP answer to the canary: status, latency and
// protocol, then the checksum database support of the proxy.
func (c *checker) reportHTTP(pp *proxyProbe, name string) {
	defer c.reportAuth(pp, name)
	e, r := pp.Entry, pp.List
	stops := `the go command stops here instead of trying the next entry (",")`
	if e.AnyError() {
		stops = `the go command moves to the next entry ("|")`
	} else if lastUsed(c.list, e) {
		stops = "it is the last entry: the download fails"
	}
	title := name + ": HTTP"
	lat := ""
	if !r.IsFile {
		lat = " in " + roundDur(r.Latency).String()
	}
	extra := ""
	if r.Auth != "" {
		extra += "; sent " + r.Auth
	}
	if r.FinalURL != "" {
		extra += "; redirected to " + r.FinalURL
	}
	switch {
	case r.Fail == failTimeout:
		c.add(IDProxyHTTP, Problem, title, "GET "+r.URL+" "+failureText(r)+"; "+stops,
			`check the proxy's health; raise --timeout if it is merely slow; "|" after it lets the go command fall through on timeouts`)
		return
	case r.Err != nil:
		c.add(IDProxyHTTP, Problem, title, "GET "+r.URL+" failed: "+failureText(r)+"; "+stops, "check the proxy URL and the server")
		return
	}
	seen := fmt.Sprintf("GET %s: %s%s%s", r.URL, r.summary(), lat, extra)
	switch s := r.Status; {
	case s == http.StatusOK:
		c.add(IDProxyHTTP, OK, title, seen, "")
	case s == http.StatusNotFound || s == http.StatusGone:
		c.add(IDProxyHTTP, OK, title, seen+fmt.Sprintf("; %s is not served here: the go command tries the next entry", pp.Canary), "")
	case s == http.StatusUnauthorized:
		fix := "add a netrc entry (machine " + e.URL.Host + " login USER password TOKEN) or a GOAUTH command; credentials are sent over https only"
		if r.Auth != "" {
			fix = "the credentials sent were rejected: renew the token in the netrc file or the URL"
		}
		c.add(IDProxyHTTP, Problem, title, seen+"; "+stops, fix)
	case s == http.StatusProxyAuthRequired:
		c.add(IDProxyHTTP, Problem, title, seen+": the HTTP proxy "+r.Via+" wants credentials", "put them in the proxy variable: HTTPS_PROXY=http://USER:PASSWORD@HOST:PORT")
	case s == http.StatusForbidden:
		c.add(IDProxyHTTP, Problem, title, seen+"; "+stops,
			"the proxy refuses this module or this user: check its allow list or your credentials; a proxy that does not serve a module should answer 404/410 so that \",\" falls through")
	default:
		fix := "check the proxy's health and logs"
		if s == http.StatusBadRequest && e.URL.Scheme == "http" {
			fix = "a 400 on http:// often means the port speaks https: try https://" + e.URL.Host + e.URL.Path
		}
		c.add(IDProxyHTTP, Problem, title, seen+"; "+stops, fix)
	}

	if !r.IsFile {
		if r.Latency > c.o.SlowResponse {
			c.add(IDProxyLatency, Warning, name+": latency", fmt.Sprintf("%s for a small request (slow above %s): downloads through it will be slow", roundDur(r.Latency), c.o.SlowResponse),
				"check the network path (VPN, HTTP proxy) or use a proxy closer to you")
		} else {
			c.add(IDProxyLatency, OK, name+": latency", roundDur(r.Latency).String(), "")
		}
	}

	if r.Status == http.StatusOK {
		c.reportProtocol(r, name, pp.Canary)
	}
	c.reportSupported(pp, name)
}

// reportProtocol checks a 200 @v/list answer.
func (c *checker) reportProtocol(r *httpResult, name, canary string) {
	title := name + ": protocol"
	body := bytes.TrimSpace(r.Body)
	if strings.Contains(strings.ToLower(r.ContentType), "html") || bytes.HasPrefix(body, []byte("<")) {
		c.add(IDProxyProtocol, Problem, title,
			fmt.Sprintf("@v/list of %s answered 200 with an HTML page (%q), not a version list: a login page, a captive portal or a wrong base URL", canary, firstLine(body)),
			"open the GOPROXY URL in a browser; check the base path (some servers serve the protocol under /api/go/NAME or similar)")
		return
	}
	var valid, invalid int
	highest, badLine := "", ""
	for _, line := range strings.Split(string(body), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		switch {
		case !semver.IsValid(f[0]):
			invalid++
			if badLine == "" {
				badLine = upstream.Sanitize(line, 80)
			}
		default:
			valid++
			if highest == "" || semver.Compare(f[0], highest) > 0 {
				highest = f[0]
			}
		}
	}
	switch {
	case invalid > 0 && valid == 0:
		c.add(IDProxyProtocol, Problem, title, fmt.Sprintf("@v/list of %s is not a version list (line %q)", canary, badLine),
			"check that the URL is a GOPROXY base URL")
	case invalid > 0:
		c.add(IDProxyProtocol, Warning, title, fmt.Sprintf("@v/list of %s: %d versions and %d lines that are not versions (e.g. %q), which the go command ignores", canary, valid, invalid, badLine),
			"report it to the proxy's operator")
	case valid == 0:
		c.add(IDProxyProtocol, OK, title, fmt.Sprintf("@v/list of %s: empty (no tagged versions)", canary), "")
	default:
		c.add(IDProxyProtocol, OK, title, fmt.Sprintf("@v/list of %s: %d versions, highest %s", canary, valid, highest), "")
	}
}

// reportSupported reports whether the proxy serves the checksum database.
func (c *checker) reportSupported(pp *proxyProbe, name string) {
	r := pp.Supported
	if r == nil {
		return
	}
	e := pp.Entry
	title := name + ": checksum database " + c.sumdb.Name
	switch {
	case r.ok():
		seen := "/sumdb/" + c.sumdb.Name + "/supported: 200: the go command looks up checksums through this proxy"
		if l := pp.Latest; l != nil {
			st, s := c.checkLatest(l)
			if st != OK {
				c.add(IDProxySumDB, st, title, seen+"; but /latest: "+s,
					"the proxy must pass the database's signed answers through unchanged; report it to its operator")
				return
			}
			seen += "; /latest: " + s
		}
		c.add(IDProxySumDB, OK, title, seen, "")
	case r.notFound():
		c.add(IDProxySumDB, OK, title, "/sumdb/"+c.sumdb.Name+"/supported: "+r.summary()+": not proxied here; the go command tries the next entry, then "+c.sumdb.DirectURL()+" directly", "")
	default:
		st, then := Problem, `the go command gives up on the checksum database (","): every download of a module not in go.sum fails with "verifying module: ..."`
		if e.AnyError() {
			st, then = Warning, `the go command tries the next entry ("|")`
		}
		c.add(IDProxySumDB, st, title, "/sumdb/"+c.sumdb.Name+"/supported: "+r.summary()+"; "+then,
			"a proxy that does not serve the database must answer 404 (or 410) on /sumdb/"+c.sumdb.Name+"/supported; report it to its operator, or exclude private paths with GONOSUMDB")
	}
}

// checkLatest verifies a /latest answer against the GOSUMDB key.
func (c *checker) checkLatest(r *httpResult) (Status, string) {
	if !r.ok() {
		return Problem, r.summary()
	}
	if c.sumdb.Verifier == nil {
		return OK, "200 (signature not checked: the key is built into the go command)"
	}
	n, err := note.Open(r.Body, note.VerifierList(c.sumdb.Verifier))
	if err != nil {
		return Problem, "the signed tree head does not verify with the GOSUMDB key: " + err.Error()
	}
	lines := strings.SplitN(n.Text, "\n", 3)
	if len(lines) >= 2 {
		return OK, "signed tree head verified, tree size " + lines[1]
	}
	return OK, "signed tree head verified"
}

// reachedForCanary returns the indexes of the entries the go command
// tries for the canary.
func (c *checker) reachedForCanary(used []proxyEntry) map[int]bool {
	reached := map[int]bool{}
	for _, e := range used {
		reached[e.Index] = true
		if e.Kind != kindProxy && e.Kind != kindFile {
			break
		}
		r := c.results[e.Index].List
		if r.ok() || (!r.notFound() && !e.AnyError()) {
			break
		}
	}
	return reached
}

// reportChain simulates the go command on the canary: which entry
// answers, or where the download stops.
func (c *checker) reportChain(used []proxyEntry) {
	title := "GOPROXY chain for " + c.o.Canary
	var steps []string
	fellThrough := false
	for _, e := range used {
		switch e.Kind {
		case kindDirect:
			st := OK
			if fellThrough {
				st = Warning
			}
			c.add(IDProxyChain, st, title, strings.Join(append(steps, "direct: fetched from version control (not probed)"), "\n"), hintIf(st != OK, "fix the failing proxy above"))
			return
		case kindOff:
			c.add(IDProxyChain, Warning, title, strings.Join(append(steps, "off: the download fails"), "\n"), "")
			return
		}
		r := c.results[e.Index].List
		switch {
		case r.ok():
			steps = append(steps, e.Name()+": 200, served")
			st, fix := OK, ""
			if fellThrough {
				st, fix = Warning, "an earlier entry fails; fix it or remove it to save a round trip per download"
			}
			c.add(IDProxyChain, st, title, strings.Join(steps, "\n"), fix)
			return
		case r.notFound():
			steps = append(steps, e.Name()+": "+r.summary()+", next entry")
		case e.AnyError():
			fellThrough = true
			steps = append(steps, e.Name()+": "+r.summary()+", next entry (\"|\")")
		default:
			steps = append(steps, e.Name()+": "+r.summary()+", download fails")
			fix := `fix or remove the failing proxy; put "|" after it to fall through on errors`
			if lastUsed(c.list, e) {
				fix = "fix the proxy, or add a fallback (|PROXY or ,direct)"
			}
			c.add(IDProxyChain, Problem, title, strings.Join(steps, "\n"), fix)
			return
		}
	}
	c.add(IDProxyChain, Warning, title, strings.Join(append(steps, "end of GOPROXY: not found"), "\n"),
		"no entry serves "+c.o.Canary+"; if it should be public, the proxies may be restricted (allow list), or choose another --canary")
}

// reportSumDBRoute works out, as the go command does, where checksum
// lookups go: the GOSUMDB URL, the first proxy answering 200 on
// /sumdb/NAME/supported, or the database itself; and probes it when the
// proxies did not.
func (c *checker) reportSumDBRoute(ctx context.Context, p *prober, used []proxyEntry) {
	s := c.sumdb
	if s.Off || s.Err != "" {
		return
	}
	title := "checksum database " + s.Name
	if s.URL != nil {
		r := p.get(ctx, joinURL(s.URL, "latest"))
		c.reportDirectSumDB(r, title, "reached at the GOSUMDB URL "+s.URL.Redacted())
		return
	}
	var steps []string
	for _, e := range used {
		if e.Kind == kindDirect || e.Kind == kindOff {
			steps = append(steps, e.Target+": connect to the database directly")
			break
		}
		pp := c.results[e.Index]
		r := pp.Supported
		if r == nil {
			r = pp.List // unreachable: not asked again, the same failure applies
		}
		switch {
		case r.ok():
			c.add(IDGoSumDBRoute, OK, title, strings.Join(append(steps, "through "+e.Name()+"/sumdb/"+s.Name+"/"), "\n"), "")
			return
		case r.notFound():
			steps = append(steps, e.Name()+": not proxied ("+r.summary()+")")
		case e.AnyError():
			steps = append(steps, e.Name()+": "+r.summary()+", next entry (\"|\")")
		default:
			c.add(IDGoSumDBRoute, Problem, title, strings.Join(append(steps, e.Name()+": "+r.summary()+": the go command stops; checksum lookups fail"), "\n"),
				"fix the proxy's /sumdb/"+s.Name+"/supported (it must answer 200 or 404), or exclude private modules with GONOSUMDB")
			return
		}
	}
	r := p.get(ctx, joinURL(mustParse(s.DirectURL()), "latest"))
	c.reportDirectSumDB(r, title, strings.Join(append(steps, "reached directly at "+s.DirectURL()), "\n"))
}

func mustParse(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err) // validated by parseSumDB
	}
	return u
}

func (c *checker) reportDirectSumDB(r *httpResult, title, how string) {
	st, s := c.checkLatest(r)
	if st == OK {
		c.add(IDGoSumDBRoute, OK, title, how+"; /latest: "+s, "")
		return
	}
	c.add(IDGoSumDBRoute, Problem, title, how+"; /latest: "+s+": downloads of modules not in go.sum fail with \"verifying module: ...\"",
		"make the database reachable (HTTPS_PROXY if an HTTP proxy is needed), use a GOPROXY that proxies /sumdb/"+c.sumdb.Name+"/, or exclude private paths with GONOSUMDB")
}

// describeSumDBRouteOffline states the rule when nothing can be probed.
func (c *checker) describeSumDBRouteOffline() {
	s := c.sumdb
	if s.Off || s.Err != "" {
		return
	}
	seen := "not probed (--offline): "
	if s.URL != nil {
		seen += "reached at " + s.URL.Redacted()
	} else {
		seen += "through the first GOPROXY entry answering 200 on /sumdb/" + s.Name + "/supported, else directly at " + s.DirectURL()
	}
	c.add(IDGoSumDBRoute, OK, "checksum database "+s.Name, seen, "")
}
