package e2e

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/modproxy/modproxy/internal/tlsconf/tlstest"
	"github.com/modproxy/modproxy/internal/upstream/direct/directtest"
	"github.com/modproxy/modproxy/internal/upstream/upstreamtest"
)

// certClient is an HTTP client trusting ca that presents cert (none when
// cert is nil). The go command cannot present a client certificate, so
// the certificate path is tested with this client.
func certClient(ca *tlstest.CA, cert *tlstest.Cert) *http.Client {
	cfg := &tls.Config{RootCAs: ca.Pool()}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{cert.TLS}
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: cfg, ForceAttemptHTTP2: true}, Timeout: 30 * time.Second}
}

// fetch GETs path with c and the token, returning the response (its body
// closed) and the body.
func (ts *tlsServer) fetch(t *testing.T, c *http.Client, path, token string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest("GET", ts.srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

func getWith(t *testing.T, c *http.Client, url string) (int, []byte, error) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// TestClientCertificates: with tls.client_ca_file and [[auth.certificate]]
// mappings, a verified client certificate is an identity: a mapped one
// reads modules (named in the access log), one with the admin scope uses
// the admin API (whose /api/clients counts the reader), an unmapped one
// gets 401, one from another CA fails the handshake.
func TestClientCertificates(t *testing.T) {
	up := upstreamtest.New(t, testModules())
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "modproxy e2e client CA")
	cfgFile := filepath.Join(dir, "modproxy.toml")
	cfg := "[tls]\nclient_ca_file = \"" + ca.WriteCA(t, dir, "clients.pem") + "\"\n\n" +
		"[[auth.certificate]]\nname = \"ci-runner\"\nsubjects = [\"dns:runner.ci.corp.example\"]\nscopes = [\"read\"]\n\n" +
		"[[auth.certificate]]\nname = \"ops\"\nsubjects = [\"cn:ops-desk\"]\nscopes = [\"admin\"]\n"
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	ts := startTLSServer(t, up, nil, "--config", cfgFile)
	runner := ca.Client(t, "runner-7", "dns:runner.ci.corp.example")
	ops := ca.Client(t, "ops-desk")
	stranger := ca.Client(t, "stranger", "dns:elsewhere.example")
	foreign := tlstest.NewCA(t, "another CA").Client(t, "runner-7", "dns:runner.ci.corp.example")

	const list = "/example.com/a/@v/list"
	if code, body, err := getWith(t, certClient(ts.ca, &runner), ts.srv.URL+list); err != nil || code != 200 || !bytes.Contains(body, []byte("v1.0.0")) {
		t.Fatalf("mapped certificate: %d %q %v", code, body, err)
	}
	for name, c := range map[string]*tlstest.Cert{"no certificate": nil, "unmapped certificate": &stranger} {
		if code, body, err := getWith(t, certClient(ts.ca, c), ts.srv.URL+list); err != nil || code != http.StatusUnauthorized {
			t.Errorf("%s: %d %q %v, want 401", name, code, body, err)
		}
	}
	// Go's client offers only a certificate of a CA the server names, so
	// the other CA's is not sent: no credentials. Presented anyway, it
	// fails the handshake.
	if code, _, err := getWith(t, certClient(ts.ca, &foreign), ts.srv.URL+list); err != nil || code != http.StatusUnauthorized {
		t.Errorf("certificate of another CA, offered: %d %v, want 401 (not sent)", code, err)
	}
	forced := certClient(ts.ca, nil)
	forced.Transport.(*http.Transport).TLSClientConfig.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
		return &foreign.TLS, nil
	}
	if code, _, err := getWith(t, forced, ts.srv.URL+list); err == nil {
		t.Errorf("certificate of another CA, presented: %d, want a failed handshake", code)
	}

	admin := ts.srv.adminURL(t)
	if code, body, err := getWith(t, certClient(ts.ca, &runner), admin+"/api/clients"); err != nil || code != http.StatusForbidden {
		t.Errorf("admin API with a read certificate: %d %q %v, want 403", code, body, err)
	}
	code, body, err := getWith(t, certClient(ts.ca, &ops), admin+"/api/clients")
	if err != nil || code != 200 {
		t.Fatalf("admin API with the admin certificate: %d %q %v", code, body, err)
	}
	var clients []struct {
		Identity string `json:"identity"`
		Requests int64  `json:"requests"`
	}
	if err := json.Unmarshal(body, &clients); err != nil {
		t.Fatal(err)
	}
	if len(clients) == 0 || clients[0].Identity != "ci-runner" || clients[0].Requests != 1 {
		t.Errorf("/api/clients = %+v, want ci-runner with 1 request", clients)
	}
	if !ts.srv.logged(`"identity":"ci-runner"`) {
		t.Error("the access log does not name the certificate's identity")
	}
}

// TestCertificateReload: replacing the certificate files makes the next
// handshake serve the new certificate (without SIGHUP), while a
// connection opened before keeps working and a download in flight on it
// completes.
func TestCertificateReload(t *testing.T) {
	up := upstreamtest.New(t, testModules())
	const zip = "example.com/a/@v/v1.0.0.zip"
	up.SetFault(zip, upstreamtest.Fault{Kind: upstreamtest.Delay, Delay: 2 * time.Second})
	ts := startTLSServer(t, up, nil)
	secret := ts.createToken(t, "ci")
	get := func(c *http.Client, path string) (*http.Response, []byte) { return ts.fetch(t, c, path, secret) }
	served := func(resp *http.Response) string { return resp.TLS.PeerCertificates[0].SerialNumber.String() }

	old := certClient(ts.ca, nil) // one HTTP/2 connection, kept open
	resp, _ := get(old, "/example.com/a/@v/list")
	first := served(resp)

	// A zip whose fill takes 2 s, requested on the old connection before
	// the files are replaced.
	inflight := make(chan []byte, 1)
	req, err := http.NewRequest("GET", ts.srv.URL+"/"+zip, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+secret)
	go func() {
		resp, err := old.Do(req)
		if err != nil {
			inflight <- nil
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != 200 {
			b = nil
		}
		inflight <- b
	}()

	next := ts.ca.Server(t)
	for _, f := range []struct {
		path string
		data []byte
	}{{ts.keyFile, next.KeyPEM}, {ts.certFile, next.CertPEM}} {
		tmp := f.path + ".new"
		if err := os.WriteFile(tmp, f.data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, f.path); err != nil {
			t.Fatal(err)
		}
	}
	want := next.Leaf.SerialNumber.String()
	deadline := time.Now().Add(15 * time.Second)
	for {
		fresh := certClient(ts.ca, nil) // a new connection each time
		resp, _ := get(fresh, "/example.com/a/@v/list")
		fresh.CloseIdleConnections()
		if served(resp) == want {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("new handshakes still get certificate %s after 15 s, want %s", served(resp), want)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if resp, _ := get(old, "/example.com/a/@v/list"); resp.StatusCode != 200 || served(resp) != first {
		t.Errorf("the connection opened before the reload: %d with certificate %s, want 200 with %s", resp.StatusCode, served(resp), first)
	}
	if b := <-inflight; !bytes.Equal(b, up.ZipBytes("example.com/a", "v1.0.0")) {
		t.Errorf("the download in flight during the reload got %d bytes, want the zip", len(b))
	}
}

// TestPrivateModuleFromGitPerToken: a private module fetched from a
// loopback git server by the direct route is downloaded by the real go
// command with the token whose --match covers it; another token's go
// command gets 404, and the answer it gets is byte for byte the answer
// to a module that does not exist.
func TestPrivateModuleFromGitPerToken(t *testing.T) {
	git := directtest.New(t)
	git.MapHost("corp.example.com")
	git.Repo("team-a/lib", []directtest.Commit{{Tag: "v1.0.0", Files: map[string]string{
		"go.mod": "module corp.example.com/team-a/lib.git\n\ngo 1.21\n",
		"lib.go": "package lib\n\nconst Name = \"lib\"\n",
	}}})
	up := upstreamtest.New(t, testModules())
	_, sumKey := up.SumDB()
	cfgFile := filepath.Join(t.TempDir(), "modproxy.toml")
	cfg := "[verify]\nprivate = [\"corp.example.com\"]\n\n[[route]]\nmatch = \"corp.example.com\"\nupstream = \"direct\"\n"
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	ts := startTLSServer(t, up, git.Env(), "--config", cfgFile)
	teamA := ts.createToken(t, "team-a", "--match", "corp.example.com/team-a/*")
	teamB := ts.createToken(t, "team-b", "--match", "corp.example.com/team-b/*")

	g := newGoEnv(t, ts.srv.URL, sumKey)
	g.vars = append(g.vars, "SSL_CERT_FILE="+ts.caFile, "GOAUTH=netrc", "GONOSUMDB=corp.example.com")
	g.write(t, "go.mod", "module example.com/proj\n\ngo 1.21\n")
	download := func(netrc string) (string, error) {
		g.freshModCache(t)
		g.vars = append(g.vars, "NETRC="+netrc)
		return g.try("mod", "download", "-json", "corp.example.com/team-a/lib.git@v1.0.0")
	}
	if out, err := download(ts.netrc(t, "netrc-a", teamA)); err != nil {
		t.Fatalf("team A's token: %v\n%s", err, out)
	}
	out, err := download(ts.netrc(t, "netrc-b", teamB))
	if err == nil || !strings.Contains(out, "404 Not Found") {
		t.Fatalf("team B's token: %v\n%s; want a 404", err, out)
	}

	answer := func(token, path string) (int, string, []byte) {
		t.Helper()
		resp, b := ts.fetch(t, ts.client, path, token)
		resp.Header.Del("Date")
		var h bytes.Buffer
		if err := resp.Header.Write(&h); err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, h.String(), b
	}
	for _, suffix := range []string{"/@v/v1.0.0.info", "/@v/list", "/@latest", "/@v/v1.0.0.zip"} {
		rc, rh, rb := answer(teamB, "/corp.example.com/team-a/lib.git"+suffix)
		mc, mh, mb := answer(teamA, "/corp.example.com/team-a/xyz.git"+suffix) // does not exist
		rb = bytes.ReplaceAll(rb, []byte("team-a/lib.git"), []byte("team-a/xyz.git"))
		if rc != http.StatusNotFound || rc != mc || rh != mh || !bytes.Equal(rb, mb) {
			t.Errorf("%s: refused %d %q %q; missing %d %q %q; want the same 404", suffix, rc, rh, rb, mc, mh, mb)
		}
	}
}
