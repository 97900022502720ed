// Package app is the composition root: it turns a config.Config into the
// wired server, owns its lifecycle and shuts it down gracefully.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/modproxy/modproxy/internal/cachepolicy"
	"github.com/modproxy/modproxy/internal/config"
	"github.com/modproxy/modproxy/internal/goproxy"
	"github.com/modproxy/modproxy/internal/proxy"
	storagefs "github.com/modproxy/modproxy/internal/storage/fs"
	"github.com/modproxy/modproxy/internal/upstream"
	"github.com/modproxy/modproxy/internal/upstream/proxyclient"
)

// Version is set by the cli from build information.
type Info struct {
	Version string
}

// NewLogger returns the logger the configuration asks for.
func NewLogger(cfg config.Log, w interface{ Write([]byte) (int, error) }) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(cfg.Level))
	opts := &slog.HandlerOptions{Level: lvl}
	if cfg.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// Server is a wired modproxy server.
type Server struct {
	cfg     config.Config
	log     *slog.Logger
	svc     *proxy.Service
	handler http.Handler
}

// New builds the server from a validated configuration. It reports
// upstream entries it cannot use (direct, off) in the log.
func New(cfg config.Config, log *slog.Logger, info Info) (*Server, error) {
	store, err := storagefs.New(cfg.CacheDir)
	if err != nil {
		return nil, &config.Error{Key: "cache_dir", Err: err}
	}
	copts := proxyclient.Options{
		ConnectTimeout: time.Duration(cfg.Fetch.ConnectTimeout),
		Timeout:        time.Duration(cfg.Fetch.Timeout),
		MaxZipSize:     int64(cfg.Fetch.MaxZipSize),
		UserAgent:      "modproxy/" + info.Version,
	}
	chain, err := buildChain(cfg.Upstream, copts, log)
	if err != nil {
		return nil, err
	}
	sumdbs := map[string]upstream.Fetcher{}
	for _, s := range cfg.SumDB {
		if s == "off" {
			continue
		}
		spec, err := config.ParseSumDB(s)
		if err != nil {
			return nil, &config.Error{Key: "sumdb", Err: err}
		}
		if spec.URL == "" {
			sumdbs[spec.Name] = chain
			continue
		}
		c, err := proxyclient.New(spec.URL, copts)
		if err != nil {
			return nil, &config.Error{Key: "sumdb", Err: err}
		}
		sumdbs[spec.Name] = stripPrefix{prefix: "sumdb/" + spec.Name + "/", f: c}
	}
	p := cachepolicy.Policy{
		TTL:                  time.Duration(cfg.Cache.TTL),
		StaleWhileRevalidate: time.Duration(cfg.Cache.StaleWhileRevalidate),
		StaleIfError:         time.Duration(cfg.Cache.StaleIfError),
		NegativeTTL:          time.Duration(cfg.Cache.NegativeTTL),
	}
	svc := proxy.New(proxy.Options{
		Store:    store,
		Upstream: chain,
		SumDB:    sumdbs,
		TempDir:  store.TempDir(),
		Policy:   p,
		Logger:   log,
	})
	h := goproxy.New(goproxy.Options{Service: svc, Logger: log, MutableMaxAge: p.TTL})
	names := make([]string, 0, len(sumdbs))
	for n := range sumdbs {
		names = append(names, n)
	}
	log.Info("configured", "cache_dir", cfg.CacheDir, "upstream", cfg.Upstream, "sumdb", strings.Join(names, ","))
	return &Server{cfg: cfg, log: log, svc: svc, handler: h}, nil
}

// Handler returns the root HTTP handler (for in-process tests).
func (s *Server) Handler() http.Handler { return s.handler }

// buildChain turns a GOPROXY-syntax list into an upstream.Chain of HTTP
// proxies. "direct" and "off" are not supported yet: each one is reported
// at start-up, and a list with no proxy left is an error.
func buildChain(list string, opts proxyclient.Options, log *slog.Logger) (*upstream.Chain, error) {
	specs, err := upstream.ParseList(list)
	if err != nil {
		return nil, &config.Error{Key: "upstream", Err: err}
	}
	chain := &upstream.Chain{}
	for _, sp := range specs {
		switch sp.Target {
		case "direct":
			log.Warn("upstream entry skipped: fetching from version control (direct) is not supported yet; only proxies are used", "entry", "direct")
			continue
		case "off":
			log.Warn("upstream entry skipped: \"off\" ends the list for the go command; modproxy answers what the proxies before it do", "entry", "off")
			continue
		}
		c, err := proxyclient.New(sp.Target, opts)
		if err != nil {
			return nil, &config.Error{Key: "upstream", Err: err}
		}
		chain.Links = append(chain.Links, upstream.Link{Fetcher: c, AnyError: sp.AnyError})
	}
	if len(chain.Links) == 0 {
		return nil, &config.Error{Key: "upstream", Err: fmt.Errorf("%q has no proxy URL; direct and off are not supported as upstreams yet", list)}
	}
	return chain, nil
}

// stripPrefix fetches "sumdb/NAME/REST" as "REST" from a checksum
// database's own URL.
type stripPrefix struct {
	prefix string
	f      upstream.Fetcher
}

func (s stripPrefix) Fetch(ctx context.Context, path string) (*upstream.Response, error) {
	return s.f.Fetch(ctx, strings.TrimPrefix(path, s.prefix))
}

// Serve listens on cfg.Listen and serves until ctx is done, then shuts
// down gracefully: it stops accepting, lets in-flight requests finish
// (bounded by ShutdownTimeout) and waits for fills. The bound address is
// passed to onListen (which may be nil) once listening.
func (s *Server) Serve(ctx context.Context, onListen func(addr net.Addr)) error {
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen %s: %w", s.cfg.Listen, err)
	}
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	s.log.Info("listening", "addr", ln.Addr().String(), "url", "http://"+ln.Addr().String())
	if onListen != nil {
		onListen(ln.Addr())
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		s.svc.Close()
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	s.log.Info("shutting down: finishing in-flight requests", "timeout", time.Duration(s.cfg.ShutdownTimeout))
	sctx, cancel := context.WithTimeout(context.Background(), time.Duration(s.cfg.ShutdownTimeout))
	defer cancel()
	err = srv.Shutdown(sctx)
	s.svc.Close()
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("shutdown: %w", err)
	}
	s.log.Info("stopped")
	return nil
}
