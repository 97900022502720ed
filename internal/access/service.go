package access

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// TokenPrefix starts every token secret, so that a leaked one is
// recognisable (secret scanners, logs) as a modproxy token.
const TokenPrefix = "mp_"

// secretBytes is the entropy of a token.
const secretBytes = 32

// maxTokenLen bounds a presented token: a longer one cannot be ours and is
// refused before it is hashed.
const maxTokenLen = 256

// Options configure a Service.
type Options struct {
	// State holds the token document (required).
	State State
	// Certificates map verified client certificates to identities.
	Certificates []CertMapping
	// Private lists the private module path patterns (GOPRIVATE syntax,
	// usually the server's verify.private): the modules a grant's Match
	// patterns restrict. Other modules are visible to every identity with
	// the scope in the namespace.
	Private string
	// Logger receives one line per created, revoked or reloaded token set
	// and per failing reload; nil discards. Secrets are never logged.
	Logger *slog.Logger
}

// Token is a token as List shows it (the secret and its hash are not part
// of it).
type Token struct {
	Name string `json:"name"`
	Grant
	Created time.Time `json:"created"`
	Expires time.Time `json:"expires,omitzero"` // zero: never
	Revoked time.Time `json:"revoked,omitzero"` // zero: not revoked
}

// Status is "revoked", "expired" or "active" at now.
func (t Token) Status(now time.Time) string {
	switch {
	case !t.Revoked.IsZero():
		return "revoked"
	case !t.Expires.IsZero() && !now.Before(t.Expires):
		return "expired"
	}
	return "active"
}

// record is a token as stored: with the hash of its secret.
type record struct {
	Token
	SHA256 string `json:"sha256"` // hex SHA-256 of the secret
}

// document is the persisted form, StateName.
type document struct {
	Version int      `json:"version"`
	Tokens  []record `json:"tokens"`
}

const documentVersion = 1

// Service authenticates requests and manages tokens. See the package
// documentation for its contracts.
type Service struct {
	state   State
	certs   certIndex
	private string
	log     *slog.Logger

	cur atomic.Pointer[snapshot]

	mu      sync.Mutex // serialises Create, Revoke and Reload; guards the fields below
	digest  [32]byte   // SHA-256 of the document cur was built from
	failing bool       // the last Reload failed (log the next failure only after a success)
}

// snapshot is an immutable token set.
type snapshot struct {
	byHash map[[32]byte]*entry
	tokens []Token // by name
}

type entry struct {
	id      Identity
	revoked bool
}

// Open returns a Service with the tokens State holds now. It fails when
// the document cannot be read or decoded, or a certificate mapping is not
// valid (wrapping ErrInvalidSpec). It starts no goroutine: see Watch.
func Open(ctx context.Context, o Options) (*Service, error) {
	if o.State == nil {
		return nil, errors.New("access: no State")
	}
	certs, err := newCertIndex(o.Certificates)
	if err != nil {
		return nil, err
	}
	s := &Service{state: o.State, certs: certs, private: o.Private, log: o.Logger}
	if s.log == nil {
		s.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s.cur.Store(&snapshot{})
	if err := s.Reload(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// Create makes a token named name with grant g (normalised by NewGrant)
// that expires at expires (zero: never), stores its hash and returns its
// secret, which is never shown again. Errors: ErrInvalidSpec (bad name or
// grant, expiry not in the future), fs.ErrExist (a token of that name that
// is not revoked), or the State's.
func (s *Service) Create(ctx context.Context, name string, g Grant, expires time.Time) (string, Token, error) {
	if !validName(name) {
		return "", Token{}, fmt.Errorf("%w: token name %q (1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit)", ErrInvalidSpec, name)
	}
	if reservedName(name) {
		return "", Token{}, fmt.Errorf("%w: token name %q is reserved (it names requests without a token, or the identities beyond the tracked ones)", ErrInvalidSpec, name)
	}
	g, err := NewGrant(g.Scopes, g.Namespaces, g.Match)
	if err != nil {
		return "", Token{}, err
	}
	now := time.Now()
	if !expires.IsZero() && !expires.After(now) {
		return "", Token{}, fmt.Errorf("%w: expiry %s is not in the future", ErrInvalidSpec, expires.Format(time.RFC3339))
	}
	if !expires.IsZero() {
		expires = expires.UTC().Truncate(time.Second)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	doc, err := s.load(ctx)
	if err != nil {
		return "", Token{}, err
	}
	i := slices.IndexFunc(doc.Tokens, func(r record) bool { return r.Name == name })
	if i >= 0 && doc.Tokens[i].Revoked.IsZero() {
		return "", Token{}, fmt.Errorf("access: token %q: %w (revoke it first)", name, fs.ErrExist)
	}
	secret, sum := newSecret()
	rec := record{
		Token:  Token{Name: name, Grant: g, Created: now.UTC().Truncate(time.Second), Expires: expires},
		SHA256: hex.EncodeToString(sum[:]),
	}
	if i >= 0 {
		doc.Tokens[i] = rec
	} else {
		doc.Tokens = append(doc.Tokens, rec)
	}
	if err := s.store(ctx, doc); err != nil {
		return "", Token{}, err
	}
	s.log.Info("token created", "token", name, "scopes", g.Scopes, "namespaces", g.Namespaces, "match", g.Match, "expires", expires)
	return secret, rec.Token, nil
}

// Revoke revokes the token named name at once in this process (other
// processes within their reload interval). Revoking a revoked token does
// nothing; an unknown name wraps fs.ErrNotExist.
func (s *Service) Revoke(ctx context.Context, name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	doc, err := s.load(ctx)
	if err != nil {
		return err
	}
	i := slices.IndexFunc(doc.Tokens, func(r record) bool { return r.Name == name })
	if i < 0 {
		return fmt.Errorf("access: token %q: %w", name, fs.ErrNotExist)
	}
	if !doc.Tokens[i].Revoked.IsZero() {
		return nil
	}
	doc.Tokens[i].Revoked = time.Now().UTC().Truncate(time.Second)
	if err := s.store(ctx, doc); err != nil {
		return err
	}
	s.log.Info("token revoked", "token", name)
	return nil
}

// List returns every token (revoked and expired ones included) by name,
// as of the last Create, Revoke or Reload.
func (s *Service) List() []Token {
	return slices.Clone(s.cur.Load().tokens)
}

// Reload reads the document again and installs it when it changed. On
// failure the tokens in force stay as they are; the error is returned and
// logged (once until a reload succeeds again).
func (s *Service) Reload(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	data, err := s.state.Read(ctx)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return s.reloadFailed(err)
	}
	sum := sha256.Sum256(data)
	if sum == s.digest && s.cur.Load().byHash != nil {
		s.recovered()
		return nil
	}
	doc, err := decode(data)
	if err != nil {
		return s.reloadFailed(err)
	}
	s.install(doc, sum)
	s.recovered()
	s.log.Info("tokens loaded", "tokens", len(doc.Tokens))
	return nil
}

func (s *Service) reloadFailed(err error) error {
	if !s.failing {
		s.log.Error("cannot reload tokens; the previous tokens stay in force", "err", err)
	}
	s.failing = true
	return err
}

func (s *Service) recovered() {
	if s.failing {
		s.log.Info("tokens readable again")
	}
	s.failing = false
}

// load reads and decodes the current document for a change. A document
// that cannot be read or decoded is an error: it is never overwritten.
func (s *Service) load(ctx context.Context) (document, error) {
	data, err := s.state.Read(ctx)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return document{}, err
	}
	return decode(data)
}

// store writes doc and installs it.
func (s *Service) store(ctx context.Context, doc document) error {
	slices.SortFunc(doc.Tokens, func(a, b record) int { return cmp.Compare(a.Name, b.Name) })
	doc.Version = documentVersion
	data, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return err
	}
	data = append(data, '\n')
	if err := s.state.Write(ctx, data); err != nil {
		return err
	}
	s.install(doc, sha256.Sum256(data))
	return nil
}

// install replaces the snapshot with one built from doc (already valid).
func (s *Service) install(doc document, digest [32]byte) {
	snap := &snapshot{byHash: make(map[[32]byte]*entry, len(doc.Tokens))}
	for _, r := range doc.Tokens {
		var h [32]byte
		hex.Decode(h[:], []byte(r.SHA256)) // validated by decode
		id := newIdentity(r.Name, KindToken, r.Grant)
		id.Expires = r.Expires
		snap.byHash[h] = &entry{id: id, revoked: !r.Revoked.IsZero()}
		snap.tokens = append(snap.tokens, r.Token)
	}
	slices.SortFunc(snap.tokens, func(a, b Token) int { return cmp.Compare(a.Name, b.Name) })
	s.cur.Store(snap)
	s.digest = digest
}

// decode parses and validates a document; empty data is no tokens.
func decode(data []byte) (document, error) {
	var doc document
	if len(data) == 0 {
		return doc, nil
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return document{}, fmt.Errorf("access: token document: %w", err)
	}
	if doc.Version != documentVersion {
		return document{}, fmt.Errorf("access: token document version %d (this modproxy reads version %d)", doc.Version, documentVersion)
	}
	names := map[string]bool{}
	hashes := map[string]bool{}
	for i, r := range doc.Tokens {
		g, err := NewGrant(r.Scopes, r.Namespaces, r.Match)
		if !validName(r.Name) || err != nil {
			return document{}, fmt.Errorf("access: token document: token %d (%q): invalid name or grant: %v", i, r.Name, err)
		}
		doc.Tokens[i].Grant = g
		if len(r.SHA256) != 2*sha256.Size {
			return document{}, fmt.Errorf("access: token document: token %q: bad sha256", r.Name)
		}
		if _, err := hex.DecodeString(r.SHA256); err != nil {
			return document{}, fmt.Errorf("access: token document: token %q: bad sha256: %w", r.Name, err)
		}
		if names[r.Name] || hashes[r.SHA256] {
			return document{}, fmt.Errorf("access: token document: token %q appears twice", r.Name)
		}
		names[r.Name], hashes[r.SHA256] = true, true
	}
	return doc, nil
}

// newSecret returns a new token secret and its SHA-256.
func newSecret() (string, [32]byte) {
	b := make([]byte, secretBytes)
	rand.Read(b) // never fails (it crashes the program instead)
	secret := TokenPrefix + base64.RawURLEncoding.EncodeToString(b)
	return secret, sha256.Sum256([]byte(secret))
}
