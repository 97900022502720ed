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
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/mod/module"

	"github.com/modproxy/modproxy/internal/access"
	"github.com/modproxy/modproxy/internal/accesslog"
	"github.com/modproxy/modproxy/internal/admin"
	"github.com/modproxy/modproxy/internal/audit"
	"github.com/modproxy/modproxy/internal/background"
	"github.com/modproxy/modproxy/internal/cacheadmin"
	"github.com/modproxy/modproxy/internal/cachepolicy"
	"github.com/modproxy/modproxy/internal/checksum"
	"github.com/modproxy/modproxy/internal/clients"
	"github.com/modproxy/modproxy/internal/config"
	"github.com/modproxy/modproxy/internal/coord"
	"github.com/modproxy/modproxy/internal/coord/rediscoord"
	"github.com/modproxy/modproxy/internal/goenv"
	"github.com/modproxy/modproxy/internal/goproxy"
	"github.com/modproxy/modproxy/internal/index"
	"github.com/modproxy/modproxy/internal/metrics"
	"github.com/modproxy/modproxy/internal/proxy"
	"github.com/modproxy/modproxy/internal/quarantine"
	"github.com/modproxy/modproxy/internal/routing"
	"github.com/modproxy/modproxy/internal/scrub"
	"github.com/modproxy/modproxy/internal/stats"
	"github.com/modproxy/modproxy/internal/storage"
	storagefs "github.com/modproxy/modproxy/internal/storage/fs"
	s3store "github.com/modproxy/modproxy/internal/storage/s3"
	"github.com/modproxy/modproxy/internal/tlsconf"
	"github.com/modproxy/modproxy/internal/toolchain"
	"github.com/modproxy/modproxy/internal/trash"
	"github.com/modproxy/modproxy/internal/upstream"
	"github.com/modproxy/modproxy/internal/upstream/proxyclient"
	"github.com/modproxy/modproxy/internal/upstream/resilient"
	"github.com/modproxy/modproxy/internal/vulndb"
)

// Version is set by the cli from build information.
type Info struct {
	Version string
}

// NewLogger returns the logger the configuration asks for: slog's text or
// JSON format, with access-log lines formatted directly (accesslog.Handler).
func NewLogger(cfg config.Log, w interface{ Write([]byte) (int, error) }) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(cfg.Level))
	f := accesslog.Text
	if cfg.Format == "json" {
		f = accesslog.JSON
	}
	return slog.New(accesslog.NewHandler(w, f, lvl))
}

// Server is a wired modproxy server.
type Server struct {
	cfg        config.Config
	log        *slog.Logger
	svc        *proxy.Service
	handler    http.Handler
	store      storage.Store
	tempDir    string
	coord      *rediscoord.Coordinator
	audit      *audit.Log
	quarantine *quarantine.Dir
	sumdbNames []string
	upstreams  *upstreams
	routes     []routing.Route
	namespaces []*namespace
	metrics    *metrics.Metrics
	info       Info
	started    time.Time
	traffic    *stats.Traffic
	idx        *index.Index
	idxRebuild *indexRebuild // of a stale index, in the background once RunBackground starts it
	cache      *cacheadmin.Service
	bg         *background.Group // the scrub schedule, the index rebuild
	adminH     http.Handler
	access     *access.Service    // tokens and certificate mappings
	watcher    *access.Watcher    // reloads access's tokens; closed by Close
	tls        *tlsconf.Config    // nil: plain HTTP
	dl         *toolchain.Service // the /dl/ mirror; nil when dl.source is unset
	deps       deps               // optional dependencies (policy.go)
	events     eventSink          // webhooks (events.go)
	hosted     *hostedWiring      // nil: no [[hosted]]
	clients    *clients.Tracker   // per-identity traffic (clients.go)
	vuln       *vulndb.DB         // served at /vuln/; refreshed by RunBackground
	closeOnce  sync.Once
	closeErr   error
}

// New builds the server from a validated configuration. It reports
// upstream entries it cannot use (direct, off) and a disabled checksum
// verification in the log. Options give it optional dependencies
// (vulnerability data, an event sink).
func New(cfg config.Config, log *slog.Logger, info Info, opts ...Option) (*Server, error) {
	if err := Validate(cfg); err != nil {
		return nil, err
	}
	if err := checkCacheDir(cfg.CacheDir); err != nil {
		return nil, err
	}
	// The index first: its lock keeps a second process off this cache
	// directory before anything in it is touched (fs.New empties tmp/).
	if err := os.MkdirAll(cfg.CacheDir, 0o755); err != nil {
		return nil, &config.Error{Key: "cache_dir", Err: err}
	}
	idx, stale, err := openIndex(cfg.CacheDir, log)
	var ce *config.Error
	if errors.As(err, &ce) {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("metadata index: %w", err)
	}
	built := false
	defer func() { // a server New does not return releases what it opened
		if !built {
			idx.Close()
		}
	}()
	st, err := openStore(context.Background(), cfg)
	if err != nil {
		return nil, err
	}
	store, tempDir := st.store, st.tempDir
	m := metrics.New()
	m.BuildInfo(info.Version, "")
	traffic := stats.New(nil)
	var d deps
	for _, o := range opts {
		o(&d)
	}
	events, err := newEvents(cfg, log, m, d.events)
	if err != nil {
		return nil, err
	}
	defer func() {
		if !built {
			events.close()
		}
	}()
	auditLog, err := audit.Open(filepath.Join(cfg.CacheDir, "audit.log"), audit.Options{MaxBytes: int64(cfg.Audit.MaxSize), MaxFiles: cfg.Audit.MaxFiles, MaxAge: time.Duration(cfg.Audit.MaxAge), Identity: identityName})
	if err != nil {
		return nil, err
	}
	q, err := quarantine.New(filepath.Join(cfg.CacheDir, "quarantine"), int64(cfg.Verify.QuarantineMaxSize))
	if err != nil {
		return nil, err
	}
	copts := proxyclient.Options{
		ConnectTimeout: time.Duration(cfg.Fetch.ConnectTimeout),
		Timeout:        time.Duration(cfg.Fetch.Timeout),
		HeaderTimeout:  time.Duration(cfg.Resilience.HeaderTimeout),
		MaxZipSize:     int64(cfg.Fetch.MaxZipSize),
		UserAgent:      "modproxy/" + info.Version,
	}
	ups := &upstreams{cfg: cfg, copts: copts, log: log, metrics: m, tempDir: tempDir, traffic: traffic, byURL: map[string]*resilient.Fetcher{}, events: events}
	chain, err := ups.chain("upstream", cfg.Upstream)
	if err != nil {
		return nil, err
	}
	chains := []upstream.Fetcher{chain}
	var routes []routing.Route
	for i, rt := range cfg.Routes {
		c, err := ups.chain(fmt.Sprintf("route[%d].upstream", i), rt.Upstream)
		if err != nil {
			return nil, err
		}
		routes = append(routes, routing.Route{Match: rt.Match, Target: len(chains)})
		chains = append(chains, c)
	}
	srv := &Server{cfg: cfg, log: log, store: store, tempDir: tempDir, audit: auditLog, quarantine: q, upstreams: ups, routes: routes, metrics: m, info: info,
		started: time.Now(), traffic: traffic, bg: background.New(log), events: events, deps: d,
		clients: newClients(m)}
	srv.idx = idx
	srv.idxRebuild = &indexRebuild{idx: idx, store: store, log: log, stale: stale}
	if srv.vuln, err = openVulnDB(cfg, store, copts, log, m); err != nil {
		return nil, err
	}
	defer func() {
		if !built {
			if srv.watcher != nil {
				srv.watcher.Close()
			}
			srv.upstreams.close()
			srv.closeCoord()
			srv.audit.Close()
		}
	}()
	tr, err := trash.New(filepath.Join(cfg.CacheDir, "trash"), trash.Options{Retention: time.Duration(cfg.GC.TrashRetention), MaxBytes: cfg.GC.TrashLimit()})
	if err != nil {
		return nil, err
	}
	var co coord.Coordinator // a nil *rediscoord.Coordinator must not become a non-nil interface
	if cfg.Cluster.Redis != "" {
		srv.coord = rediscoord.New(rediscoord.Options{Addr: cfg.Cluster.Redis, Password: cfg.Cluster.RedisPassword, DB: cfg.Cluster.RedisDB, Logger: log})
		co = srv.coord
		if err := srv.coord.Ping(context.Background()); err != nil {
			log.Warn("cluster coordination unavailable at start-up; serving without it until Redis answers", "redis", cfg.Cluster.Redis, "err", err)
		} else {
			log.Info("cluster coordination on", "redis", cfg.Cluster.Redis)
		}
	}
	var svc *proxy.Service
	if srv.hosted, err = srv.openHosted(st, co); err != nil {
		return nil, err
	}
	cache, err := srv.newCache(st, idx, tr, co, gateFunc(func(mod, version string) (func(), bool) { return svc.TryLockVersion(mod, version) }))
	if err != nil {
		return nil, err
	}
	srv.cache = cache
	rules, err := srv.rules(cache.Blocks())
	if err != nil {
		return nil, &config.Error{Key: "deny", Err: err}
	}
	sumdbs := map[string]upstream.Fetcher{}
	specs, err := sumdbSpecs(cfg)
	if err != nil {
		return nil, err
	}
	for _, spec := range specs {
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
	private := strings.Join(cfg.Verify.Private, ",")
	if srv.tls, err = openTLS(cfg, log); err != nil {
		return nil, err
	}
	if srv.access, err = openAccess(context.Background(), cfg, tokenStateOf(st, cfg), log); err != nil {
		return nil, err
	}
	var authn *access.Service // nil: auth.mode = "off"
	if cfg.Auth.Mode == "required" {
		authn = srv.access
	}
	popts := proxy.Options{
		Store:      store,
		Upstream:   chain,
		Route:      func(path string) upstream.Fetcher { return chains[rules.Target(path)] },
		Rules:      rules,
		Offline:    cfg.Offline,
		SumDB:      sumdbs,
		TempDir:    tempDir,
		Policy:     p,
		Private:    func(path string) bool { return module.MatchPrefixPatterns(private, path) },
		Quarantine: q,
		Audit:      auditLog,
		Metrics:    m,
		Index:      cache,
		Logger:     log,
		Events:     events,
	}
	popts.Coordinator = co
	if popts.Supply, err = srv.supplyPolicy("policy", "", cfg.Policy); err != nil {
		return nil, err
	}
	popts.Route = srv.hosted.route("", popts.Route, func() bool { return svc.Offline() })
	if ps, ok := store.(interface {
		PresignGet(ctx context.Context, key string, ttl time.Duration) (*url.URL, error)
	}); ok && cfg.Storage.S3.Redirect {
		ttl := time.Duration(cfg.Storage.S3.RedirectTTL)
		popts.Presign = func(ctx context.Context, key string) (string, error) {
			u, err := ps.PresignGet(ctx, key, ttl)
			if err != nil {
				return "", err
			}
			return u.String(), nil
		}
	}
	verifier, err := newVerifier(cfg, specs, private, func(name string) checksum.Remote {
		return func(ctx context.Context, path string) ([]byte, error) { return svc.ReadSumDB(ctx, name, path) }
	}, log, m, auditLog)
	if err != nil {
		return nil, err
	}
	if verifier != nil {
		popts.Verifier = verifier
	}
	popts.Gate = proxy.NewVersionGate()
	popts.Warm = cfg.Warm.Zips
	svc = proxy.New(popts)
	if srv.dl, err = newToolchains(cfg, copts, store, tempDir, cache, idx, m, auditLog, events.Sink, log); err != nil {
		return nil, err
	}
	observe := func(o proxy.Outcome, status int, bytes int64) {
		srv.traffic.Record(o == proxy.Hit || o == proxy.Stale, o == proxy.Miss || o == proxy.Coalesced, status >= 500, bytes)
	}
	h := goproxy.New(srv.hosted.withHosted(goproxy.Options{Service: svc, Logger: log, MutableMaxAge: p.TTL, Metrics: m, Ready: srv.idxRebuild.withIndex(ups.ready(svc)), Observe: observe, Access: authn, Toolchains: srv.toolchains(),
		Refresh: srv.protocolRefresh, Tokens: srv.access, Clients: srv.clients, Vuln: srv.vuln}, cfg))
	var root http.Handler = h
	if len(cfg.Namespaces) > 0 {
		nsh := map[string]http.Handler{}
		for i, ns := range cfg.Namespaces {
			n, err := srv.newNamespace(i, ns, popts, ups)
			if err != nil {
				return nil, err
			}
			srv.namespaces = append(srv.namespaces, n)
			nsh[ns.Name] = http.StripPrefix("/"+ns.Name, goproxy.New(srv.hosted.withHosted(goproxy.Options{Service: n.svc, Logger: log.With("namespace", ns.Name),
				MutableMaxAge: n.ttl, Metrics: m, Ready: srv.idxRebuild.withIndex(ups.ready(n.svc)), Observe: observe, Access: authn, Namespace: ns.Name,
				Refresh: srv.protocolRefresh, Tokens: srv.access, Clients: srv.clients, Vuln: srv.vuln}, cfg)))
		}
		root = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			first, _, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
			if nh, ok := nsh[first]; ok {
				nh.ServeHTTP(w, r)
				return
			}
			h.ServeHTTP(w, r)
		})
	}
	names := make([]string, 0, len(specs))
	for _, s := range specs {
		names = append(names, s.Name)
	}
	log.Info("configured", "cache_dir", cfg.CacheDir, "upstream", upstream.RedactList(cfg.Upstream), "sumdb", strings.Join(names, ","), "private", private)
	if cfg.Offline {
		log.Warn("cache-only mode: nothing is fetched upstream (offline = true)")
	}
	srv.svc, srv.handler, srv.sumdbNames = svc, root, names
	srv.watcher = srv.access.Watch(access.DefaultInterval)
	srv.adminH = admin.New(admin.Options{Backend: adminBackend{srv}, Token: cfg.Admin.Token, Access: srv.access, Logger: log, Metrics: m.Handler()})
	built = true
	return srv, nil
}

// newVerifier returns the checksum verifier the configuration asks for, or
// nil (logged loudly) when verification is off.
func newVerifier(cfg config.Config, specs []config.SumDBSpec, private string, remote func(name string) checksum.Remote, log *slog.Logger, m *metrics.Metrics, a *audit.Log) (*checksum.Verifier, error) {
	if !cfg.Verify.Enabled {
		log.Warn("CHECKSUM VERIFICATION IS OFF (verify.enabled = false): module content is admitted on the upstreams' word")
		return nil, nil
	}
	spec := verifySpec(cfg, specs)
	if spec == nil {
		log.Warn("CHECKSUM VERIFICATION IS OFF: no checksum database is configured (sumdb = off); module content is admitted on the upstreams' word")
		return nil, nil
	}
	key, err := sumdbKey(cfg, *spec)
	if err != nil {
		return nil, err
	}
	v, err := checksum.New(checksum.Options{
		Key:      key,
		Remote:   remote(spec.Name),
		StateDir: filepath.Join(cfg.CacheDir, "state", "sumdb"),
		Private:  private,
		Logger:   log,
		Metrics:  m,
		Audit:    a,
	})
	if err != nil {
		return nil, &config.Error{Key: "sumdb", Err: err}
	}
	log.Info("checksum verification on", "database", spec.Name)
	return v, nil
}

// sumdbSpecs parses the configured checksum databases ("off" is none).
func sumdbSpecs(cfg config.Config) ([]config.SumDBSpec, error) {
	var specs []config.SumDBSpec
	for _, s := range cfg.SumDB {
		if s == "off" {
			continue
		}
		spec, err := config.ParseSumDB(s)
		if err != nil {
			return nil, &config.Error{Key: "sumdb", Err: err}
		}
		specs = append(specs, spec)
	}
	return specs, nil
}

// verifySpec is the database verification uses (verify.database, else the
// first), or nil.
func verifySpec(cfg config.Config, specs []config.SumDBSpec) *config.SumDBSpec {
	for i := range specs {
		if cfg.Verify.Database == "" || specs[i].Name == cfg.Verify.Database {
			return &specs[i]
		}
	}
	return nil
}

// sumdbKey is the verifier key of a database: the configured one, else the
// go command's built-in one (goenv.SumDBKeyCached).
func sumdbKey(cfg config.Config, spec config.SumDBSpec) (string, error) {
	if spec.Key != "" {
		return spec.Key, nil
	}
	k, err := goenv.SumDBKeyCached(spec.Name, filepath.Join(cfg.CacheDir, "state", "gosumdbkey.json"))
	if err != nil {
		return "", &config.Error{Key: "sumdb", Err: err}
	}
	return k, nil
}

// Handler returns the root HTTP handler (for in-process tests).
func (s *Server) Handler() http.Handler { return s.handler }

// openedStore is an open store with what the rest of the server needs to
// know about it.
type openedStore struct {
	store   storage.Store
	tempDir string // local directory for temporary files
	// shared: several replicas may use the store at once, so state that
	// must be the same for all of them (pins, blocks) is kept in it.
	shared bool
	// local: the objects are on cache_dir's file system, so evicting them
	// frees space there (gc.min_free).
	local bool
}

// openStore opens the configured store: the one place that knows the
// storage types. Temporary files go to the store's own tmp for disk, and
// to CACHE_DIR/tmp, emptied at start-up, for S3 (a bucket shared by the
// replicas).
func openStore(ctx context.Context, cfg config.Config) (openedStore, error) {
	return openStoreFor(ctx, cfg, false)
}

// openStoreFor opens the configured store; beside a live server (export,
// import) it leaves the server's temporary files alone: the disk store is
// opened with storagefs.Open, and an S3 store's temporary files go to a
// new directory below CACHE_DIR/tmp.
func openStoreFor(ctx context.Context, cfg config.Config, live bool) (openedStore, error) {
	switch cfg.Storage.Type {
	case "s3":
		tmp := filepath.Join(cfg.CacheDir, "tmp")
		if !live {
			_ = os.RemoveAll(tmp)
		}
		if err := os.MkdirAll(tmp, 0o755); err != nil {
			return openedStore{}, &config.Error{Key: "cache_dir", Err: err}
		}
		if live {
			var err error
			if tmp, err = os.MkdirTemp(tmp, "bundle-"); err != nil {
				return openedStore{}, &config.Error{Key: "cache_dir", Err: err}
			}
		}
		st, err := s3store.New(ctx, s3Options(cfg.Storage.S3))
		if err != nil {
			return openedStore{}, &config.Error{Key: "storage.s3", Err: err}
		}
		return openedStore{store: st, tempDir: tmp, shared: true}, nil
	default: // "disk"
		open := storagefs.New
		if live {
			open = storagefs.Open
		}
		st, err := open(cfg.CacheDir)
		if err != nil {
			return openedStore{}, &config.Error{Key: "cache_dir", Err: err}
		}
		return openedStore{store: st, tempDir: st.TempDir(), local: true}, nil
	}
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

// Serve binds every listener (GOPROXY, admin), says so, and serves
// until ctx is done, then shuts down gracefully: it stops accepting, lets
// in-flight requests finish (bounded by ShutdownTimeout) and waits for
// fills. An address that cannot be bound is a *config.Error naming the
// key, returned before anything is served (see bind). The bound address
// is passed to onListen (which may be nil) once listening.
func (s *Server) Serve(ctx context.Context, onListen func(addr net.Addr)) error {
	lns, err := s.bind()
	if err != nil {
		return err
	}
	lns.main = s.tlsListener(lns.main)
	srv := s.httpServer(ctx, s.handler)
	var adminSrv *http.Server
	addr := lns.main.Addr().String()
	s.log.Info("listening", "addr", addr, "url", s.scheme()+"://"+addr, "auth", s.cfg.Auth.Mode)
	if lns.admin != nil {
		lns.admin = s.tlsListener(lns.admin)
		adminSrv = s.httpServer(ctx, s.adminH)
		a := lns.admin.Addr().String()
		s.log.Info("admin listening", "addr", a, "url", s.scheme()+"://"+a+"/", "token", s.cfg.Admin.Token != "")
	}
	if onListen != nil {
		onListen(lns.main.Addr())
	}
	errc := make(chan error, 2)
	go func() { errc <- srv.Serve(lns.main) }()
	if adminSrv != nil {
		go func() { errc <- adminSrv.Serve(lns.admin) }()
		s.recordAdmin(lns.admin.Addr())
		defer s.forgetAdmin()
	} else {
		s.recordAdmin(nil)
	}
	s.RunBackground(ctx)
	stopHangup := s.reloadOnHangup()
	defer stopHangup()
	select {
	case err := <-errc:
		srv.Close()
		if adminSrv != nil {
			adminSrv.Close()
		}
		s.stopBackground()
		s.closeServices()
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	s.log.Info("shutting down: finishing in-flight requests", "timeout", time.Duration(s.cfg.ShutdownTimeout))
	sctx, cancel := context.WithTimeout(context.Background(), time.Duration(s.cfg.ShutdownTimeout))
	defer cancel()
	err = srv.Shutdown(sctx)
	if adminSrv != nil {
		_ = adminSrv.Shutdown(sctx)
	}
	s.stopBackground()
	s.closeServices()
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("shutdown: %w", err)
	}
	s.log.Info("stopped")
	return nil
}

// RunBackground starts the background jobs until ctx is done or Close:
// the rebuild of a stale metadata index, recording objects other commands
// stored meanwhile (an import) in it, the scrub schedule, health
// probes, and the cache administration's (scheduled GC, state reloads,
// store gauges). Each has an owner that Close stops and waits for. Serve
// calls it once listening; in-process tests may too.
func (s *Server) RunBackground(ctx context.Context) {
	s.idxRebuild.start(ctx, s.bg)
	s.bg.Loop(ctx, "pending index records", time.Second, func(ctx context.Context) time.Duration {
		s.applyPending(ctx)
		return pendingIndexInterval
	})
	if d := time.Duration(s.cfg.Verify.ScrubInterval); d > 0 {
		s.bg.Every(ctx, "background scrub", d, s.scrubRound)
	}
	if d := time.Duration(s.cfg.Resilience.ProbeInterval); d > 0 {
		s.upstreams.startProbes(ctx, d, s.probePath())
	}
	s.cache.Start(ctx)
	s.vuln.Run(ctx, s.bg)
	if s.hosted != nil {
		s.hosted.svc.Run(ctx, s.bg)
	}
}

// stopBackground stops what RunBackground started and waits for it.
func (s *Server) stopBackground() {
	s.bg.Close()
	s.upstreams.stopProbes()
	s.cache.Close()
}

// AdminHandler returns the admin API and dashboard handler (for in-process tests).
func (s *Server) AdminHandler() http.Handler { return s.adminH }

// Admin returns the admin backend (for in-process tests and the CLI).
func (s *Server) Admin() admin.Backend { return adminBackend{s} }

// scrubRound re-hashes the store and quarantines bad objects.
func (s *Server) scrubRound(ctx context.Context) {
	rep, err := s.Scrub(ctx, true, nil)
	if err != nil {
		s.log.Error("background scrub failed", "err", err)
		return
	}
	lvl := slog.LevelInfo
	if len(rep.Problems) > 0 {
		lvl = slog.LevelError
	}
	s.log.Log(ctx, lvl, "background scrub done", "checked", rep.Checked, "bytes", rep.Bytes, "problems", len(rep.Problems))
}

// Scrub re-hashes every stored zip and go.mod; see package scrub.
func (s *Server) Scrub(ctx context.Context, repair bool, progress func(done, total int)) (scrub.Report, error) {
	o, logProblem := s.hosted.scrubOptions(ctx, scrub.Options{
		Store: s.store, SumDBNames: s.sumdbNames, Repair: repair, Quarantine: s.quarantine,
		Audit: s.audit, TempDir: s.tempDir, Progress: progress,
	})
	return runScrub(ctx, o, logProblem)
}

// Close shuts the server down in order and releases what New opened:
// first the background loops (it waits for them), then the services they
// use (proxy services with their fills, upstreams, the coordinator), then
// the metadata index and the audit log. Later calls return the first
// call's result.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.stopBackground()
		s.watcher.Close()
		s.closeServices()
		s.upstreams.close()
		s.closeCoord()
		s.idx.Close()
		s.events.close()
		s.closeErr = s.audit.Close()
	})
	return s.closeErr
}

func (s *Server) closeCoord() {
	if s.coord != nil {
		s.coord.Close()
	}
}

// SetOffline switches cache-only mode at run time.
func (s *Server) SetOffline(on bool) {
	s.svc.SetOffline(on)
	if s.dl != nil {
		s.dl.SetOffline(on)
	}
	for _, n := range s.namespaces {
		n.svc.SetOffline(on)
	}
}

func (s *Server) closeServices() {
	s.svc.Close()
	if s.dl != nil {
		s.dl.Close()
	}
	for _, n := range s.namespaces {
		n.svc.Close()
	}
}

// namespace is a proxy service under /NAME/ sharing the store.
type namespace struct {
	cfg    config.Namespace
	svc    *proxy.Service
	ttl    time.Duration
	routes []routing.Route
}

func (s *Server) newNamespace(i int, ns config.Namespace, base proxy.Options, ups *upstreams) (*namespace, error) {
	list := ns.Upstream
	if list == "" {
		list = s.cfg.Upstream
	}
	c, err := ups.chain(fmt.Sprintf("namespace[%d].upstream", i), list)
	if err != nil {
		return nil, err
	}
	chains := []upstream.Fetcher{c}
	n := &namespace{cfg: ns}
	for j, rt := range ns.Routes {
		rc, err := ups.chain(fmt.Sprintf("namespace[%d].route[%d].upstream", i, j), rt.Upstream)
		if err != nil {
			return nil, err
		}
		n.routes = append(n.routes, routing.Route{Match: rt.Match, Target: len(chains)})
		chains = append(chains, rc)
	}
	rules, err := n.rules(s.cache.Blocks())
	if err != nil {
		return nil, &config.Error{Key: fmt.Sprintf("namespace[%d].deny", i), Err: err}
	}
	o := base
	o.Upstream = c
	o.Route = s.hosted.route(ns.Name, func(path string) upstream.Fetcher { return chains[rules.Target(path)] }, nil)
	o.Rules = rules
	o.MutablePrefix = "ns/" + ns.Name + "/"
	if ns.TTL > 0 {
		o.Policy.TTL = time.Duration(ns.TTL)
	}
	n.ttl = o.Policy.TTL
	if o.Supply, err = s.namespacePolicy(i, ns); err != nil {
		return nil, err
	}
	n.svc = proxy.New(o)
	return n, nil
}

// rules are the namespace's deny and allow rules plus the blocks added by
// purges (which apply everywhere).
func (n *namespace) rules(blocks []cacheadmin.Block) (*routing.Rules, error) {
	deny, err := denyRules(n.cfg.Deny, blocks)
	if err != nil {
		return nil, err
	}
	return routing.New(n.routes, deny, n.cfg.Allow, 0), nil
}

// setBlocked applies purge blocks to every service.
func (s *Server) setBlocked(rules *routing.Rules, blocked []cacheadmin.Block) {
	s.svc.SetRules(rules)
	for _, n := range s.namespaces {
		if r, err := n.rules(blocked); err == nil {
			n.svc.SetRules(r)
		}
	}
}

func (s *Server) probePath() string {
	if p := s.cfg.Resilience.ProbePath; p != "" {
		return p
	}
	if len(s.sumdbNames) > 0 {
		return "sumdb/" + s.sumdbNames[0] + "/supported"
	}
	return "modproxy-probe.invalid/@v/list"
}

// Scrub runs a scrub on the cache directory of cfg without starting a
// server (the offline `modproxy verify` command).
func Scrub(ctx context.Context, cfg config.Config, repair bool, progress func(done, total int)) (scrub.Report, error) {
	st, err := openStore(ctx, cfg)
	if err != nil {
		return scrub.Report{}, err
	}
	a, err := audit.Open(filepath.Join(cfg.CacheDir, "audit.log"))
	if err != nil {
		return scrub.Report{}, err
	}
	defer a.Close()
	q, err := quarantine.New(filepath.Join(cfg.CacheDir, "quarantine"), int64(cfg.Verify.QuarantineMaxSize))
	if err != nil {
		return scrub.Report{}, err
	}
	var names []string
	for _, s := range cfg.SumDB {
		if spec, err := config.ParseSumDB(s); err == nil && s != "off" {
			names = append(names, spec.Name)
		}
	}
	o, logProblem, err := offlineHostedScrub(ctx, scrub.Options{
		Store: st.store, SumDBNames: names, Repair: repair, Quarantine: q, Audit: a,
		TempDir: st.tempDir, Progress: progress,
	}, cfg, st.store, st.shared)
	if err != nil {
		return scrub.Report{}, err
	}
	return runScrub(ctx, o, logProblem)
}
