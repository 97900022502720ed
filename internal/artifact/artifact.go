// Package artifact is the vocabulary of the GOPROXY protocol: the kinds of
// artifact a proxy serves, the keys under which they are stored, and the
// parsing and validation of request paths.
//
// Every path is parsed with golang.org/x/mod/module (never by hand-written
// escaping). A Request returned by Parse is always safe to use as a storage
// key: its Key has no "..", no absolute path, no backslash and no NUL, because
// module paths and versions that could produce them are rejected.
//
// Errors returned by Parse wrap ErrInvalid, whose class is errclass.Invalid
// (the HTTP edge answers 404 for module paths, so that a "," GOPROXY chain
// falls through, and 400 for checksum database paths; never 5xx).
package artifact

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"

	"golang.org/x/mod/module"
	"golang.org/x/mod/semver"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/modproxy/modproxy/internal/errclass"
)

// ErrInvalid is wrapped by every error from Parse and ParseSumDB; its class
// is errclass.Invalid.
var ErrInvalid = errclass.New(errclass.Invalid, "invalid request path")

// Kind is the kind of an artifact.
type Kind int

// The kinds of artifact. List, Latest and Query are mutable: what they answer
// changes over time. Info, Mod and Zip of a canonical version are immutable.
const (
	List   Kind = iota + 1 // $module/@v/list
	Latest                 // $module/@latest
	Query                  // $module/@v/$query.info for a non-canonical version (branch, commit, prefix)
	Info                   // $module/@v/$version.info
	Mod                    // $module/@v/$version.mod
	Zip                    // $module/@v/$version.zip
	SumDB                  // /sumdb/$name/...: a checksum database file
)

var kindNames = [...]string{List: "list", Latest: "latest", Query: "query", Info: "info", Mod: "mod", Zip: "zip", SumDB: "sumdb"}

// String returns the lower-case name of k ("list", "zip", ...), used in logs and metrics.
func (k Kind) String() string {
	if k > 0 && int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "unknown"
}

// ContentType is the media type a proxy serves for k.
func (k Kind) ContentType() string {
	switch k {
	case Info, Latest, Query:
		return "application/json"
	case Zip:
		return "application/zip"
	case SumDB:
		return "text/plain; charset=utf-8"
	default:
		return "text/plain; charset=utf-8"
	}
}

// MaxPathLen bounds the length of a request path. Module paths are far
// shorter in practice; longer requests are rejected before any parsing.
const MaxPathLen = 1024

// Request is a parsed, validated protocol request.
type Request struct {
	Kind Kind
	// Module is the unescaped module path, e.g. "github.com/BurntSushi/toml".
	// Empty for SumDB.
	Module string
	// Version is the unescaped version for Info, Mod and Zip (canonical), or
	// the query for Query. Empty otherwise.
	Version string
	// SumDBName and SumDBPath are set for SumDB: the database name and the
	// path below /sumdb/$name/, e.g. "lookup/example.com/a@v1.0.0" or "tile/8/0/001".
	SumDBName, SumDBPath string
	// Key is the escaped protocol path without leading slash, e.g.
	// "github.com/!burnt!sushi/toml/@v/v1.3.2.zip" or "sumdb/sum.example/tile/8/0/001".
	// It is unique per artifact and safe as a relative file path.
	Key string
}

// Immutable reports whether the artifact never changes once published:
// Info, Mod and Zip of canonical versions, and complete checksum database
// tiles and lookups.
func (r Request) Immutable() bool {
	switch r.Kind {
	case Info, Mod, Zip:
		return true
	case SumDB:
		return sumdbImmutable(r.SumDBPath)
	}
	return false
}

// ModuleVersion returns the module.Version of an Info, Mod or Zip request.
func (r Request) ModuleVersion() module.Version {
	return module.Version{Path: r.Module, Version: r.Version}
}

func (r Request) String() string { return r.Key }

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// Parse parses the path of a module request relative to the proxy base,
// without the leading slash, already percent-decoded (as net/http's
// URL.Path is; never form-decoded, so "+incompatible" keeps its "+"), e.g.
// "github.com/!burnt!sushi/toml/@v/v1.3.2.info".
func Parse(p string) (Request, error) {
	if len(p) > MaxPathLen {
		return Request{}, invalid("path longer than %d bytes", MaxPathLen)
	}
	if strings.HasSuffix(p, "/@latest") {
		mod, err := unescapeModule(strings.TrimSuffix(p, "/@latest"))
		if err != nil {
			return Request{}, err
		}
		return Request{Kind: Latest, Module: mod, Key: p}, nil
	}
	i := strings.LastIndex(p, "/@v/")
	if i < 0 {
		return Request{}, invalid("%q is not a module proxy path (want MODULE/@v/... or MODULE/@latest)", p)
	}
	escMod, file := p[:i], p[i+len("/@v/"):]
	mod, err := unescapeModule(escMod)
	if err != nil {
		return Request{}, err
	}
	if file == "list" {
		return Request{Kind: List, Module: mod, Key: p}, nil
	}
	ext := file[strings.LastIndexByte(file, '.')+1:]
	if ext == file {
		return Request{}, invalid("%q: unknown file (want list, .info, .mod or .zip)", file)
	}
	escVer := strings.TrimSuffix(file, "."+ext)
	var kind Kind
	switch ext {
	case "info":
		kind = Info
	case "mod":
		kind = Mod
	case "zip":
		kind = Zip
	default:
		return Request{}, invalid("%q: unknown file extension %q (want .info, .mod or .zip)", file, ext)
	}
	ver, err := module.UnescapeVersion(escVer)
	if err != nil {
		return Request{}, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if ver == "" || strings.ContainsAny(ver, "/\\") {
		return Request{}, invalid("invalid version %q", ver)
	}
	if !IsCanonical(ver) {
		if kind != Info {
			return Request{}, fmt.Errorf("%w: %w", ErrInvalid, &module.InvalidVersionError{Version: ver, Err: errors.New("not a canonical version; only .info accepts queries")})
		}
		if ver == "latest" || ver == "upgrade" || ver == "patch" || strings.HasPrefix(ver, "<") || strings.HasPrefix(ver, ">") {
			return Request{}, invalid("version query %q is not supported by the proxy protocol", ver)
		}
		if err := checkQuery(ver); err != nil {
			return Request{}, err
		}
		return Request{Kind: Query, Module: mod, Version: ver, Key: p}, nil
	}
	// module.Check without its CheckPath, which UnescapePath has done (and
	// the semver check, which IsCanonical has).
	_, pathMajor, _ := module.SplitPathVersion(mod)
	if err := module.CheckPathMajor(ver, pathMajor); err != nil {
		return Request{}, fmt.Errorf("%w: %w", ErrInvalid, &module.ModuleError{Path: mod, Err: err})
	}
	return Request{Kind: kind, Module: mod, Version: ver, Key: p}, nil
}

// checkQuery rejects version queries that a server behind an upstream could
// read as a path traversal or a control character. x/mod has checked the
// query as a path element (no "/", "\", "..", control characters), but it
// allows "%": the upstream receives that escaped again (as "%25") and reads
// the query we read, yet a server that decodes twice would turn
// "..%2f..%2fadmin" into "../../admin". So no further decoding of the query
// (each valid %XX escape decoded, as lenient decoders do, as often as one
// is left) may contain a "." or ".." element between "/" or "\", or a
// control character.
func checkQuery(q string) error {
	for d, prev := decodeEscapes(q), q; d != prev; d, prev = decodeEscapes(d), d {
		if strings.ContainsFunc(d, unicode.IsControl) {
			return invalid("version query %q: decodes to a control character", q)
		}
		for _, el := range strings.FieldsFunc(d, func(r rune) bool { return r == '/' || r == '\\' }) {
			if el == "." || el == ".." {
				return invalid("version query %q: decodes to a path with a %q element", q, el)
			}
		}
	}
	return nil
}

// decodeEscapes decodes every valid %XX escape of s and keeps every other
// byte, "%" included.
func decodeEscapes(s string) string {
	if !strings.Contains(s, "%") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) {
			if c, err := strconv.ParseUint(s[i+1:i+3], 16, 8); err == nil {
				b.WriteByte(byte(c))
				i += 2
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// IsCanonical reports whether v is a canonical semantic version, including
// +incompatible.
func IsCanonical(v string) bool {
	if !semver.IsValid(v) {
		return false
	}
	return v == semver.Canonical(v) || (semver.Build(v) == "+incompatible" && semver.Canonical(v)+"+incompatible" == v)
}

func unescapeModule(esc string) (string, error) {
	if esc == "" {
		return "", invalid("empty module path")
	}
	mod, err := module.UnescapePath(esc)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return mod, nil
}

// ParseSumDB parses a checksum database request: p is the path below
// "/sumdb/", e.g. "sum.example.com/lookup/example.com/a@v1.0.0" or
// "sum.example.com/tile/8/0/x001/234.p/5". The name is returned in
// SumDBName; whether the name is one that is proxied is for the caller to
// decide. "supported" is accepted and has an empty Key (it is never stored).
func ParseSumDB(p string) (Request, error) {
	if len(p) > MaxPathLen {
		return Request{}, invalid("path longer than %d bytes", MaxPathLen)
	}
	name, rest, ok := strings.Cut(p, "/")
	if !ok || rest == "" {
		return Request{}, invalid("%q: want /sumdb/NAME/...", p)
	}
	if err := module.CheckPath(name); err != nil || strings.Contains(name, "/") {
		return Request{}, invalid("invalid checksum database name %q", name)
	}
	r, err := ParseSumDBPath(rest)
	if err != nil {
		return Request{}, err
	}
	r.SumDBName = name
	if rest != "supported" {
		r.Key = "sumdb/" + p
	}
	return r, nil
}

// ParseSumDBPath parses the path of a checksum database file relative to
// the database itself: "lookup/M@V", "tile/H/L/K[.p/W]", "latest" or
// "supported". The Request has Kind SumDB and SumDBPath set (Module and
// Version for lookups) and no SumDBName or Key.
func ParseSumDBPath(rest string) (Request, error) {
	if len(rest) > MaxPathLen {
		return Request{}, invalid("path longer than %d bytes", MaxPathLen)
	}
	r := Request{Kind: SumDB, SumDBPath: rest}
	switch {
	case rest == "supported", rest == "latest":
	case strings.HasPrefix(rest, "lookup/"):
		mv := strings.TrimPrefix(rest, "lookup/")
		escMod, escVer, ok := strings.Cut(mv, "@")
		if !ok {
			return Request{}, invalid("lookup %q: want MODULE@VERSION", mv)
		}
		mod, err := unescapeModule(escMod)
		if err != nil {
			return Request{}, err
		}
		ver, err := module.UnescapeVersion(escVer)
		if err != nil {
			return Request{}, fmt.Errorf("%w: %w", ErrInvalid, err)
		}
		if err := module.Check(mod, ver); err != nil || !IsCanonical(ver) {
			return Request{}, invalid("lookup %q: not a canonical module version", mv)
		}
		r.Module, r.Version = mod, ver
	case strings.HasPrefix(rest, "tile/"):
		t, err := tlog.ParseTilePath(rest)
		if err != nil {
			return Request{}, fmt.Errorf("%w: %w", ErrInvalid, err)
		}
		if t.Path() != rest {
			return Request{}, invalid("tile path %q is not canonical", rest)
		}
	default:
		return Request{}, invalid("%q: unknown checksum database endpoint", rest)
	}
	return r, nil
}

// sumdbImmutable reports whether a checksum database path names content that
// never changes: lookups of a module version and complete tiles. Partial
// tiles (".p/W") and "latest" change as the log grows.
func sumdbImmutable(p string) bool {
	switch {
	case strings.HasPrefix(p, "lookup/"):
		return true
	case strings.HasPrefix(p, "tile/"):
		return !strings.Contains(p, ".p/")
	}
	return false
}
