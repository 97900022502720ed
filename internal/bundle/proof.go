package bundle

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/modproxy/modproxy/internal/storage"
)

// tileHeight is the tile height of the Go checksum database protocol.
const tileHeight = 8

// MissingTileError is a proof that needs a tile that neither the bundle
// nor the store holds.
type MissingTileError struct {
	DB   string
	Path string // tile/H/L/K[.p/W]
	For  string // what the proof was for
}

func (e *MissingTileError) Error() string {
	return fmt.Sprintf("checksum database %s: tile %s, needed to prove %s, is missing", e.DB, e.Path, e.For)
}

// ForkError is a signed tree head that is not consistent with another one
// of the same database: one of them is from a forked (or rewritten) log.
type ForkError struct {
	DB              string
	Trusted, Bundle int64 // tree sizes
	Err             error
}

func (e *ForkError) Error() string {
	msg := fmt.Sprintf("SECURITY: checksum database %s: the bundle's tree head (size %d) is not consistent with the trusted tree head (size %d): the database forked, or the bundle is not from it", e.DB, e.Bundle, e.Trusted)
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

func (e *ForkError) Unwrap() error { return e.Err }

// tileSource finds tile files: get returns the content under key
// (fs.ErrNotExist when absent); wider lists the keys of tiles with the
// given key prefix ("sumdb/NAME/tile/8/L/NNN.p/"), for partial tiles that
// are prefixes of wider ones.
type tileSource interface {
	get(ctx context.Context, key string) ([]byte, error)
	wider(ctx context.Context, prefix string) ([]string, error)
}

// storeTiles reads tiles from a store.
type storeTiles struct{ s storage.Store }

func (t storeTiles) get(ctx context.Context, key string) ([]byte, error) {
	return storage.ReadSmall(ctx, t.s, key, 1<<20)
}

func (t storeTiles) wider(ctx context.Context, prefix string) ([]string, error) {
	var keys []string
	err := t.s.Walk(ctx, prefix, func(i storage.Info) error {
		keys = append(keys, i.Key)
		return nil
	})
	return keys, err
}

// tileReader is a tlog.TileReader over tile sources, tried in order. A
// tile of width W is also cut from the full tile or a wider partial one
// (the hashes of a tile never change; the proof checks them anyway). It
// remembers every tile it returned, by path, for the bundle.
type tileReader struct {
	ctx     context.Context
	db      string
	what    string // what is being proved, for MissingTileError
	sources []tileSource
	read    map[string][]byte
}

func newTileReader(ctx context.Context, db string, sources ...tileSource) *tileReader {
	return &tileReader{ctx: ctx, db: db, sources: sources, read: map[string][]byte{}}
}

func (r *tileReader) Height() int { return tileHeight }

func (r *tileReader) SaveTiles([]tlog.Tile, [][]byte) {}

func (r *tileReader) ReadTiles(tiles []tlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(tiles))
	for i, t := range tiles {
		data, err := r.tile(t)
		if err != nil {
			return nil, err
		}
		out[i] = data
	}
	return out, nil
}

func (r *tileReader) tile(t tlog.Tile) ([]byte, error) {
	p := t.Path()
	if d, ok := r.read[p]; ok {
		return d, nil
	}
	want := t.W * tlog.HashSize
	base := "sumdb/" + r.db + "/"
	full := t
	full.W = 1 << t.H
	for _, src := range r.sources {
		keys := []string{base + p}
		if t.W != full.W {
			keys = append(keys, base+full.Path())
			more, err := src.wider(r.ctx, base+full.Path()+".p/")
			if err != nil {
				return nil, err
			}
			keys = append(keys, more...)
		}
		for _, k := range keys {
			d, err := src.get(r.ctx, k)
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("reading %s: %w", k, err)
			}
			if len(d) < want {
				continue
			}
			d = d[:want:want]
			r.read[p] = d
			return d, nil
		}
	}
	return nil, &MissingTileError{DB: r.db, Path: p, For: r.what}
}

// tiles returns the paths of the tiles read, sorted.
func (r *tileReader) tiles() []string {
	ps := make([]string, 0, len(r.read))
	for p := range r.read {
		ps = append(ps, p)
	}
	slices.Sort(ps)
	return ps
}

// openTree verifies a signed tree head with the database's key and returns
// the tree it signs.
func openTree(msg []byte, v note.Verifier) (tlog.Tree, error) {
	n, err := note.Open(msg, note.VerifierList(v))
	if err != nil {
		return tlog.Tree{}, fmt.Errorf("signed tree head of %s: %w", v.Name(), err)
	}
	t, err := tlog.ParseTree([]byte(n.Text))
	if err != nil {
		return tlog.Tree{}, fmt.Errorf("signed tree head of %s: %w", v.Name(), err)
	}
	return t, nil
}

// consistent checks that older is a prefix of newer (older.N <= newer.N),
// reading newer's tiles from r.
func consistent(r *tileReader, older, newer tlog.Tree) error {
	if older.N == 0 {
		return nil
	}
	r.what = fmt.Sprintf("tree size %d consistent with tree size %d", older.N, newer.N)
	h, err := tlog.TreeHash(older.N, tlog.TileHashReader(newer, r))
	if err != nil {
		return err
	}
	if h != older.Hash {
		return errors.New("the older tree's hash differs from the newer tree's prefix")
	}
	return nil
}

// proveRecord checks that record id with content data is in tree.
func proveRecord(r *tileReader, tree tlog.Tree, id int64, data []byte, what string) error {
	if id < 0 || id >= tree.N {
		return fmt.Errorf("record %d (%s) is not in the tree of size %d", id, what, tree.N)
	}
	r.what = what
	hs, err := tlog.TileHashReader(tree, r).ReadHashes([]int64{tlog.StoredHashIndex(0, id)})
	if err != nil {
		return err
	}
	if hs[0] != tlog.RecordHash(data) {
		return fmt.Errorf("record %d (%s) is not the one the tree holds", id, what)
	}
	return nil
}

// recordHashes returns the h1: hashes a lookup record holds for path at
// version: the zip's and the go.mod's.
func recordHashes(text []byte, path, version string) (zipH1, modH1 string) {
	for l := range strings.Lines(string(text)) {
		f := strings.Fields(l)
		if len(f) != 3 || f[0] != path || !strings.HasPrefix(f[2], "h1:") {
			continue
		}
		switch f[1] {
		case version:
			zipH1 = f[2]
		case version + "/go.mod":
			modH1 = f[2]
		}
	}
	return zipH1, modH1
}
