package app

import (
	"context"
	"log/slog"
	"time"

	"github.com/modproxy/modproxy/internal/config"
	"github.com/modproxy/modproxy/internal/metrics"
	"github.com/modproxy/modproxy/internal/storage"
	"github.com/modproxy/modproxy/internal/upstream"
	"github.com/modproxy/modproxy/internal/upstream/proxyclient"
	"github.com/modproxy/modproxy/internal/vulndb"
)

// openVulnDB returns the vulnerability database of the store, mirroring
// vuln.source when it is set, with its current generation loaded (a
// generation that cannot be loaded is logged; the server starts without
// it).
func openVulnDB(cfg config.Config, st storage.Store, copts proxyclient.Options, log *slog.Logger, m *metrics.Metrics) (*vulndb.DB, error) {
	opts := vulndb.Options{Store: st, Refresh: time.Duration(cfg.Vuln.Refresh), Logger: log}
	if cfg.Vuln.Source != "" {
		c, err := proxyclient.New(cfg.Vuln.Source, copts)
		if err != nil {
			return nil, &config.Error{Key: "vuln.source", Err: err}
		}
		opts.Source, opts.SourceName = c, c.String()
	}
	db := vulndb.New(opts)
	if err := db.Load(context.Background()); err != nil {
		log.Error("vulnerability database not loaded; /vuln/ answers 404 until a refresh or import succeeds", "err", err)
	}
	// Exported from start (the shipped alert uses them); a server with
	// neither a source nor a database has no data that could be stale: 0.
	m.VulnFuncs(func() float64 {
		if opts.Source == nil && db.Status().Generation == "" {
			return 0
		}
		return db.Age().Seconds()
	}, func() float64 { return float64(db.Failures()) })
	if opts.Source != nil || db.Status().Generation != "" {
		log.Info("vulnerability database served at /vuln/", "source", upstream.RedactURL(cfg.Vuln.Source), "refresh", time.Duration(cfg.Vuln.Refresh))
	}
	return db, nil
}

// VulnImport admits the database archive at file into the store of cfg's
// cache directory without starting a server (`modproxy vuln import`); a
// running server picks it up at its next refresh or reload. A refused
// archive is a *vulndb.ArchiveError and changes nothing.
func VulnImport(ctx context.Context, cfg config.Config, file string, log *slog.Logger) (vulndb.Status, error) {
	st, err := openStore(ctx, cfg)
	if err != nil {
		return vulndb.Status{}, err
	}
	db := vulndb.New(vulndb.Options{Store: st.store, Logger: log})
	if err := db.Import(ctx, file); err != nil {
		return vulndb.Status{}, err
	}
	return db.Status(), nil
}

// VulnStatus reports the vulnerability database in use (for tests and the
// admin API).
func (s *Server) VulnStatus() vulndb.Status { return s.vuln.Status() }
