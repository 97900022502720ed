// Package bundle moves verified module versions across an air gap: Export
// writes one archive of cached module files, the checksum database records
// and proof tiles that vouch for them, the signed tree head they are proved
// against and a manifest; Import checks all of it before it admits anything
// into a store.
//
// # Format (version 1)
//
// A bundle is an uncompressed POSIX tar archive (archive/tar, PAX headers)
// of regular files only:
//
//   - objects/KEY, one per stored object, where KEY is the store key
//     (the escaped protocol path, such as "example.com/m/@v/v1.0.0.zip",
//     "sumdb/NAME/lookup/example.com/m@v1.0.0", "sumdb/NAME/tile/8/0/000.p/7",
//     "sumdb/NAME/latest", or a "vuln/" or "dl/" key copied verbatim);
//   - manifest.json, the last member: a Manifest naming every other
//     member with its size and SHA-256, the module versions with their h1:
//     hashes (private ones marked), and per checksum database the signed
//     tree head every record is proved against.
//
// A checksum database lookup member is the lookup answer as the database
// serves it ("ID\nRECORD\n\nSIGNED TREE HEAD"), with the bundle's tree head
// as its signed tree head, so that every lookup, tile and the tree head an
// offline proxy serves describe one tree. The tiles are those the proofs of
// every record in that tree need, at that tree's size (partial tiles of
// its right edge included), and, for a bundle made with Since, those that
// prove the earlier bundle's tree head consistent with it. A Since bundle
// leaves out the members the earlier one held unchanged (module files,
// complete tiles) but carries the records of the earlier bundle's modules
// again, with its own tree head: a client that has seen the newer tree
// verifies an old module in it.
//
// Members appear in this order: module files, tiles, lookups, vuln/ and
// dl/ objects, the tree head, manifest.json. A reader needs nothing but the
// manifest to know what the archive must hold; an archive that ends before
// it is truncated.
package bundle

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"slices"
	"strings"
	"time"
)

// FormatName and FormatVersion identify the manifest's format.
const (
	FormatName    = "modproxy-bundle"
	FormatVersion = 1
	// ManifestName is the name of the manifest member, the archive's last.
	ManifestName = "manifest.json"
	// ObjectPrefix is the prefix of every other member's name.
	ObjectPrefix = "objects/"
	// VulnCurrent is the vulnerability mirror's pointer object, admitted
	// after every other vuln/ object.
	VulnCurrent = "vuln/current"

	maxManifest = 256 << 20
)

// Manifest describes a bundle; see the package documentation.
type Manifest struct {
	Format  string    `json:"format"`
	Version int       `json:"version"`
	Created time.Time `json:"created"`
	// Since is the ID of the bundle this one continues: members that one
	// held unchanged are left out.
	Since string `json:"since,omitempty"`
	// Databases are the checksum databases whose records the bundle holds.
	Databases []Database `json:"databases,omitempty"`
	Modules   []Module   `json:"modules"`
	// PrivateNote says, when any module is private, that those modules
	// carry no checksum database record.
	PrivateNote string   `json:"private_note,omitempty"`
	Members     []Member `json:"members"`
}

// Database is one checksum database's part of a bundle.
type Database struct {
	Name string `json:"name"`
	// TreeHead is the signed tree head (a note) every record is proved
	// against; it is also the member sumdb/NAME/latest.
	TreeHead string `json:"tree_head"`
	Size     int64  `json:"tree_size"`
	// Trusted is the tree head that the exporting side had verified (its
	// state), when it differs from TreeHead.
	Trusted string `json:"trusted,omitempty"`
	// Previous are the tree heads of the earlier bundles of a --since
	// chain, latest first; the bundle's tiles prove TreeHead consistent
	// with each, for clients inside that have seen one of them.
	Previous []string `json:"previous,omitempty"`
}

// Module is one module version of a bundle.
type Module struct {
	Path    string `json:"path"`
	Version string `json:"version"`
	// Files are the files held: "info", "mod", "zip".
	Files []string `json:"files"`
	// ZipHash and ModHash are the h1: hashes of the zip and the go.mod.
	ZipHash string `json:"zip_h1,omitempty"`
	ModHash string `json:"mod_h1,omitempty"`
	// Private modules have no checksum database record: they are admitted
	// on the exporting side's word, only where the importing side's
	// private patterns match them too.
	Private bool `json:"private,omitempty"`
	// Database names the checksum database whose record vouches for a
	// public module.
	Database string `json:"database,omitempty"`
}

// Member is one archive member other than the manifest.
type Member struct {
	Key    string `json:"key"` // store key; the member is ObjectPrefix+Key
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// ID is the identity of the bundle that m describes: the SHA-256 of its
// encoded manifest.
func (m *Manifest) ID() string {
	b, _ := m.encode()
	return sum(b)
}

func (m *Manifest) encode() ([]byte, error) {
	return json.MarshalIndent(m, "", "  ")
}

// member returns the member with key, if any.
func (m *Manifest) member(key string) (Member, bool) {
	i, ok := slices.BinarySearchFunc(m.Members, key, func(a Member, k string) int { return strings.Compare(a.Key, k) })
	if !ok {
		return Member{}, false
	}
	return m.Members[i], true
}

// has reports whether m holds key with the given SHA-256.
func (m *Manifest) has(key, sha string) bool {
	mem, ok := m.member(key)
	return ok && mem.SHA256 == sha
}

// module returns the module entry for path@version, if any.
func (m *Manifest) module(path, version string) (Module, bool) {
	for _, mod := range m.Modules {
		if mod.Path == path && mod.Version == version {
			return mod, true
		}
	}
	return Module{}, false
}

func (m *Manifest) check() error {
	if m.Format != FormatName {
		return &FormatError{Msg: fmt.Sprintf("manifest format %q, want %q", m.Format, FormatName)}
	}
	if m.Version != FormatVersion {
		return &FormatError{Msg: fmt.Sprintf("bundle format version %d; this modproxy reads version %d", m.Version, FormatVersion)}
	}
	if !slices.IsSortedFunc(m.Members, func(a, b Member) int { return strings.Compare(a.Key, b.Key) }) {
		return &FormatError{Msg: "manifest members are not sorted"}
	}
	for i := 1; i < len(m.Members); i++ {
		if m.Members[i].Key == m.Members[i-1].Key {
			return &FormatError{Msg: "manifest names member " + m.Members[i].Key + " twice"}
		}
	}
	return nil
}

// FormatError is an archive that is not a well-formed bundle: truncated,
// not a tar archive, without a manifest or with members it does not list.
type FormatError struct {
	Msg string
	Err error
}

func (e *FormatError) Error() string {
	if e.Err != nil {
		return "bundle: " + e.Msg + ": " + e.Err.Error()
	}
	return "bundle: " + e.Msg
}

func (e *FormatError) Unwrap() error { return e.Err }

// ReadManifest reads the manifest of the bundle r (the archive's last
// member), skipping the others without checking them.
func ReadManifest(r io.Reader) (*Manifest, error) {
	var man *Manifest
	err := readArchive(r, func(name string, _ int64, body io.Reader) error {
		if name != ManifestName {
			_, err := io.Copy(io.Discard, body)
			return err
		}
		var err error
		man, err = decodeManifest(body)
		return err
	})
	if err != nil {
		return nil, err
	}
	if man == nil {
		return nil, &FormatError{Msg: "the archive ends before its manifest: it is truncated, or not a bundle"}
	}
	return man, nil
}

func decodeManifest(r io.Reader) (*Manifest, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxManifest+1))
	if err != nil {
		return nil, &FormatError{Msg: "reading the manifest", Err: err}
	}
	if len(data) > maxManifest {
		return nil, &FormatError{Msg: "manifest larger than 256 MiB"}
	}
	var m Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, &FormatError{Msg: "manifest does not parse", Err: err}
	}
	if err := m.check(); err != nil {
		return nil, err
	}
	return &m, nil
}

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// hasher is a SHA-256 with a hex result.
type hasher struct{ hash.Hash }

func newHash() hasher { return hasher{sha256.New()} }

func (h hasher) hex() string { return hex.EncodeToString(h.Sum(nil)) }
