package access

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// CertMapping makes verified client certificates an identity with a
// grant, like a token.
type CertMapping struct {
	// Name is the identity's name (the same rules as a token's name).
	Name string
	// Subjects name the certificates: "dns:NAME", "uri:URI" or
	// "email:ADDRESS" (subject alternative names) or "cn:NAME" (the
	// subject's common name). DNS names compare without regard to case,
	// the others exactly. A subject belongs to one mapping only.
	Subjects []string
	Grant    Grant
}

// certIndex finds the mapping of a certificate: one map per kind of name,
// valued by the mapping's position.
type certIndex struct {
	ids                 []Identity
	dns, uri, email, cn map[string]int
}

func newCertIndex(ms []CertMapping) (certIndex, error) {
	x := certIndex{dns: map[string]int{}, uri: map[string]int{}, email: map[string]int{}, cn: map[string]int{}}
	names := map[string]bool{}
	for i, m := range ms {
		if !validName(m.Name) || reservedName(m.Name) || names[m.Name] {
			return certIndex{}, fmt.Errorf("%w: certificate mapping %d: name %q is not valid, reserved or not unique", ErrInvalidSpec, i, m.Name)
		}
		names[m.Name] = true
		g, err := NewGrant(m.Grant.Scopes, m.Grant.Namespaces, m.Grant.Match)
		if err != nil {
			return certIndex{}, fmt.Errorf("certificate mapping %q: %w", m.Name, err)
		}
		if len(m.Subjects) == 0 {
			return certIndex{}, fmt.Errorf("%w: certificate mapping %q names no subject", ErrInvalidSpec, m.Name)
		}
		for _, subj := range m.Subjects {
			kind, v, _ := strings.Cut(subj, ":")
			var into map[string]int
			switch kind {
			case "dns":
				into, v = x.dns, strings.ToLower(v)
			case "uri":
				into = x.uri
			case "email":
				into = x.email
			case "cn":
				into = x.cn
			}
			if into == nil || v == "" {
				return certIndex{}, fmt.Errorf("%w: certificate mapping %q: subject %q (want dns:, uri:, email: or cn: and a name)", ErrInvalidSpec, m.Name, subj)
			}
			if _, dup := into[v]; dup {
				return certIndex{}, fmt.Errorf("%w: certificate subject %q is in two mappings", ErrInvalidSpec, subj)
			}
			into[v] = i
		}
		x.ids = append(x.ids, newIdentity(m.Name, KindCertificate, g))
	}
	return x, nil
}

// lookup returns the identity of leaf: the first mapping (in configured
// order) that names one of the certificate's names.
func (x *certIndex) lookup(leaf *x509.Certificate) (Identity, bool) {
	best, subject := len(x.ids), ""
	try := func(m map[string]int, kind, v string) {
		if i, ok := m[v]; ok && i < best {
			best, subject = i, kind+v
		}
	}
	for _, u := range leaf.URIs {
		try(x.uri, "uri:", u.String())
	}
	for _, d := range leaf.DNSNames {
		try(x.dns, "dns:", strings.ToLower(d))
	}
	for _, e := range leaf.EmailAddresses {
		try(x.email, "email:", e)
	}
	if cn := leaf.Subject.CommonName; cn != "" {
		try(x.cn, "cn:", cn)
	}
	if best == len(x.ids) {
		return Identity{}, false
	}
	id := x.ids[best]
	id.Subject, id.Expires = subject, leaf.NotAfter
	return id, true
}

// Authenticate returns the identity of r: its token when r has an
// Authorization header (Bearer, or Basic with the token as password and any
// user name), otherwise its client certificate when the TLS handshake
// verified one (r.TLS.VerifiedChains; unverified certificates count for
// nothing). Errors are *AuthError of class ErrUnauthenticated (neither),
// ErrInvalid (malformed header) or ErrRejected (unknown, expired or
// revoked token; certificate that no mapping names).
//
// It costs one SHA-256 of the presented token and one map lookup, and
// takes no lock.
func (s *Service) Authenticate(r *http.Request) (Identity, error) {
	switch h := r.Header["Authorization"]; len(h) {
	case 0:
		return s.certificate(r)
	case 1:
		secret, err := credential(h[0])
		if err != nil {
			return Identity{}, err
		}
		return s.token(secret)
	default:
		return Identity{}, &AuthError{Class: ErrInvalid, Reason: "several Authorization headers"}
	}
}

// credential extracts the token from an Authorization header value.
func credential(h string) (string, error) {
	scheme, rest, _ := strings.Cut(h, " ")
	rest = strings.Trim(rest, " \t")
	var secret string
	switch {
	case strings.EqualFold(scheme, "Bearer"):
		if strings.ContainsAny(rest, " \t") {
			return "", &AuthError{Class: ErrInvalid, Reason: "bearer token with spaces"}
		}
		secret = rest
	case strings.EqualFold(scheme, "Basic"):
		if len(rest) > 2*maxTokenLen {
			return "", &AuthError{Class: ErrInvalid, Reason: "basic credentials too long"}
		}
		raw, err := base64.StdEncoding.DecodeString(rest)
		if err != nil {
			return "", &AuthError{Class: ErrInvalid, Reason: "basic credentials are not base64"}
		}
		var ok bool
		if _, secret, ok = strings.Cut(string(raw), ":"); !ok {
			return "", &AuthError{Class: ErrInvalid, Reason: "basic credentials without a colon"}
		}
	case scheme == "":
		return "", &AuthError{Class: ErrInvalid, Reason: "empty Authorization header"}
	default:
		return "", &AuthError{Class: ErrInvalid, Reason: "unsupported scheme (want Bearer or Basic)"}
	}
	switch {
	case secret == "":
		return "", &AuthError{Class: ErrInvalid, Reason: "empty token"}
	case len(secret) > maxTokenLen:
		return "", &AuthError{Class: ErrInvalid, Reason: "token too long"}
	}
	return secret, nil
}

func (s *Service) token(secret string) (Identity, error) {
	var buf [maxTokenLen]byte // credential bounds the length; no allocation
	e := s.cur.Load().byHash[sha256.Sum256(buf[:copy(buf[:], secret)])]
	switch {
	case e == nil && !strings.HasPrefix(secret, TokenPrefix):
		return Identity{}, &AuthError{Class: ErrRejected, Reason: "not a modproxy token"}
	case e == nil:
		return Identity{}, &AuthError{Class: ErrRejected, Reason: "unknown token"}
	case e.revoked:
		return Identity{}, &AuthError{Class: ErrRejected, Reason: "token revoked", Name: e.id.Name}
	case !e.id.Expires.IsZero() && !time.Now().Before(e.id.Expires):
		return Identity{}, &AuthError{Class: ErrRejected, Reason: "token expired", Name: e.id.Name}
	}
	return e.id, nil
}

func (s *Service) certificate(r *http.Request) (Identity, error) {
	if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 || len(r.TLS.VerifiedChains[0]) == 0 {
		return Identity{}, &AuthError{Class: ErrUnauthenticated, Reason: "no token and no verified client certificate"}
	}
	leaf := r.TLS.VerifiedChains[0][0]
	id, ok := s.certs.lookup(leaf)
	if !ok {
		return Identity{}, &AuthError{Class: ErrRejected, Reason: "no mapping for the client certificate", Name: "cn:" + leaf.Subject.CommonName}
	}
	return id, nil
}
