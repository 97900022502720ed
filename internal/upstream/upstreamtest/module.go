// Package upstreamtest is a fake GOPROXY upstream for tests.
//
// A [Server] serves a fixed but growable set of module versions over the
// module proxy protocol on a loopback address, together with a checksum
// database (sumdb) that vouches for exactly the bytes it serves. Tests can
// inject faults per request path ([Server.SetFault]), count and log requests,
// stop and restart the listener on the same address, and compare what a
// client received with the honest bytes ([Server.ZipBytes], [Server.GoSum]).
//
// Protocol, as the go command expects it (paths relative to [Server.URL]):
//
//	$mod/@v/list          canonical non-pseudo versions, one per line, semver order
//	$mod/@latest          .info of the highest release, else pre-release, else pseudo-version
//	$mod/@v/$v.info       {"Version":..., "Time":...}; also non-canonical queries added by AddQuery
//	$mod/@v/$v.mod        the go.mod (exactly "module PATH\n" for a module without one)
//	$mod/@v/$v.zip        the module zip, built once with golang.org/x/mod/zip.Create
//	sumdb/NAME/supported  200 (unless WithoutSumDB)
//	sumdb/NAME/lookup/... the checksum database (latest, lookup, tile)
//
// $mod and $v are case-encoded ([module.EscapePath], [module.EscapeVersion]).
// Unknown modules, versions and paths get 404 with a one-line text body
// starting with "not found: "; methods other than GET and HEAD get 405.
// Every response carries a Content-Length.
//
// The package has no package-level mutable state; every Server is
// independent and safe for concurrent use.
package upstreamtest

import (
	"archive/zip"
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	pathpkg "path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"golang.org/x/mod/module"
	"golang.org/x/mod/sumdb/dirhash"
	modzip "golang.org/x/mod/zip"
	"golang.org/x/tools/txtar"
)

// Module is one module version the fake serves.
type Module struct {
	// Path is the module path, e.g. "github.com/Upper/Case" (not escaped).
	// Version is its canonical version; it may be a pseudo-version or carry
	// +incompatible. Path and Version must pass module.Check.
	Path, Version string

	// Time is reported in .info and @latest. The zero Time means the time
	// encoded in a pseudo-version, or 2000-01-01T00:00:00Z otherwise.
	Time time.Time

	// Files are the files of the module root, keyed by slash-separated path
	// relative to the root ("go.mod", "a.go", "sub/b.go"). "go.mod" is
	// optional: when it is absent, .mod is exactly "module PATH\n" and the
	// zip has no go.mod. When present, the zip's go.mod equals .mod byte for
	// byte. Files that do not belong in a module zip are dropped as
	// golang.org/x/mod/zip.Create drops them.
	Files map[string][]byte
}

// check reports whether m can be served: a valid path, a canonical version
// that agrees with the path's major version suffix.
func (m Module) check() error {
	if m.Version == "" || module.CanonicalVersion(m.Version) != m.Version {
		return fmt.Errorf("upstreamtest: module %s: version %q is not canonical", m.Path, m.Version)
	}
	if err := module.Check(m.Path, m.Version); err != nil {
		return fmt.Errorf("upstreamtest: %w", err)
	}
	return nil
}

// infoTime is the Time that .info reports for m.
func (m Module) infoTime() time.Time {
	if !m.Time.IsZero() {
		return m.Time.UTC()
	}
	if module.IsPseudoVersion(m.Version) {
		if t, err := module.PseudoVersionTime(m.Version); err == nil {
			return t.UTC()
		}
	}
	return time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
}

// clone returns a deep copy of m, so that callers may reuse their maps and slices.
func (m Module) clone() Module {
	c := m
	c.Files = make(map[string][]byte, len(m.Files))
	for name, data := range m.Files {
		c.Files[name] = bytes.Clone(data)
	}
	return c
}

// ParseTxtar reads a module from a txtar archive. The archive comment holds
// one directive per line:
//
//	module PATH        (required)
//	version VERSION    (required, canonical)
//	time RFC3339       (optional)
//
// Blank lines and lines starting with "#" are ignored; any other line is an
// error. Each file of the archive is a file of the module root. ParseTxtar
// validates the path and version with module.Check.
func ParseTxtar(data []byte) (Module, error) {
	ar := txtar.Parse(data)
	var m Module
	sc := bufio.NewScanner(bytes.NewReader(ar.Comment))
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		key, val, _ := strings.Cut(text, " ")
		val = strings.TrimSpace(val)
		if val == "" {
			return Module{}, fmt.Errorf("upstreamtest: txtar comment line %d: %q has no value", line, key)
		}
		switch key {
		case "module":
			m.Path = val
		case "version":
			m.Version = val
		case "time":
			t, err := time.Parse(time.RFC3339, val)
			if err != nil {
				return Module{}, fmt.Errorf("upstreamtest: txtar comment line %d: %w", line, err)
			}
			m.Time = t
		default:
			return Module{}, fmt.Errorf("upstreamtest: txtar comment line %d: unknown directive %q (want module, version or time)", line, key)
		}
	}
	if m.Path == "" {
		return Module{}, errors.New("upstreamtest: txtar comment has no \"module PATH\" line")
	}
	if m.Version == "" {
		return Module{}, errors.New("upstreamtest: txtar comment has no \"version V\" line")
	}
	if err := m.check(); err != nil {
		return Module{}, err
	}
	m.Files = make(map[string][]byte, len(ar.Files))
	for _, f := range ar.Files {
		if _, dup := m.Files[f.Name]; dup {
			return Module{}, fmt.Errorf("upstreamtest: %s@%s: file %q appears twice", m.Path, m.Version, f.Name)
		}
		m.Files[f.Name] = f.Data
	}
	return m, nil
}

// LoadDir parses every *.txtar file in dir (not its subdirectories) with
// [ParseTxtar] and returns the modules in file name order.
func LoadDir(dir string) ([]Module, error) {
	names, err := filepath.Glob(filepath.Join(dir, "*.txtar"))
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	mods := make([]Module, 0, len(names))
	for _, name := range names {
		data, err := os.ReadFile(name)
		if err != nil {
			return nil, err
		}
		m, err := ParseTxtar(data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		mods = append(mods, m)
	}
	return mods, nil
}

// version is one served module version with its artifacts, built once by
// build and never mutated afterwards, so it may be read without a lock.
type version struct {
	mod   Module
	info  []byte // .info JSON
	gomod []byte // .mod
	zip   []byte // .zip
	gosum string // the two go.sum lines
}

// build validates m and builds its artifacts.
func build(m Module) (*version, error) {
	if err := m.check(); err != nil {
		return nil, err
	}
	m = m.clone()
	gomod, ok := m.Files["go.mod"]
	if !ok {
		gomod = []byte("module " + m.Path + "\n")
	}
	z, err := makeZip(m.Path, m.Version, m.Files)
	if err != nil {
		return nil, err
	}
	zipHash, err := hashZip(z)
	if err != nil {
		return nil, fmt.Errorf("upstreamtest: hashing zip of %s@%s: %w", m.Path, m.Version, err)
	}
	modHash, err := hashMod(gomod)
	if err != nil {
		return nil, fmt.Errorf("upstreamtest: hashing go.mod of %s@%s: %w", m.Path, m.Version, err)
	}
	return &version{
		mod:   m,
		info:  infoJSON(m.Version, m.infoTime()),
		gomod: gomod,
		zip:   z,
		gosum: fmt.Sprintf("%s %s %s\n%s %s/go.mod %s\n", m.Path, m.Version, zipHash, m.Path, m.Version, modHash),
	}, nil
}

// infoJSON is the body of .info and @latest.
func infoJSON(vers string, t time.Time) []byte {
	data, err := json.Marshal(struct {
		Version string
		Time    time.Time
	}{vers, t.UTC()})
	if err != nil {
		panic(err) // cannot happen: both fields always marshal
	}
	return append(data, '\n')
}

// makeZip builds the module zip of path@vers from files with zip.Create,
// which prefixes every entry with "path@vers/".
func makeZip(path, vers string, files map[string][]byte) ([]byte, error) {
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	zfiles := make([]modzip.File, 0, len(names))
	for _, name := range names {
		zfiles = append(zfiles, memFile{name: name, data: files[name]})
	}
	var buf bytes.Buffer
	if err := modzip.Create(&buf, module.Version{Path: path, Version: vers}, zfiles); err != nil {
		return nil, fmt.Errorf("upstreamtest: %w", err)
	}
	return buf.Bytes(), nil
}

// hashZip is dirhash.HashZip over an in-memory zip: the h1 hash of the
// entries' names and contents.
func hashZip(z []byte) (string, error) {
	zr, err := zip.NewReader(bytes.NewReader(z), int64(len(z)))
	if err != nil {
		return "", err
	}
	names := make([]string, 0, len(zr.File))
	entries := make(map[string]*zip.File, len(zr.File))
	for _, f := range zr.File {
		names = append(names, f.Name)
		entries[f.Name] = f
	}
	return dirhash.Hash1(names, func(name string) (io.ReadCloser, error) {
		f := entries[name]
		if f == nil {
			return nil, fmt.Errorf("file %q not found in zip", name)
		}
		return f.Open()
	})
}

// hashMod is the h1 hash recorded in go.sum for a go.mod file.
func hashMod(gomod []byte) (string, error) {
	return dirhash.Hash1([]string{"go.mod"}, func(string) (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(gomod)), nil
	})
}

// memFile is an in-memory modzip.File.
type memFile struct {
	name string
	data []byte
}

func (f memFile) Path() string                 { return f.name }
func (f memFile) Lstat() (os.FileInfo, error)  { return memFileInfo(f), nil }
func (f memFile) Open() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(f.data)), nil }

// memFileInfo describes a memFile as a regular file.
type memFileInfo memFile

func (fi memFileInfo) Name() string       { return pathpkg.Base(fi.name) }
func (fi memFileInfo) Size() int64        { return int64(len(fi.data)) }
func (fi memFileInfo) Mode() os.FileMode  { return 0o644 }
func (fi memFileInfo) ModTime() time.Time { return time.Time{} }
func (fi memFileInfo) IsDir() bool        { return false }
func (fi memFileInfo) Sys() any           { return nil }
