package hosted

import (
	"context"
	"net/http"
	"os"

	"golang.org/x/mod/module"
	"golang.org/x/mod/sumdb"
	"golang.org/x/mod/sumdb/tlog"
)

// Handler serves the log read-only in the checksum database protocol
// (/latest, /lookup/PATH@VERSION, /tile/...) with
// golang.org/x/mod/sumdb.Server, so that a sumdb client holding the log's
// verifier key (VerifierKey) can check hosted versions and the log's
// consistency as the go command checks the public database's. Paths are
// relative to where it is mounted.
func (l *Log) Handler() http.Handler { return sumdb.NewServer(logOps{l}) }

// logOps is the log as sumdb.ServerOps.
type logOps struct{ l *Log }

func (o logOps) Signed(ctx context.Context) ([]byte, error) {
	if o.l.seen != nil {
		_ = o.l.Sync(ctx) // a shared log: what the other replicas committed too; else the head held
	}
	_, head := o.l.Head()
	return head, nil
}

func (o logOps) Lookup(ctx context.Context, m module.Version) (int64, error) {
	e, ok := o.l.Lookup(m.Path, m.Version)
	if !ok && o.l.seen != nil { // a shared log: perhaps published on another replica since
		_ = o.l.Sync(ctx)
		e, ok = o.l.Lookup(m.Path, m.Version)
	}
	if !ok {
		return 0, os.ErrNotExist
	}
	return e.Index, nil
}

// ReadRecords returns records id to id+n-1 of the current tree.
func (o logOps) ReadRecords(_ context.Context, id, n int64) ([][]byte, error) {
	recs, ok := o.l.records(id, n)
	if !ok {
		return nil, os.ErrNotExist
	}
	return recs, nil
}

// ReadTileData returns the hashes of tile t of the current tree.
func (o logOps) ReadTileData(_ context.Context, t tlog.Tile) ([]byte, error) {
	tree, _ := o.l.Head()
	if t.L < 0 || t.W <= 0 || (t.N<<uint(t.H))+int64(t.W) > tree.N>>uint(t.L*t.H) {
		return nil, os.ErrNotExist
	}
	return tlog.ReadTileData(t, o.l.hashReader())
}
