package proxyclient

import (
	"fmt"
	"net/url"
	"strings"

	"golang.org/x/mod/module"

	"github.com/modproxy/modproxy/internal/artifact"
)

// requestURL returns the URL of path p below base. p is a protocol path
// relative to a proxy base ("example.com/a/@v/list", "sumdb/NAME/latest"),
// or a checksum database path relative to the database's own URL
// ("lookup/M@V", "tile/...", "latest", "supported"; GOSUMDB="NAME+KEY URL"),
// or a vulnerability database path relative to the database's URL
// ("index/db.json", "index/modules.json", "ID/ID.json"; artifact.ParseVuln).
// p is parsed (artifact.Parse, ParseSumDB, ParseSumDBPath) and the URL path
// is built again from the module path and version with the protocol's
// escaping only: module.EscapePath/EscapeVersion, then URL path escaping of
// every element, as the go command does, the version being one element.
// So the upstream decodes exactly the path and version modproxy parsed: a
// "%" in a decoded query travels as "%25", and nothing in a version can
// become a path separator (a "/" would travel as "%2F"; x/mod admits none).
// A path that does not parse is not sent; the error wraps
// artifact.ErrInvalid.
func requestURL(base *url.URL, p string) (string, error) {
	esc, err := escapedPath(p)
	if err != nil {
		return "", err
	}
	u := *base
	u.RawPath = strings.TrimSuffix(u.EscapedPath(), "/") + "/" + esc
	if u.Path, err = url.PathUnescape(u.RawPath); err != nil {
		return "", fmt.Errorf("%w: %w", artifact.ErrInvalid, err)
	}
	return u.String(), nil
}

// escapedPath is the URL path of p, relative to the base.
func escapedPath(p string) (string, error) {
	if rest, ok := strings.CutPrefix(p, "sumdb/"); ok {
		r, err := artifact.ParseSumDB(rest)
		if err != nil {
			return "", err
		}
		esc, err := escapedSumDBPath(r)
		return "sumdb/" + escapeElems(r.SumDBName) + "/" + esc, err
	}
	r, err := artifact.Parse(p)
	if err != nil {
		if dr, derr := artifact.ParseSumDBPath(p); derr == nil {
			return escapedSumDBPath(dr)
		}
		if _, verr := artifact.ParseVuln(p); verr == nil {
			return p, nil // validated: nothing in it needs escaping
		}
		return "", err
	}
	mod, ver, err := escapeModuleVersion(r.Module, r.Version)
	if err != nil {
		return "", err
	}
	switch r.Kind {
	case artifact.List:
		return mod + "/@v/list", nil
	case artifact.Latest:
		return mod + "/@latest", nil
	case artifact.Info, artifact.Query:
		return mod + "/@v/" + ver + ".info", nil
	case artifact.Mod:
		return mod + "/@v/" + ver + ".mod", nil
	case artifact.Zip:
		return mod + "/@v/" + ver + ".zip", nil
	}
	return "", fmt.Errorf("%w: %q: unexpected kind %v", artifact.ErrInvalid, p, r.Kind)
}

// escapedSumDBPath is the URL path of a checksum database file relative
// to the database.
func escapedSumDBPath(r artifact.Request) (string, error) {
	if r.Module == "" { // latest, supported, tiles: validated, canonical
		return escapeElems(r.SumDBPath), nil
	}
	mod, ver, err := escapeModuleVersion(r.Module, r.Version)
	if err != nil {
		return "", err
	}
	return "lookup/" + mod + "@" + ver, nil
}

// escapeModuleVersion returns the URL path forms of a module path (its
// elements escaped, "/" kept) and of a version or query (one element: a
// "/" in it is escaped). An empty version stays empty.
func escapeModuleVersion(mod, ver string) (string, string, error) {
	em, err := module.EscapePath(mod)
	if err != nil {
		return "", "", fmt.Errorf("%w: %w", artifact.ErrInvalid, err)
	}
	if ver == "" {
		return escapeElems(em), "", nil
	}
	ev, err := module.EscapeVersion(ver)
	if err != nil {
		return "", "", fmt.Errorf("%w: %w", artifact.ErrInvalid, err)
	}
	return escapeElems(em), url.PathEscape(ev), nil
}

// escapeElems escapes every "/"-separated element of s for a URL path.
func escapeElems(s string) string {
	return strings.ReplaceAll(url.PathEscape(s), "%2F", "/")
}
