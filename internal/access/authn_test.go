package access

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

func newLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func request(t *testing.T, header ...string) *http.Request {
	t.Helper()
	r, err := http.NewRequest("GET", "https://proxy.example/example.org/m/@v/list", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range header {
		r.Header.Add("Authorization", h)
	}
	return r
}

func basic(user, password string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+password))
}

func TestAuthenticateHeaders(t *testing.T) {
	s := openService(t, Options{State: &memState{}})
	secret := create(t, s, "ci", readGrant(t), time.Time{})
	for _, tc := range []struct {
		name    string
		headers []string
		want    error // nil: accepted as ci
	}{
		{"bearer", []string{"Bearer " + secret}, nil},
		{"bearer, scheme in lower case", []string{"bearer " + secret}, nil},
		{"bearer with surrounding spaces", []string{"Bearer   " + secret + " "}, nil},
		{"basic with the token as password", []string{basic("ci", secret)}, nil},
		{"basic with any user name", []string{basic("someone-else", secret)}, nil},
		{"basic with an empty user name", []string{basic("", secret)}, nil},
		{"no header", nil, ErrUnauthenticated},
		{"empty header", []string{""}, ErrInvalid},
		{"scheme only", []string{"Bearer"}, ErrInvalid},
		{"scheme and spaces", []string{"Bearer   "}, ErrInvalid},
		{"unsupported scheme", []string{"Digest " + secret}, ErrInvalid},
		{"token with inner spaces", []string{"Bearer mp_a b"}, ErrInvalid},
		{"several headers", []string{"Bearer " + secret, "Bearer " + secret}, ErrInvalid},
		{"basic not base64", []string{"Basic %%%"}, ErrInvalid},
		{"basic without colon", []string{"Basic " + base64.StdEncoding.EncodeToString([]byte(secret))}, ErrInvalid},
		{"basic with an empty password", []string{basic("ci", "")}, ErrInvalid},
		{"oversized token", []string{"Bearer " + TokenPrefix + strings.Repeat("a", maxTokenLen)}, ErrInvalid},
		{"oversized basic", []string{"Basic " + strings.Repeat("QUFB", maxTokenLen)}, ErrInvalid},
		{"unknown token", []string{"Bearer " + TokenPrefix + strings.Repeat("A", 43)}, ErrRejected},
		{"not a modproxy token", []string{"Bearer ghp_something"}, ErrRejected},
		{"token with a changed character", []string{"Bearer " + secret[:len(secret)-1] + flip(secret[len(secret)-1])}, ErrRejected},
		{"token prefix only", []string{"Bearer " + TokenPrefix}, ErrRejected},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id, err := s.Authenticate(request(t, tc.headers...))
			if tc.want == nil {
				if err != nil || id.Name != "ci" {
					t.Fatalf("Authenticate = %v, %v; want ci", id, err)
				}
				return
			}
			var ae *AuthError
			if !errors.Is(err, tc.want) || !errors.As(err, &ae) {
				t.Fatalf("Authenticate = %v, %v; want an *AuthError of class %v", id, err, tc.want)
			}
			if id.Name != "" {
				t.Errorf("failed Authenticate returned identity %+v", id)
			}
		})
	}
}

func flip(c byte) string {
	if c == 'A' {
		return "B"
	}
	return "A"
}

func TestExpiry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := openService(t, Options{State: &memState{}})
		secret := create(t, s, "ci", readGrant(t), time.Now().Add(time.Hour))
		if _, err := s.Authenticate(bearer(secret)); err != nil {
			t.Fatalf("before expiry: %v", err)
		}
		time.Sleep(time.Hour)
		_, err := s.Authenticate(bearer(secret))
		var ae *AuthError
		if !errors.As(err, &ae) || ae.Class != ErrRejected || ae.Reason != "token expired" || ae.Name != "ci" {
			t.Fatalf("at expiry: %v, want rejected as expired", err)
		}
		if got := s.List()[0].Status(time.Now()); got != "expired" {
			t.Errorf("status %q, want expired", got)
		}
		// An expired token keeps its name until it is revoked.
		if _, _, err := s.Create(context.Background(), "ci", readGrant(t), time.Time{}); err == nil {
			t.Error("Create over an expired, unrevoked token succeeded")
		}
	})
}

func leaf(cn string, dns []string, uris []string, emails []string) *x509.Certificate {
	c := &x509.Certificate{Subject: pkix.Name{CommonName: cn}, DNSNames: dns, EmailAddresses: emails, NotAfter: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	for _, u := range uris {
		pu, err := url.Parse(u)
		if err != nil {
			panic(err)
		}
		c.URIs = append(c.URIs, pu)
	}
	return c
}

func withCert(r *http.Request, c *x509.Certificate, verified bool) *http.Request {
	r.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{c}}
	if verified {
		r.TLS.VerifiedChains = [][]*x509.Certificate{{c, {Subject: pkix.Name{CommonName: "test CA"}}}}
	}
	return r
}

func TestCertificateMappings(t *testing.T) {
	mappings := []CertMapping{
		{Name: "ci", Subjects: []string{"dns:CI.corp.example.com", "uri:spiffe://corp.example.com/ci"}, Grant: readGrant(t, "corp.example.com/team-a/*")},
		{Name: "ops", Subjects: []string{"email:ops@corp.example.com", "cn:ops-laptop"}, Grant: Grant{Scopes: []Scope{ScopeAdmin}}},
	}
	s := openService(t, Options{State: &memState{}, Certificates: mappings, Private: "corp.example.com"})
	secret := create(t, s, "token-user", readGrant(t), time.Time{})

	for _, tc := range []struct {
		name        string
		cert        *x509.Certificate
		verified    bool
		header      string
		wantName    string
		wantSubject string
		wantErr     error
	}{
		{"DNS name, case-insensitive", leaf("x", []string{"ci.CORP.example.com"}, nil, nil), true, "", "ci", "dns:ci.corp.example.com", nil},
		{"URI", leaf("", nil, []string{"spiffe://corp.example.com/ci"}, nil), true, "", "ci", "uri:spiffe://corp.example.com/ci", nil},
		{"email", leaf("", nil, nil, []string{"ops@corp.example.com"}), true, "", "ops", "email:ops@corp.example.com", nil},
		{"common name", leaf("ops-laptop", nil, nil, nil), true, "", "ops", "cn:ops-laptop", nil},
		{"first mapping wins", leaf("ops-laptop", []string{"ci.corp.example.com"}, nil, nil), true, "", "ci", "dns:ci.corp.example.com", nil},
		{"no mapping", leaf("stranger", []string{"other.example.com"}, nil, nil), true, "", "", "", ErrRejected},
		{"common name is not a DNS name", leaf("ci.corp.example.com", nil, nil, nil), true, "", "", "", ErrRejected},
		{"unverified certificate counts for nothing", leaf("ops-laptop", nil, nil, nil), false, "", "", "", ErrUnauthenticated},
		{"a token wins over a certificate", leaf("ops-laptop", nil, nil, nil), true, "Bearer " + secret, "token-user", "", nil},
		{"a bad token is not rescued by a certificate", leaf("ops-laptop", nil, nil, nil), true, "Bearer nope", "", "", ErrRejected},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := request(t)
			if tc.header != "" {
				r.Header.Set("Authorization", tc.header)
			}
			id, err := s.Authenticate(withCert(r, tc.cert, tc.verified))
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("Authenticate = %+v, %v; want %v", id, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if id.Name != tc.wantName || id.Subject != tc.wantSubject {
				t.Fatalf("identity %q (%q), want %q (%q)", id.Name, id.Subject, tc.wantName, tc.wantSubject)
			}
			if id.Kind == KindCertificate && !id.Expires.Equal(tc.cert.NotAfter) {
				t.Errorf("certificate identity expires %v, want the certificate's %v", id.Expires, tc.cert.NotAfter)
			}
		})
	}

	id, err := s.Authenticate(withCert(request(t), leaf("", []string{"ci.corp.example.com"}, nil, nil), true))
	if err != nil {
		t.Fatal(err)
	}
	if !s.Allowed(id, ScopeRead, "", "corp.example.com/team-a/lib") || s.Allowed(id, ScopeRead, "", "corp.example.com/team-b/lib") {
		t.Errorf("certificate identity's grant not applied: %+v", id.Grant)
	}
}

func TestCertificateMappingValidation(t *testing.T) {
	g := Grant{Scopes: []Scope{ScopeRead}}
	for name, ms := range map[string][]CertMapping{
		"bad name":            {{Name: "a b", Subjects: []string{"cn:x"}, Grant: g}},
		"duplicate name":      {{Name: "a", Subjects: []string{"cn:x"}, Grant: g}, {Name: "a", Subjects: []string{"cn:y"}, Grant: g}},
		"no subject":          {{Name: "a", Grant: g}},
		"unknown kind":        {{Name: "a", Subjects: []string{"ip:10.0.0.1"}, Grant: g}},
		"no kind":             {{Name: "a", Subjects: []string{"runner"}, Grant: g}},
		"empty value":         {{Name: "a", Subjects: []string{"dns:"}, Grant: g}},
		"subject twice":       {{Name: "a", Subjects: []string{"dns:x.example"}, Grant: g}, {Name: "b", Subjects: []string{"dns:X.example"}, Grant: g}},
		"grant without scope": {{Name: "a", Subjects: []string{"cn:x"}}},
	} {
		if _, err := Open(context.Background(), Options{State: &memState{}, Certificates: ms}); !errors.Is(err, ErrInvalidSpec) {
			t.Errorf("%s: Open = %v, want ErrInvalidSpec", name, err)
		}
	}
}

// TestSecretsNeverLogged runs every operation that sees a secret with a
// debug logger, logs what the HTTP layer would log (the identity, the
// error), and looks for the secret in all of it.
func TestSecretsNeverLogged(t *testing.T) {
	ctx := context.Background()
	var logs bytes.Buffer
	log := newLogger(&logs)
	st := &memState{}
	s := openService(t, Options{State: st, Logger: log})
	secret := create(t, s, "ci", readGrant(t), time.Now().Add(time.Hour))
	for _, h := range []string{"Bearer " + secret, basic("me", secret), "Bearer " + secret + "x", "Digest " + secret, basic(secret, "")} {
		id, err := s.Authenticate(request(t, h))
		log.Info("request", "identity", id, "err", err)
		log.Info("request", slog.Any("identity", id), slog.String("text", fmt.Sprintf("%v %+v %s", id, id, err)))
	}
	if err := s.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Revoke(ctx, "ci"); err != nil {
		t.Fatal(err)
	}
	id, err := s.Authenticate(bearer(secret))
	log.Info("request", "identity", id, "err", err, "tokens", s.List())
	if logs.Len() == 0 {
		t.Fatal("nothing logged")
	}
	body := secret[len(TokenPrefix):]
	if strings.Contains(logs.String(), body) {
		t.Fatalf("a token secret reached the log:\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), `"identity":"ci"`) {
		t.Errorf("the identity is not logged by its name:\n%s", logs.String())
	}
}
