// Package access decides who is asking and what they may see: identities,
// API tokens, client-certificate mappings and scopes. It is pure domain
// code: no HTTP status numbers, no configuration file, no listener. The
// HTTP layer calls Authenticate and Allowed and chooses the statuses.
//
// # Identities
//
// An Identity is a token (presented as "Authorization: Bearer T" or as the
// password of Basic auth with any user name, so that a netrc line
// "machine HOST login NAME password T" works with the go command) or a
// verified client certificate mapped by one of its names (a DNS, URI or
// email subject alternative name, or the subject common name) through a
// configured CertMapping. Each carries a Grant: scopes, namespaces and
// module path patterns. An Identity never holds a secret; its String and
// LogValue are its name only, so logging one (or an *AuthError) cannot
// leak a token.
//
// # Tokens
//
// Create makes a token secret of 32 bytes from crypto/rand, encoded as
// TokenPrefix followed by unpadded base64url, and returns it once; only its
// SHA-256 is stored. Checking a presented token costs one SHA-256 and one
// map lookup keyed by that hash: no key derivation, and no comparison of
// secret bytes that could leak through timing (the map compares hashes,
// which say nothing about the secret). SHA-256 without a slow KDF is
// enough because the secrets are random, not chosen by people.
//
// A token name is unique among tokens that are not revoked; a revoked
// token keeps its record (List shows it) until a new token of the same
// name replaces it. Expired tokens are refused but keep their name until
// revoked.
//
// # Persistence
//
// All tokens are one JSON document (StateName) read and written through
// the State interface: a local file (NewFile: CACHE_DIR/state/tokens.json,
// mode 0600, replaced atomically) or an object of the shared store in a
// cluster. Create and Revoke read the current document, change it and
// write it back, serialised within the process; two processes writing at
// the same instant may lose one of the two changes (the last writer wins),
// which the token commands make unlikely and visible (List). Reload
// re-reads the document; a Watcher calls it periodically (DefaultInterval)
// and on Notify (the cluster's change broadcast), so a running server sees
// a created or revoked token within one interval. When a reload fails
// (store unreachable, corrupt document) the previous tokens stay in force
// and the error is logged and returned.
//
// # Scopes
//
// ScopeRead reads modules through the protocol, ScopePublish uploads
// hosted modules through the publish API (decided as read is),
// ScopeAdmin uses the admin API. Scopes
// are not hierarchical: an admin token reads modules only if it also has
// read. Read and publish are limited to the Grant's namespaces (default:
// the root namespace "") and, for private modules (those matching
// Options.Private, GOPRIVATE syntax), to its Match patterns when it has
// any. A module the identity may not see must look to it as if it did not
// exist: the HTTP layer answers 404, the same as for a module that is
// really missing, so that its existence does not leak.
//
// The checksum database paths (/sumdb/NAME/supported, /latest, /lookup/,
// /tile/; see IsSumDBPath) are readable by every authenticated identity
// whatever its grant: they name only public modules (lookups of private
// ones are answered "not found" without going upstream) and the go command
// needs them for every module.
//
// # Concurrency
//
// A Service is safe for concurrent use. Authenticate and Allowed take no
// lock: they read an immutable snapshot replaced atomically by Create,
// Revoke and Reload.
package access

import (
	"context"
	"errors"
	"log/slog"
	"time"
)

// Error classes of Authenticate, for errors.Is. Each failure is an
// *AuthError wrapping one of them.
var (
	// ErrUnauthenticated: the request carries no credentials (no
	// Authorization header and no verified client certificate).
	ErrUnauthenticated = errors.New("no credentials")
	// ErrInvalid: the credentials are malformed (unknown scheme, bad
	// Basic encoding, empty or oversized token, several headers).
	ErrInvalid = errors.New("malformed credentials")
	// ErrRejected: well-formed credentials that are refused (an unknown,
	// expired or revoked token; a certificate no mapping names).
	ErrRejected = errors.New("credentials rejected")
)

// ErrInvalidSpec is wrapped by Create, Open and NewGrant for a token name,
// grant, expiry or certificate mapping that is not valid. Create of a
// name in use wraps fs.ErrExist; Revoke of an unknown name wraps
// fs.ErrNotExist.
var ErrInvalidSpec = errors.New("invalid token specification")

// AuthError is a failed authentication. Its text names the class, the
// reason and the token or mapping name when known, never a secret.
type AuthError struct {
	Class  error  // ErrUnauthenticated, ErrInvalid or ErrRejected
	Reason string // "unknown token", "token expired", "unsupported scheme", ...
	Name   string // the token's or certificate's name, when known
}

func (e *AuthError) Error() string {
	s := "access: " + e.Class.Error() + ": " + e.Reason
	if e.Name != "" {
		s += " (" + e.Name + ")"
	}
	return s
}

func (e *AuthError) Unwrap() error { return e.Class }

// Kind is how an identity was established.
type Kind string

const (
	KindToken       Kind = "token"
	KindCertificate Kind = "certificate"
	KindAnonymous   Kind = "anonymous" // no authentication (auth off)
)

// Identity is who is asking. The slices of its Grant are shared with the
// Service's snapshot: read them, do not modify them.
type Identity struct {
	// Name is the token's name or the certificate mapping's name: a bounded
	// set, suitable as a metrics label.
	Name string
	Kind Kind
	// Subject is, for a certificate, the name that matched its mapping
	// ("dns:ci.corp.example.com", "cn:runner-7"); empty for a token.
	Subject string
	Grant   Grant
	// Expires is when the token or certificate stops being accepted; zero
	// for a token without expiry.
	Expires time.Time

	match string // Grant.Match joined with commas for module.MatchPrefixPatterns
}

// Anonymous is the identity of a request when authentication is off. It
// holds no scope: Allowed refuses it everything.
func Anonymous() Identity { return Identity{Name: AnonymousName, Kind: KindAnonymous} }

// String returns the identity's name.
func (id Identity) String() string { return id.Name }

// LogValue logs the identity's name only.
func (id Identity) LogValue() slog.Value { return slog.StringValue(id.Name) }

type ctxKey struct{}

// NewContext returns ctx carrying id (for the access log and audit records
// below the HTTP layer).
func NewContext(ctx context.Context, id Identity) context.Context {
	return context.WithValue(ctx, ctxKey{}, id)
}

// NewContextOf is NewContext for an identity the caller already holds by
// pointer (no copy is made: id must not change afterwards).
func NewContextOf(ctx context.Context, id *Identity) context.Context {
	return context.WithValue(ctx, ctxKey{}, id)
}

// FromContext returns the identity NewContext or NewContextOf stored in
// ctx.
func FromContext(ctx context.Context) (Identity, bool) {
	switch id := ctx.Value(ctxKey{}).(type) {
	case Identity:
		return id, true
	case *Identity:
		if id != nil {
			return *id, true
		}
	}
	return Identity{}, false
}
