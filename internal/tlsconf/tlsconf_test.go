package tlsconf_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/modproxy/modproxy/internal/access"
	"github.com/modproxy/modproxy/internal/tlsconf"
	"github.com/modproxy/modproxy/internal/tlsconf/tlstest"
)

// files are a server's certificate and key files.
type files struct {
	cert, key string
	mod       time.Time
}

func newFiles(t *testing.T, c tlstest.Cert) *files {
	t.Helper()
	dir := t.TempDir()
	f := &files{cert: filepath.Join(dir, "server.crt"), key: filepath.Join(dir, "server.key"), mod: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)}
	f.replace(t, c.CertPEM, c.KeyPEM)
	return f
}

// replace writes new contents the way certificate tools do (a new file
// renamed into place), with a modification time that differs from the
// previous one whatever the file system's time resolution.
func (f *files) replace(t *testing.T, certPEM, keyPEM []byte) {
	t.Helper()
	f.mod = f.mod.Add(time.Minute)
	for p, data := range map[string][]byte{f.cert: certPEM, f.key: keyPEM} {
		tmp := p + ".new"
		if err := os.WriteFile(tmp, data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(tmp, f.mod, f.mod); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, p); err != nil {
			t.Fatal(err)
		}
	}
}

func newConfig(t *testing.T, o tlsconf.Options) *tlsconf.Config {
	t.Helper()
	c, err := tlsconf.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// pipeHandshake makes a TLS handshake with c over an in-memory pipe and
// returns the certificate the server presented.
func pipeHandshake(t *testing.T, c *tlsconf.Config, roots *x509.CertPool) *x509.Certificate {
	t.Helper()
	a, b := net.Pipe()
	scfg := c.TLSConfig()
	scfg.SessionTicketsDisabled = true // nothing written after the handshake on the synchronous pipe
	errc := make(chan error, 1)
	go func() {
		defer b.Close()
		errc <- tls.Server(b, scfg).Handshake()
	}()
	cl := tls.Client(a, &tls.Config{RootCAs: roots, ServerName: "localhost"})
	err := cl.Handshake()
	a.Close()
	if serr := <-errc; err == nil {
		err = serr
	}
	if err != nil {
		t.Fatal(err)
	}
	return cl.ConnectionState().PeerCertificates[0]
}

func sameCert(a, b *x509.Certificate) bool { return a.SerialNumber.Cmp(b.SerialNumber) == 0 }

func TestHandshakeChecksFilesAtMostEveryInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ca := tlstest.NewCA(t, "test CA")
		old, next := ca.Server(t), ca.Server(t)
		f := newFiles(t, old)
		var logs bytes.Buffer
		c := newConfig(t, tlsconf.Options{CertFile: f.cert, KeyFile: f.key, CheckInterval: 10 * time.Second, Logger: slog.New(slog.NewTextHandler(&logs, nil))})

		if got := pipeHandshake(t, c, ca.Pool()); !sameCert(got, old.Leaf) {
			t.Fatal("first handshake: not the certificate of the files")
		}
		f.replace(t, next.CertPEM, next.KeyPEM)
		if got := pipeHandshake(t, c, ca.Pool()); !sameCert(got, old.Leaf) {
			t.Fatal("the files were checked again before the interval passed")
		}
		time.Sleep(10 * time.Second)
		if got := pipeHandshake(t, c, ca.Pool()); !sameCert(got, next.Leaf) {
			t.Fatal("the first handshake after the interval did not use the new files")
		}
		if !sameCert(c.Leaf(), next.Leaf) {
			t.Error("Leaf is not the new certificate")
		}

		// A bad pair (the key of another certificate) is not used, and is
		// reported once, not at every check.
		third := ca.Server(t)
		f.replace(t, third.CertPEM, old.KeyPEM)
		for range 3 {
			time.Sleep(10 * time.Second)
			if got := pipeHandshake(t, c, ca.Pool()); !sameCert(got, next.Leaf) {
				t.Fatal("a mismatched pair replaced the certificate in use")
			}
		}
		if n := strings.Count(logs.String(), "do not load"); n != 1 {
			t.Errorf("a bad pair was reported %d times, want once:\n%s", n, logs.String())
		}
		// The key arrives: the pair loads at the next check.
		f.replace(t, third.CertPEM, third.KeyPEM)
		time.Sleep(10 * time.Second)
		if got := pipeHandshake(t, c, ca.Pool()); !sameCert(got, third.Leaf) {
			t.Fatal("the completed pair was not loaded")
		}
	})
}

func TestReload(t *testing.T) {
	ca := tlstest.NewCA(t, "test CA")
	old, next := ca.Server(t), ca.Server(t)
	f := newFiles(t, old)
	c := newConfig(t, tlsconf.Options{CertFile: f.cert, KeyFile: f.key, CheckInterval: -1})

	f.replace(t, next.CertPEM, []byte("not a key"))
	if err := c.Reload(); err == nil {
		t.Fatal("Reload of a bad pair succeeded")
	}
	if got := pipeHandshake(t, c, ca.Pool()); !sameCert(got, old.Leaf) {
		t.Fatal("a failed Reload changed the certificate")
	}
	if err := os.Remove(f.key); err != nil {
		t.Fatal(err)
	}
	if err := c.Reload(); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Reload without a key file: %v, want os.ErrNotExist", err)
	}
	f.replace(t, next.CertPEM, next.KeyPEM)
	if got := pipeHandshake(t, c, ca.Pool()); !sameCert(got, old.Leaf) {
		t.Fatal("with CheckInterval < 0 a handshake looked at the files")
	}
	if err := c.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := pipeHandshake(t, c, ca.Pool()); !sameCert(got, next.Leaf) {
		t.Fatal("Reload did not take the new pair")
	}
}

func TestNewErrors(t *testing.T) {
	ca := tlstest.NewCA(t, "test CA")
	f := newFiles(t, ca.Server(t))
	notPEM := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	for name, o := range map[string]tlsconf.Options{
		"no files":          {},
		"no key":            {CertFile: f.cert},
		"missing files":     {CertFile: f.cert + ".x", KeyFile: f.key},
		"swapped files":     {CertFile: f.key, KeyFile: f.cert},
		"missing client CA": {CertFile: f.cert, KeyFile: f.key, ClientCAFile: notPEM + ".x"},
		"client CA not PEM": {CertFile: f.cert, KeyFile: f.key, ClientCAFile: notPEM},
	} {
		if _, err := tlsconf.New(o); err == nil {
			t.Errorf("%s: New succeeded", name)
		}
	}
}

// server runs h over TLS on 127.0.0.1 until the test ends.
func server(t *testing.T, c *tlsconf.Config, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, TLSConfig: c.TLSConfig(), ErrorLog: log.New(io.Discard, "", 0)}
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := srv.ServeTLS(ln, "", ""); !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("ServeTLS: %v", err)
		}
	})
	t.Cleanup(func() {
		srv.Close()
		wg.Wait()
	})
	return "https://" + ln.Addr().String()
}

// client returns a client with its own connections, trusting roots and
// presenting cert, if given, whatever CAs the server asks for (the go
// client would otherwise send no certificate that the server's CAs did
// not sign, and curl sends it anyway).
func client(t *testing.T, roots *x509.CertPool, cert ...tls.Certificate) *http.Client {
	cfg := &tls.Config{RootCAs: roots}
	if len(cert) > 0 {
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert[0], nil }
	}
	tr := &http.Transport{TLSClientConfig: cfg, ForceAttemptHTTP2: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

func get(t *testing.T, cl *http.Client, url string, header ...string) (*http.Response, string, error) {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := cl.Do(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp, string(body), err
}

func TestReloadKeepsDownloadsInFlight(t *testing.T) {
	ca := tlstest.NewCA(t, "test CA")
	old, next := ca.Server(t), ca.Server(t)
	f := newFiles(t, old)
	c := newConfig(t, tlsconf.Options{CertFile: f.cert, KeyFile: f.key})

	const half = 64 << 10
	release := make(chan struct{})
	url := server(t, c, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/slow" {
			fmt.Fprint(w, "ok")
			return
		}
		w.Write(bytes.Repeat([]byte("a"), half))
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		w.Write(bytes.Repeat([]byte("b"), half))
	}))

	slow := client(t, ca.Pool())
	resp, err := slow.Get(url + "/slow")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.ProtoMajor != 2 {
		t.Errorf("protocol %s, want HTTP/2", resp.Proto)
	}
	first := make([]byte, half)
	if _, err := io.ReadFull(resp.Body, first); err != nil {
		t.Fatal(err)
	}

	f.replace(t, next.CertPEM, next.KeyPEM)
	if err := c.Reload(); err != nil {
		t.Fatal(err)
	}
	fresh, body, err := get(t, client(t, ca.Pool()), url+"/")
	if err != nil || body != "ok" {
		t.Fatalf("request on a new connection: %q, %v", body, err)
	}
	if !sameCert(fresh.TLS.PeerCertificates[0], next.Leaf) {
		t.Error("a new connection after Reload did not get the new certificate")
	}

	close(release)
	rest, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("the download in flight failed after the reload: %v", err)
	}
	if len(rest) != half || rest[0] != 'b' {
		t.Errorf("the download in flight got %d more bytes, want %d", len(rest), half)
	}
	if !sameCert(resp.TLS.PeerCertificates[0], old.Leaf) {
		t.Error("the download in flight was not on the old connection")
	}
}

func TestClientCertificates(t *testing.T) {
	ca, other := tlstest.NewCA(t, "client CA"), tlstest.NewCA(t, "another CA")
	serverCA := tlstest.NewCA(t, "server CA")
	f := newFiles(t, serverCA.Server(t))
	caFile := ca.WriteCA(t, t.TempDir(), "clients.pem")
	c := newConfig(t, tlsconf.Options{CertFile: f.cert, KeyFile: f.key, ClientCAFile: caFile})

	ctx := context.Background()
	grant, err := access.NewGrant([]access.Scope{access.ScopeRead}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := access.Open(ctx, access.Options{
		State:        access.NewFile(filepath.Join(t.TempDir(), access.StateName)),
		Certificates: []access.CertMapping{{Name: "ci", Subjects: []string{"uri:spiffe://corp.example.com/ci"}, Grant: grant}},
	})
	if err != nil {
		t.Fatal(err)
	}
	secret, _, err := svc.Create(ctx, "dev", grant, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	var handled atomic.Int64
	url := server(t, c, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		handled.Add(1)
		id, err := svc.Authenticate(r)
		if err != nil {
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, err)
			return
		}
		fmt.Fprintf(w, "%s %s %s", id.Kind, id.Name, id.Subject)
	}))

	roots := serverCA.Pool()
	for _, tc := range []struct {
		name   string
		cl     *http.Client
		header []string
		want   string
		status int
	}{
		{"mapped certificate", client(t, roots, ca.Client(t, "runner-1", "uri:spiffe://corp.example.com/ci").TLS), nil,
			"certificate ci uri:spiffe://corp.example.com/ci", 200},
		{"certificate without mapping", client(t, roots, ca.Client(t, "stranger", "dns:stranger.example.com").TLS), nil, "", 401},
		{"token without certificate", client(t, roots), []string{"Authorization", "Bearer " + secret}, "token dev ", 200},
		{"nothing", client(t, roots), nil, "", 401},
	} {
		resp, body, err := get(t, tc.cl, url, tc.header...)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if resp.StatusCode != tc.status || tc.want != "" && body != tc.want {
			t.Errorf("%s: %d %q, want %d %q", tc.name, resp.StatusCode, body, tc.status, tc.want)
		}
	}

	before := handled.Load()
	foreign := client(t, roots, other.Client(t, "runner-1", "uri:spiffe://corp.example.com/ci").TLS)
	if resp, body, err := get(t, foreign, url); err == nil {
		t.Fatalf("a certificate from another CA was accepted: %d %q", resp.StatusCode, body)
	}
	if handled.Load() != before {
		t.Error("a request with a certificate from another CA reached the handler")
	}
}

func TestHandshakeGarbage(t *testing.T) {
	ca := tlstest.NewCA(t, "test CA")
	f := newFiles(t, ca.Server(t))
	c := newConfig(t, tlsconf.Options{CertFile: f.cert, KeyFile: f.key})
	url := server(t, c, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "ok") }))
	addr := strings.TrimPrefix(url, "https://")

	random := make([]byte, 4096)
	rng := rand.NewChaCha8([32]byte{1})
	rng.Read(random)
	for name, garbage := range map[string][]byte{
		"random bytes":               random,
		"record header, huge length": {0x16, 0x03, 0x01, 0xff, 0xff, 0x01, 0x00},
		"client hello of zeros":      append([]byte{0x16, 0x03, 0x01, 0x00, 0x40, 0x01, 0x00, 0x00, 0x3c}, make([]byte, 60)...),
		"truncated record":           {0x16, 0x03},
		"plain HTTP":                 []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
	} {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		if err := conn.SetDeadline(time.Now().Add(time.Minute)); err != nil { // a guard against a hang, not a measurement
			t.Fatal(err)
		}
		if _, err := conn.Write(garbage); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if cw, ok := conn.(*net.TCPConn); ok {
			cw.CloseWrite()
		}
		answer, _ := io.ReadAll(conn) // the server answers with an alert, a 400 or nothing, then closes
		conn.Close()
		if name == "plain HTTP" && !bytes.HasPrefix(answer, []byte("HTTP/1.0 400")) {
			t.Errorf("plain HTTP to the TLS port: %q, want a 400", answer)
		}
		if _, body, err := get(t, client(t, ca.Pool()), url); err != nil || body != "ok" {
			t.Fatalf("after %s: %q, %v", name, body, err)
		}
	}
}
