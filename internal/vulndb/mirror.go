package vulndb

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/modproxy/modproxy/internal/artifact"
	"github.com/modproxy/modproxy/internal/background"
)

// ErrNoSource is returned by Refresh when no source is configured.
var ErrNoSource = errors.New("no vulnerability database source is configured (vuln.source)")

// Refresh mirrors the source once: it first adopts a generation another
// process switched to (Load), then reads index/db.json; when its modified
// time is the current generation's and the current generation came from
// the same source, nothing else is fetched. Otherwise index/modules.json
// and every entry it names whose modified time changed are fetched,
// checked and admitted as a new generation. On any error the current
// generation stays in use (stale-if-error), nothing of the failed attempt
// is kept, and the failure is counted (Failures). Concurrent calls (and
// Import) are serialized.
func (d *DB) Refresh(ctx context.Context) error {
	if d.opts.Source == nil {
		return ErrNoSource
	}
	d.admitMu.Lock()
	defer d.admitMu.Unlock()
	err := d.refresh(ctx)
	if err != nil {
		d.failures.Add(1)
	}
	return err
}

func (d *DB) refresh(ctx context.Context) error {
	if err := d.Load(ctx); err != nil {
		d.log.Warn("vulnerability database: reloading the current generation failed; keeping the one in memory", "err", err)
	}
	dbBytes, err := d.fetch(ctx, artifact.VulnDBIndex)
	if err != nil {
		return err
	}
	db, err := parseDB(dbBytes)
	if err != nil {
		return fmt.Errorf("vulnerability database %s: %w", d.opts.SourceName, err)
	}
	if g := d.cur.Load(); g != nil && g.m.Source == d.opts.SourceName && g.m.DBModified.Equal(db.Modified) {
		d.lastOK.Store(d.now().UnixNano())
		return nil
	}
	if _, err := d.admit(ctx, d.opts.SourceName, d.fetch, dbBytes, db); err != nil {
		return fmt.Errorf("vulnerability database %s: %w", d.opts.SourceName, err)
	}
	return nil
}

// fetch reads one database file from the source (bounded by the
// fetcher's size limit and timeouts).
func (d *DB) fetch(ctx context.Context, name string) ([]byte, error) {
	resp, err := d.opts.Source.Fetch(ctx, name)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", name, err)
	}
	return b, nil
}

// Run starts the database's background work in g until ctx is done or g
// closes: with a source, a refresh at once and then every Refresh
// interval, each failure logged (the last good generation stays served);
// without one, a reload of vuln/current every interval, so that an
// offline import is picked up.
func (d *DB) Run(ctx context.Context, g *background.Group) {
	every := d.opts.Refresh
	if d.opts.Source == nil {
		g.Every(ctx, "vulnerability database reload", every, func(ctx context.Context) {
			if err := d.Load(ctx); err != nil {
				d.log.Warn("vulnerability database: reload failed; keeping the current generation", "err", err)
			}
		})
		return
	}
	g.Loop(ctx, "vulnerability database refresh", 0, func(ctx context.Context) time.Duration {
		if err := d.Refresh(ctx); err != nil && ctx.Err() == nil {
			st := d.Status()
			d.log.Error("vulnerability database refresh failed; serving the last good generation", "source", d.opts.SourceName,
				"generation", st.Generation, "failures", st.Failures, "err", err)
		}
		return every
	})
}
