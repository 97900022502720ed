package vulndb

import (
	"archive/zip"
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/modproxy/modproxy/internal/artifact"
)

// ArchiveError is a database archive Import refused: not a zip, a file
// that does not read back (checksum, truncation, size), or content that
// fails the consistency checks. Nothing was changed.
type ArchiveError struct {
	File string // the archive
	Err  error
}

func (e *ArchiveError) Error() string {
	return fmt.Sprintf("vulnerability database archive %s refused, nothing changed: %v", e.File, e.Err)
}

func (e *ArchiveError) Unwrap() error { return e.Err }

// Import admits the database in the zip archive at path (the database's
// files, index/db.json, index/modules.json and ID/ID.json, at its root or
// under one top directory) as a new generation. Every file of the archive
// is read and checked (CRC, size, JSON; every entry under ID/ parses, not
// only those the index names) before anything is stored; an archive that
// fails is an *ArchiveError and changes nothing. Failures are counted.
func (d *DB) Import(ctx context.Context, path string) error {
	d.admitMu.Lock()
	defer d.admitMu.Unlock()
	err := d.importArchive(ctx, path)
	if err != nil {
		d.failures.Add(1)
	}
	return err
}

func (d *DB) importArchive(ctx context.Context, path string) error {
	if err := d.Load(ctx); err != nil {
		// An unreadable pointer or generation is what an import repairs.
		d.log.Warn("vulnerability database: the current generation cannot be read; importing over it", "err", err)
	}
	zr, err := zip.OpenReader(path)
	if err != nil {
		return &ArchiveError{File: path, Err: err}
	}
	defer zr.Close()
	files, err := readArchive(&zr.Reader)
	if err != nil {
		return &ArchiveError{File: path, Err: err}
	}
	dbBytes, ok := files[artifact.VulnDBIndex]
	if !ok {
		return &ArchiveError{File: path, Err: fmt.Errorf("no %s", artifact.VulnDBIndex)}
	}
	db, err := parseDB(dbBytes)
	if err != nil {
		return &ArchiveError{File: path, Err: err}
	}
	read := func(_ context.Context, name string) ([]byte, error) {
		b, ok := files[name]
		if !ok {
			return nil, fmt.Errorf("%s is missing", name)
		}
		return b, nil
	}
	if _, err := d.admit(ctx, "archive "+filepath.Base(path), read, dbBytes, db); err != nil {
		var ae *ArchiveError
		if errors.As(err, &ae) || ctx.Err() != nil {
			return err
		}
		return &ArchiveError{File: path, Err: err}
	}
	return nil
}

// readArchive reads every file of the archive into memory (by database
// path), checking each one's CRC and size, and that every entry parses.
func readArchive(zr *zip.Reader) (map[string][]byte, error) {
	prefix := ""
	for _, f := range zr.File {
		if dir, ok := strings.CutSuffix(f.Name, artifact.VulnDBIndex); ok && strings.Count(dir, "/") <= 1 {
			prefix = dir
			break
		}
	}
	files := map[string][]byte{}
	for _, f := range zr.File {
		name, ok := strings.CutPrefix(f.Name, prefix)
		if !ok || strings.HasSuffix(f.Name, "/") {
			continue
		}
		if f.UncompressedSize64 > maxFile {
			return nil, fmt.Errorf("%s: %d bytes, more than the limit of %d", f.Name, f.UncompressedSize64, maxFile)
		}
		rc, err := f.Open()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f.Name, err)
		}
		b, err := io.ReadAll(io.LimitReader(rc, maxFile+1))
		rc.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f.Name, err)
		}
		if len(b) > maxFile {
			return nil, fmt.Errorf("%s: more than the limit of %d bytes", f.Name, maxFile)
		}
		if strings.HasPrefix(name, "ID/") && strings.HasSuffix(name, ".json") {
			id, err := artifact.ParseVuln(name)
			if err != nil {
				return nil, err
			}
			if _, err := parseEntry(id, b); err != nil {
				return nil, err
			}
		}
		files[name] = b
	}
	return files, nil
}
