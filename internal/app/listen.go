package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/modproxy/modproxy/internal/config"
	"github.com/modproxy/modproxy/internal/listener"
)

// listeners are a server's bound listeners; admin is nil when the admin
// listener is off.
type listeners struct {
	main, admin net.Listener
}

func (l listeners) close() {
	l.main.Close()
	if l.admin != nil {
		l.admin.Close()
	}
}

// bind binds every listener before anything is served or announced. A
// listen address that cannot be bound is a *config.Error naming the key,
// the address and the flag that changes it; so is an explicitly
// configured admin.listen. The derived admin address (admin.listen =
// "auto") is only a wish: when it cannot be bound, the server runs without
// the admin listener and logs why.
func (s *Server) bind() (listeners, error) {
	sv := s.cfg.Server
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return listeners{}, bindError("listen", "--listen", s.cfg.Listen, err)
	}
	l := listeners{main: listener.New(ln, listener.Options{MaxConns: sv.MaxConnections, SendTimeout: time.Duration(sv.SendTimeout),
		OnFull: s.onFull("server.max_connections", sv.MaxConnections)})}
	if s.cfg.Admin.Off() {
		s.log.Info("admin listener off (admin.listen is empty or off)")
		return l, nil
	}
	addr, derived := s.cfg.AdminAddr()
	if addr == "" {
		s.log.Warn("admin listener off: no port follows listen's; set admin.listen (--admin-listen) to an address", "listen", s.cfg.Listen)
		return l, nil
	}
	aln, err := net.Listen("tcp", addr)
	switch {
	case err != nil && derived:
		s.log.Warn("admin listener off: its default address, the port after listen's, cannot be bound; set admin.listen (--admin-listen) to another address, or off",
			"admin_addr", addr, "err", err)
		return l, nil
	case err != nil:
		l.close()
		return listeners{}, bindError("admin.listen", "--admin-listen", addr, err)
	}
	l.admin = listener.New(aln, listener.Options{MaxConns: s.cfg.Admin.MaxConnections, SendTimeout: time.Duration(sv.SendTimeout),
		OnFull: s.onFull("admin.max_connections", s.cfg.Admin.MaxConnections)})
	return l, nil
}

// bindError explains a failed bind of the address configured by key.
func bindError(key, flag, addr string, err error) error {
	hint := fmt.Sprintf("choose another address with %s or %s", flag, config.EnvName(key))
	if key == "admin.listen" {
		hint += `, or turn the admin listener off with --admin-listen off`
	}
	if errors.Is(err, syscall.EADDRINUSE) {
		return &config.Error{Key: key, Err: fmt.Errorf("%s is in use by another program (%w); %s", addr, err, hint)}
	}
	return &config.Error{Key: key, Err: fmt.Errorf("cannot listen on %s (%w); %s", addr, err, hint)}
}

// onFull warns, at most once a minute, that a listener's connection bound
// was reached.
func (s *Server) onFull(key string, n int) func() {
	var last atomic.Int64
	return func() {
		now := time.Now().UnixNano()
		if prev := last.Load(); now-prev < int64(time.Minute) || !last.CompareAndSwap(prev, now) {
			return
		}
		s.log.Warn("connection limit reached: new clients wait until a connection closes", "key", key, "limit", n)
	}
}

// httpServer is an http.Server for h with the [server] bounds: headers
// and whole requests (bodies) must arrive in time, idle keep-alive
// connections are closed, and there is no write timeout (the listener's
// send_timeout cuts clients that stop reading, never a slow download that
// moves).
func (s *Server) httpServer(ctx context.Context, h http.Handler) *http.Server {
	sv := s.cfg.Server
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: time.Duration(sv.ReadHeaderTimeout),
		ReadTimeout:       time.Duration(sv.ReadTimeout),
		IdleTimeout:       time.Duration(sv.IdleTimeout),
		MaxHeaderBytes:    int(sv.MaxHeaderBytes),
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
}
