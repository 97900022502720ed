package app

import (
	"log/slog"
	"time"

	"github.com/modproxy/modproxy/internal/audit"
	"github.com/modproxy/modproxy/internal/config"
	"github.com/modproxy/modproxy/internal/event"
	"github.com/modproxy/modproxy/internal/goproxy"
	"github.com/modproxy/modproxy/internal/metrics"
	"github.com/modproxy/modproxy/internal/storage"
	"github.com/modproxy/modproxy/internal/toolchain"
	"github.com/modproxy/modproxy/internal/upstream"
	"github.com/modproxy/modproxy/internal/upstream/proxyclient"
)

// newToolchains returns the mirror of the toolchain distribution site that
// dl.source names, or nil when it is unset. The site is fetched with the
// upstreams' client settings (connect, header and whole-fetch timeouts),
// its bodies bounded by dl.max_size. records bound the stored archives by
// dl.max_total, after every store and on the GC schedule (gc.interval).
func newToolchains(cfg config.Config, copts proxyclient.Options, store storage.Store, tempDir string, idx toolchain.Index, records toolchain.Records,
	m *metrics.Metrics, a *audit.Log, events event.Sink, log *slog.Logger) (*toolchain.Service, error) {
	if cfg.DL.Source == "" {
		return nil, nil
	}
	copts.MaxZipSize = int64(cfg.DL.MaxSize)
	site, err := proxyclient.NewSite(cfg.DL.Source, copts)
	if err != nil {
		return nil, &config.Error{Key: "dl.source", Err: err}
	}
	log.Info("toolchain mirror on /dl/", "source", upstream.RedactURL(cfg.DL.Source), "ttl", cfg.ListingTTL(),
		"max_total", int64(cfg.DL.MaxTotal), "max_fetches", cfg.DL.MaxFetches)
	return toolchain.New(toolchain.Options{
		Site: site, Store: store, TempDir: tempDir,
		TTL: cfg.ListingTTL(), StaleIfError: time.Duration(cfg.Cache.StaleIfError), MaxSize: int64(cfg.DL.MaxSize),
		Offline: cfg.Offline, Metrics: m, Index: idx, Audit: a, Events: events, Logger: log,
		MaxFetches: cfg.DL.MaxFetches, MaxTotal: int64(cfg.DL.MaxTotal), Records: records, TrimInterval: time.Duration(cfg.GC.Interval),
	}), nil
}

// toolchains is the server's mirror for goproxy: nil (no /dl/) when unset.
func (s *Server) toolchains() goproxy.Toolchains {
	if s.dl == nil {
		return nil
	}
	return s.dl
}
