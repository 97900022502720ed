package app

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/mod/module"

	"github.com/modproxy/modproxy/internal/cacheadmin"
	"github.com/modproxy/modproxy/internal/config"
	"github.com/modproxy/modproxy/internal/coord"
	"github.com/modproxy/modproxy/internal/goproxy"
	"github.com/modproxy/modproxy/internal/hosted"
	"github.com/modproxy/modproxy/internal/scrub"
	"github.com/modproxy/modproxy/internal/storage"
	"github.com/modproxy/modproxy/internal/upstream"
)

// hostedStateDir holds the private log of hosted versions and the purge
// marks.
func hostedStateDir(cacheDir string) string { return filepath.Join(cacheDir, "state", "hosted") }

func hostedPatterns(cfg config.Config) []hosted.Pattern {
	var ps []hosted.Pattern
	for _, h := range cfg.Hosted {
		ps = append(ps, hosted.Pattern{Match: h.Match, Namespace: h.Namespace})
	}
	return ps
}

// validateHosted refuses [[hosted]] patterns that verify.private does not
// cover (a hosted module must never be looked up in the public checksum
// database) and hosted modules on a store shared by replicas without the
// log's key in configuration (each replica would otherwise make its own).
func validateHosted(cfg config.Config) error {
	private := strings.Join(cfg.Verify.Private, ",")
	for i, h := range cfg.Hosted {
		for p := range strings.SplitSeq(h.Match, ",") {
			p = strings.TrimSpace(p)
			if p != "" && !module.MatchPrefixPatterns(private, p) {
				return &config.Error{Key: fmt.Sprintf("hosted[%d].match", i), Err: fmt.Errorf("%q is not covered by verify.private (%q): a hosted module path must be private, never looked up in the public checksum database; add it to verify.private (or GONOSUMDB/GOPRIVATE)", p, private)}
			}
		}
	}
	if len(cfg.Hosted) > 0 && cfg.Storage.Type == "s3" && cfg.HostedLog.KeyFile == "" {
		return &config.Error{Key: "hosted_log.key_file", Err: errors.New("required for hosted modules on a shared (s3) store: every replica signs the shared private log with this key, so all must be given the same file (make one with modproxy hosted-key FILE)")}
	}
	return nil
}

// hostedKey reads the log's signer key from hosted_log.key_file ("" when
// it is not set). The key's bytes never reach an error or a log.
func hostedKey(cfg config.Config) (string, error) {
	if cfg.HostedLog.KeyFile == "" {
		return "", nil
	}
	b, err := os.ReadFile(cfg.HostedLog.KeyFile)
	if err != nil {
		return "", &config.Error{Key: "hosted_log.key_file", Err: err}
	}
	if _, _, err := hosted.ParseKey(string(b)); err != nil {
		return "", &config.Error{Key: "hosted_log.key_file", Err: fmt.Errorf("%s: %w", cfg.HostedLog.KeyFile, err)}
	}
	return strings.TrimSpace(string(b)), nil
}

// hostedWiring is the server's hosted modules: the service and, for its
// upstream check, the route each proxy service would use for a path if it
// were not hosted.
type hostedWiring struct {
	svc      *hosted.Service
	mu       sync.Mutex
	unhosted map[string]func(path string) upstream.Fetcher // by namespace ("" the root)
	offline  func() bool
}

// openHosted opens the hosted modules' service when [[hosted]] is
// configured (nil otherwise).
func (s *Server) openHosted(st openedStore, co coord.Coordinator) (*hostedWiring, error) {
	if len(s.cfg.Hosted) == 0 {
		return nil, nil
	}
	key, err := hostedKey(s.cfg)
	if err != nil {
		return nil, err
	}
	w := &hostedWiring{unhosted: map[string]func(string) upstream.Fetcher{}}
	prefixes := []string{""}
	for _, ns := range s.cfg.Namespaces {
		prefixes = append(prefixes, "ns/"+ns.Name+"/")
	}
	svc, err := hosted.New(hosted.Options{
		Store: st.store, TempDir: st.tempDir, StateDir: hostedStateDir(s.cfg.CacheDir),
		Patterns: hostedPatterns(s.cfg), Upstream: w.served, MutablePrefixes: prefixes,
		MaxZipSize: int64(s.cfg.Fetch.MaxZipSize),
		Index:      indexFunc(func(key string, size int64, t time.Time) { s.cache.Stored(key, size, t) }),
		Audit:      s.audit, Logger: s.log, Events: s.events.Sink,
		Shared: st.shared, Key: key, Coordinator: co,
	})
	if err != nil {
		return nil, &config.Error{Key: "hosted", Err: err}
	}
	w.svc = svc
	tree, _ := svc.Log().Head()
	s.log.Info("hosted modules on", "patterns", len(s.cfg.Hosted), "log_size", tree.N, "shared", st.shared)
	return w, nil
}

// indexFunc is a hosted.Index.
type indexFunc func(key string, size int64, t time.Time)

func (f indexFunc) Stored(key string, size int64, t time.Time) { f(key, size, t) }

// route returns namespace's route function with hosted paths sent to the
// hosted service (never upstream), and remembers the unwrapped one.
func (w *hostedWiring) route(namespace string, route func(string) upstream.Fetcher, offline func() bool) func(string) upstream.Fetcher {
	if w == nil {
		return route
	}
	w.mu.Lock()
	w.unhosted[namespace] = route
	if namespace == "" {
		w.offline = offline
	}
	w.mu.Unlock()
	f := w.svc.Fetcher(namespace)
	return func(path string) upstream.Fetcher {
		if w.svc.IsHosted(path) {
			return f
		}
		return route(path)
	}
}

// served asks the upstreams namespace would use for path whether they
// serve path@version: a not-found (or a refusal, 400/403) is no; any
// other failure cannot rule it out.
func (w *hostedWiring) served(ctx context.Context, namespace, path, version string) (bool, error) {
	w.mu.Lock()
	route, offline := w.unhosted[namespace], w.offline
	w.mu.Unlock()
	if offline != nil && offline() {
		return false, errors.New("cache-only mode: the upstreams are not asked")
	}
	if route == nil {
		return false, nil
	}
	ep, err := module.EscapePath(path)
	if err != nil {
		return false, err
	}
	ev, err := module.EscapeVersion(version)
	if err != nil {
		return false, err
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	resp, err := route(path).Fetch(ctx, ep+"/@v/"+ev+".info")
	if err == nil {
		resp.Body.Close()
		return true, nil
	}
	var ue *upstream.Error
	if errors.Is(err, fs.ErrNotExist) || errors.As(err, &ue) && (ue.Status == http.StatusBadRequest || ue.Status == http.StatusForbidden) {
		return false, nil
	}
	return false, err
}

// purges is the cache administration's view of the hosted modules (nil
// without them).
func (w *hostedWiring) purges() cacheadmin.Hosted {
	if w == nil {
		return nil
	}
	return w.svc
}

// pins adds the hosted patterns to the GC pins: published versions are
// the only copy and are never evicted (a purge still removes them).
func (w *hostedWiring) pins(pins []string, cfg config.Config) []string {
	if w == nil {
		return pins
	}
	out := append([]string(nil), pins...)
	for _, h := range cfg.Hosted {
		for p := range strings.SplitSeq(h.Match, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}

// withHosted adds the publish API and the served log to a protocol
// handler's options.
func (w *hostedWiring) withHosted(o goproxy.Options, cfg config.Config) goproxy.Options {
	if w == nil {
		return o
	}
	o.Publisher = w.svc
	o.PublishToken = cfg.Admin.Token
	o.MaxPublishBytes = int64(cfg.Fetch.MaxZipSize) + hosted.MaxMod + hosted.MaxInfo + 1<<20
	o.HostedLog = w.svc.Log().Handler()
	return o
}

// scrubOptions adds the hosted log to a scrub's options (none without
// it), and a problem when the log's records do not match its signed head.
func (w *hostedWiring) scrubOptions(ctx context.Context, o scrub.Options) (scrub.Options, *scrub.Problem) {
	if w == nil {
		return o, nil
	}
	if err := w.svc.Sync(ctx); err != nil && !errors.Is(err, hosted.ErrTampered) {
		// Objects other replicas published since the last Sync would be
		// reported as not in the log: say why instead.
		return o, &scrub.Problem{Key: "state/hosted", Problem: "unreadable", Detail: fmt.Sprintf("reading the shared log: %v", err)}
	}
	return hostedScrub(ctx, o, w.svc.Checker())
}

func hostedScrub(ctx context.Context, o scrub.Options, c hosted.Checker) (scrub.Options, *scrub.Problem) {
	o.Hosted = c
	if tree, err := c.Log.Check(ctx); err != nil {
		return o, &scrub.Problem{Key: "state/hosted", Problem: "log-tampered", Detail: fmt.Sprintf("tree of %d records: %v", tree.N, err)}
	}
	return o, nil
}

// runScrub runs a scrub and reports a bad log among its problems.
func runScrub(ctx context.Context, o scrub.Options, logProblem *scrub.Problem) (scrub.Report, error) {
	rep, err := scrub.Run(ctx, o)
	if logProblem != nil {
		rep.Problems = append(rep.Problems, *logProblem)
	}
	return rep, err
}

// offlineHostedScrub opens the private log read-only for an offline
// scrub (modproxy verify, which may run beside the server) and adds it to
// the scrub's options: from the state directory, or, on a shared store
// (store set), from the store with the configured key, checked against
// the head this node's server last verified. Without [[hosted]] or a
// log, o is unchanged.
func offlineHostedScrub(ctx context.Context, o scrub.Options, cfg config.Config, store storage.Store, shared bool) (scrub.Options, *scrub.Problem, error) {
	if len(cfg.Hosted) == 0 {
		return o, nil, nil
	}
	key, err := hostedKey(cfg)
	if err != nil {
		return o, nil, err
	}
	dir := hostedStateDir(cfg.CacheDir)
	var (
		l       *hosted.Log
		shStore hosted.Store
	)
	if shared {
		ss, ok := store.(hosted.SharedStore)
		if !ok {
			return o, nil, errors.New("hosted: the shared store cannot create objects conditionally")
		}
		if l, err = hosted.OpenSharedLog(ctx, ss, key, dir, false); err != nil {
			return o, nil, err
		}
		shStore = store
	} else {
		if _, err := os.Stat(filepath.Join(dir, "head")); errors.Is(err, fs.ErrNotExist) {
			return o, nil, nil
		}
		if l, err = hosted.OpenLog(dir, false, key); err != nil {
			return o, nil, err
		}
	}
	purged, err := hosted.ReadPurges(ctx, dir, shStore)
	if err != nil {
		return o, nil, err
	}
	o, p := hostedScrub(ctx, o, hosted.Checker{Patterns: hostedPatterns(cfg), Log: l, Purged: purged})
	return o, p, nil
}
