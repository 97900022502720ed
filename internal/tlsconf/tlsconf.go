// Package tlsconf is the server side of TLS for modproxy's listeners: a
// tls.Config with modern defaults whose certificate is read from PEM files
// and replaced while the server runs, and optional client certificates.
//
// Defaults: TLS 1.2 at least (1.3 is preferred by crypto/tls whenever the
// client offers it; its cipher suites are not configurable and need no
// list), the standard library's default TLS 1.2 suites (ECDHE with AEAD
// first), and ALPN "h2" then "http/1.1", so that net/http serves HTTP/2.
//
// Reloading: the certificate is chosen per handshake through
// tls.Config.GetCertificate. At most every Options.CheckInterval, a
// handshake first compares the size and modification time of the
// certificate and key files with those of the pair in use and loads the
// files again when either changed; Reload (for SIGHUP) loads them
// unconditionally. Connections that are open keep the certificate they
// were made with and are never dropped. A new pair that does not load
// (unreadable, not PEM, key not matching the certificate, half written) is
// not used: the previous pair stays, the error is logged, and Reload
// returns it; the automatic check retries only once the files change
// again, so a bad pair is logged once, not per handshake.
//
// Client certificates: with Options.ClientCAFile, ClientAuth is
// tls.VerifyClientCertIfGiven: a client may present no certificate (and
// use a token instead), but a certificate it presents must chain to one of
// the file's CAs, or the handshake fails. Verified chains reach handlers as
// http.Request.TLS.VerifiedChains, which access.Service.Authenticate maps
// to identities. The CA file is read once, by New: changing the client CAs
// takes a restart.
//
// A Config is safe for concurrent use; it starts no goroutine.
package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultCheckInterval is how often handshakes look at the files.
const DefaultCheckInterval = 5 * time.Second

// Options configure a Config.
type Options struct {
	CertFile, KeyFile string // PEM certificate (chain) and private key; required
	// ClientCAFile, when set, holds the PEM CA certificates that client
	// certificates must chain to.
	ClientCAFile string
	// CheckInterval bounds how often a handshake checks the files:
	// DefaultCheckInterval when zero; negative disables the check (only
	// Reload replaces the pair).
	CheckInterval time.Duration
	// Logger receives reloads and reload failures; nil discards.
	Logger *slog.Logger
}

// Config serves a certificate pair that follows its files.
type Config struct {
	o        Options
	log      *slog.Logger
	clientCA *x509.CertPool

	cur       atomic.Pointer[pair]
	nextCheck atomic.Int64 // unix nanoseconds before which handshakes do not check

	mu     sync.Mutex // serialises loads; guards failed
	failed stamps     // files as they were when they last failed to load
}

// pair is a loaded certificate with the state of its files.
type pair struct {
	cert   *tls.Certificate
	stamps stamps
}

type stamp struct {
	size int64
	mod  time.Time
}

type stamps [2]stamp // certificate, key

// New loads the pair (and the client CAs) or fails: a server must not
// start without its certificate.
func New(o Options) (*Config, error) {
	if o.CertFile == "" || o.KeyFile == "" {
		return nil, errors.New("tlsconf: a certificate file and a key file are both required")
	}
	if o.CheckInterval == 0 {
		o.CheckInterval = DefaultCheckInterval
	}
	c := &Config{o: o, log: o.Logger}
	if c.log == nil {
		c.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.ClientCAFile != "" {
		data, err := os.ReadFile(o.ClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("tlsconf: client CA file: %w", err)
		}
		c.clientCA = x509.NewCertPool()
		if !c.clientCA.AppendCertsFromPEM(data) {
			return nil, fmt.Errorf("tlsconf: client CA file %s holds no PEM certificate", o.ClientCAFile)
		}
	}
	p, err := c.load()
	if err != nil {
		return nil, err
	}
	c.install(p, "loaded")
	return c, nil
}

// TLSConfig returns a new tls.Config for a listener (http.Server.TLSConfig
// or tls.NewListener); every listener may have its own, and all follow
// this Config's certificate.
func (c *Config) TLSConfig() *tls.Config {
	t := &tls.Config{
		MinVersion:     tls.VersionTLS12,
		NextProtos:     []string{"h2", "http/1.1"},
		GetCertificate: c.getCertificate,
	}
	if c.clientCA != nil {
		t.ClientAuth = tls.VerifyClientCertIfGiven
		t.ClientCAs = c.clientCA
	}
	return t
}

// Leaf returns the certificate in use (for reporting its expiry).
func (c *Config) Leaf() *x509.Certificate { return c.cur.Load().cert.Leaf }

// Reload loads the files now, whatever their state. On error the pair in
// use stays and the error (also logged) is returned.
func (c *Config) Reload() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	p, err := c.load()
	if err != nil {
		c.failed = p.stamps
		c.log.Error("TLS certificate not reloaded; the previous one stays in use", "err", err)
		return err
	}
	c.install(p, "reloaded")
	return nil
}

func (c *Config) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	c.maybeCheck()
	return c.cur.Load().cert, nil
}

// maybeCheck reloads the pair when its files changed, at most once per
// CheckInterval; handshakes that arrive during a check use the pair in
// use without waiting.
func (c *Config) maybeCheck() {
	if c.o.CheckInterval < 0 {
		return
	}
	now := time.Now()
	if now.UnixNano() < c.nextCheck.Load() || !c.mu.TryLock() {
		return
	}
	defer c.mu.Unlock()
	if now.UnixNano() < c.nextCheck.Load() {
		return // another handshake checked meanwhile
	}
	c.nextCheck.Store(now.Add(c.o.CheckInterval).UnixNano())
	st := c.stat()
	if st == c.cur.Load().stamps || st == c.failed {
		return
	}
	p, err := c.load()
	if err != nil {
		c.failed = st
		c.log.Error("TLS certificate files changed but do not load; the previous certificate stays in use", "err", err)
		return
	}
	c.install(p, "reloaded")
}

func (c *Config) stat() stamps {
	var st stamps
	for i, f := range [...]string{c.o.CertFile, c.o.KeyFile} {
		if fi, err := os.Stat(f); err == nil {
			st[i] = stamp{size: fi.Size(), mod: fi.ModTime()}
		}
	}
	return st
}

// load reads the pair. The stamps are taken before reading, so that a
// file replaced during the read is seen as changed at the next check.
func (c *Config) load() (pair, error) {
	p := pair{stamps: c.stat()}
	certPEM, err := os.ReadFile(c.o.CertFile)
	if err != nil {
		return p, fmt.Errorf("tlsconf: certificate file: %w", err)
	}
	keyPEM, err := os.ReadFile(c.o.KeyFile)
	if err != nil {
		return p, fmt.Errorf("tlsconf: key file: %w", err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return p, fmt.Errorf("tlsconf: %s and %s: %w", c.o.CertFile, c.o.KeyFile, err)
	}
	if cert.Leaf == nil {
		if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return p, fmt.Errorf("tlsconf: %s: %w", c.o.CertFile, err)
		}
	}
	p.cert = &cert
	return p, nil
}

func (c *Config) install(p pair, verb string) {
	c.cur.Store(&p)
	c.failed = stamps{}
	leaf := p.cert.Leaf
	c.log.Info("TLS certificate "+verb, "subject", leaf.Subject.String(), "dns", leaf.DNSNames, "not_after", leaf.NotAfter, "serial", leaf.SerialNumber.String())
	if now := time.Now(); now.After(leaf.NotAfter) || now.Before(leaf.NotBefore) {
		c.log.Warn("TLS certificate is not valid now", "not_before", leaf.NotBefore, "not_after", leaf.NotAfter)
	}
}
