package access

import (
	"fmt"
	"path"
	"slices"
	"strings"

	"golang.org/x/mod/module"
)

// Scope is a right an identity holds.
type Scope string

const (
	ScopeRead    Scope = "read"    // read modules through the protocol
	ScopePublish Scope = "publish" // uploads through the publish API; decided as read is
	ScopeAdmin   Scope = "admin"   // the admin API
)

// scopes in their canonical order.
var scopeOrder = [...]Scope{ScopeRead, ScopePublish, ScopeAdmin}

// ParseScope returns the scope named s, or an error wrapping
// ErrInvalidSpec.
func ParseScope(s string) (Scope, error) {
	for _, sc := range scopeOrder {
		if string(sc) == s {
			return sc, nil
		}
	}
	return "", fmt.Errorf("%w: unknown scope %q (want read, publish or admin)", ErrInvalidSpec, s)
}

// Namespaces a Grant may name besides configured namespace names.
const (
	RootNamespace = ""  // the proxy's root (GOPROXY=https://host)
	AllNamespaces = "*" // every namespace, the root included
)

// Grant is what an identity may do.
type Grant struct {
	// Scopes held, in the order read, publish, admin.
	Scopes []Scope `json:"scopes"`
	// Namespaces readable (RootNamespace, AllNamespaces or names); never
	// empty after NewGrant (default: the root).
	Namespaces []string `json:"namespaces"`
	// Match limits the private modules the identity may see to these
	// module path patterns (GOPRIVATE syntax, matched with
	// module.MatchPrefixPatterns); empty: every module.
	Match []string `json:"match,omitempty"`
}

// NewGrant validates and normalises a grant: at least one scope, known
// scopes only (deduplicated, canonical order), namespaces defaulting to
// the root (deduplicated, sorted), patterns that path.Match accepts and
// contain no comma (deduplicated, in their order). Errors wrap
// ErrInvalidSpec.
func NewGrant(scopes []Scope, namespaces, match []string) (Grant, error) {
	var g Grant
	for _, sc := range scopeOrder {
		if slices.Contains(scopes, sc) {
			g.Scopes = append(g.Scopes, sc)
		}
	}
	for _, sc := range scopes {
		if !slices.Contains(scopeOrder[:], sc) {
			return Grant{}, fmt.Errorf("%w: unknown scope %q (want read, publish or admin)", ErrInvalidSpec, sc)
		}
	}
	if len(g.Scopes) == 0 {
		return Grant{}, fmt.Errorf("%w: no scope", ErrInvalidSpec)
	}
	if len(namespaces) == 0 {
		namespaces = []string{RootNamespace}
	}
	for _, ns := range namespaces {
		if !validNamespace(ns) {
			return Grant{}, fmt.Errorf("%w: namespace %q (want \"\" for the root, \"*\" for all, or a name of a-z, 0-9 and -)", ErrInvalidSpec, ns)
		}
	}
	g.Namespaces = slices.Compact(slices.Sorted(slices.Values(namespaces)))
	for _, p := range match {
		p = strings.TrimSuffix(strings.TrimSpace(p), "/")
		if p == "" || strings.Contains(p, ",") {
			return Grant{}, fmt.Errorf("%w: module path pattern %q (one non-empty GOPRIVATE pattern per entry)", ErrInvalidSpec, p)
		}
		if _, err := path.Match(p, ""); err != nil {
			return Grant{}, fmt.Errorf("%w: module path pattern %q: %v", ErrInvalidSpec, p, err)
		}
		if !slices.Contains(g.Match, p) {
			g.Match = append(g.Match, p)
		}
	}
	return g, nil
}

func validNamespace(ns string) bool {
	if ns == RootNamespace || ns == AllNamespaces {
		return true
	}
	for _, r := range ns {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
			return false
		}
	}
	return true
}

// validName reports whether n is a valid token or mapping name: 1 to 64
// letters, digits, '.', '_' or '-', starting with a letter or digit. The
// set is safe in logs, metrics labels and file names.
func validName(n string) bool {
	if n == "" || len(n) > 64 {
		return false
	}
	for i, r := range n {
		alnum := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9'
		if !alnum && (i == 0 || r != '.' && r != '_' && r != '-') {
			return false
		}
	}
	return true
}

// Reserved names: no token or certificate mapping may have them, so that
// they stand for requests without an identity and for the identities a
// bounded per-identity statistic does not track.
const (
	AnonymousName = "anonymous"
	OtherName     = "other"
)

// reservedName reports whether n is AnonymousName or OtherName.
func reservedName(n string) bool { return n == AnonymousName || n == OtherName }

// newIdentity builds the Identity of a grant, with its patterns precomputed.
func newIdentity(name string, kind Kind, g Grant) Identity {
	return Identity{Name: name, Kind: kind, Grant: g, match: strings.Join(g.Match, ",")}
}

// Allowed reports whether id holds scope for modulePath in namespace.
//
// ScopeAdmin is global: namespace and modulePath are not consulted. For
// ScopeRead and ScopePublish the namespace must be one of the grant's (or
// the grant has AllNamespaces), and a private module (one matching
// Options.Private) must match one of the grant's Match patterns when it
// has any. modulePath "" stands for a request that names no module.
//
// A false answer for a read must reach the client as "not found" (404),
// indistinguishable from a module that does not exist. Checksum database
// paths are not decided here: see IsSumDBPath.
func (s *Service) Allowed(id Identity, scope Scope, namespace, modulePath string) bool {
	if !slices.Contains(id.Grant.Scopes, scope) {
		return false
	}
	if scope == ScopeAdmin {
		return true
	}
	if !slices.Contains(id.Grant.Namespaces, namespace) && !slices.Contains(id.Grant.Namespaces, AllNamespaces) {
		return false
	}
	if modulePath == "" || len(id.Grant.Match) == 0 || !module.MatchPrefixPatterns(s.private, modulePath) {
		return true
	}
	match := id.match
	if match == "" { // an Identity built outside this package
		match = strings.Join(id.Grant.Match, ",")
	}
	return module.MatchPrefixPatterns(match, modulePath)
}

// IsSumDBPath reports whether p, a request path relative to the proxy URL
// the go command was given (the root or a namespace's /NAME), is a checksum
// database path: /sumdb/NAME/supported, /sumdb/NAME/latest,
// /sumdb/NAME/lookup/... or /sumdb/NAME/tile/.... Such paths are readable
// by every authenticated identity, whatever its scopes, namespaces and
// patterns; the HTTP layer checks them with this function instead of
// Allowed. It looks at the shape only: whether the rest is valid is the
// protocol parser's business.
func IsSumDBPath(p string) bool {
	rest, ok := strings.CutPrefix(p, "/sumdb/")
	if !ok {
		return false
	}
	name, rest, ok := strings.Cut(rest, "/")
	if !ok || name == "" {
		return false
	}
	return rest == "supported" || rest == "latest" ||
		strings.HasPrefix(rest, "lookup/") || strings.HasPrefix(rest, "tile/")
}
