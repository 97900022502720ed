package app

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/modproxy/modproxy/internal/access"
	"github.com/modproxy/modproxy/internal/config"
	"github.com/modproxy/modproxy/internal/tlsconf"
)

// OpenAccess opens the token and certificate service of the cache cfg
// names (for the server and the token commands). Errors are the State's
// or a *config.Error naming the [[auth.certificate]] table at fault.
func OpenAccess(ctx context.Context, cfg config.Config, log *slog.Logger) (*access.Service, error) {
	state, err := TokenState(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return openAccess(ctx, cfg, state, log)
}

// openAccess is OpenAccess on state.
func openAccess(ctx context.Context, cfg config.Config, state access.State, log *slog.Logger) (*access.Service, error) {
	certs := make([]access.CertMapping, 0, len(cfg.Auth.Certificates))
	for i, m := range cfg.Auth.Certificates {
		key := fmt.Sprintf("auth.certificate[%d]", i)
		scopes := make([]access.Scope, 0, len(m.Scopes))
		for _, s := range m.Scopes {
			sc, err := access.ParseScope(s)
			if err != nil {
				return nil, &config.Error{Key: key + ".scopes", Err: err}
			}
			scopes = append(scopes, sc)
		}
		g, err := access.NewGrant(scopes, m.Namespaces, m.Match)
		if err != nil {
			return nil, &config.Error{Key: key, Err: err}
		}
		certs = append(certs, access.CertMapping{Name: m.Name, Subjects: m.Subjects, Grant: g})
	}
	svc, err := access.Open(ctx, access.Options{State: state, Certificates: certs,
		Private: strings.Join(cfg.Verify.Private, ","), Logger: log})
	if err != nil {
		return nil, fmt.Errorf("tokens: %w", err)
	}
	return svc, nil
}

// identityName is the audit log's Identity: the name of the identity the
// HTTP layer put in ctx (access.NewContext), or "".
func identityName(ctx context.Context) string {
	id, _ := access.FromContext(ctx)
	return id.Name
}

// openTLS loads the configured certificate pair, or returns nil when
// tls.cert_file is not set.
func openTLS(cfg config.Config, log *slog.Logger) (*tlsconf.Config, error) {
	if cfg.TLS.CertFile == "" {
		return nil, nil
	}
	c, err := tlsconf.New(tlsconf.Options{CertFile: cfg.TLS.CertFile, KeyFile: cfg.TLS.KeyFile, ClientCAFile: cfg.TLS.ClientCAFile, Logger: log})
	if err != nil {
		return nil, &config.Error{Key: "tls", Err: err}
	}
	return c, nil
}

// tlsListener wraps ln in TLS when the server has a certificate (each
// listener gets its own tls.Config following the files); otherwise it
// returns ln. The listener code calls it on every listener it serves.
func (s *Server) tlsListener(ln net.Listener) net.Listener {
	if s.tls == nil {
		return ln
	}
	return tls.NewListener(ln, s.tls.TLSConfig())
}

// scheme is the URL scheme of the listeners.
func (s *Server) scheme() string {
	if s.tls == nil {
		return "http"
	}
	return "https"
}

// ReloadTLS loads the certificate files now (SIGHUP). Without TLS it does
// nothing.
func (s *Server) ReloadTLS() error {
	if s.tls == nil {
		return nil
	}
	return s.tls.Reload()
}

// reloadOnHangup reloads the certificate on SIGHUP until the returned stop
// function is called (which waits for the goroutine). Without TLS it
// listens for nothing, leaving SIGHUP's default.
func (s *Server) reloadOnHangup() (stop func()) {
	if s.tls == nil {
		return func() {}
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	done, quit := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-quit:
				return
			case <-hup:
				if err := s.ReloadTLS(); err != nil {
					s.log.Error("SIGHUP: certificate reload failed; keeping the one in use", "err", err)
				} else {
					s.log.Info("SIGHUP: certificate reloaded")
				}
			}
		}
	}()
	return func() {
		signal.Stop(hup)
		close(quit)
		<-done
	}
}
