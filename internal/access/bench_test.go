package access

import (
	"encoding/hex"
	"fmt"
	"testing"
	"time"
)

// BenchmarkAuthenticate measures the per-request cost of a token check
// among 10 000 tokens: one SHA-256 and one map lookup.
func BenchmarkAuthenticate(b *testing.B) {
	s, err := Open(b.Context(), Options{State: &memState{}})
	if err != nil {
		b.Fatal(err)
	}
	g, err := NewGrant([]Scope{ScopeRead}, nil, []string{"corp.example.com/team-a/*"})
	if err != nil {
		b.Fatal(err)
	}
	var doc document
	var secret string
	for i := range 10000 {
		var sum [32]byte
		secret, sum = newSecret()
		doc.Tokens = append(doc.Tokens, record{Token: Token{Name: fmt.Sprintf("t%d", i), Grant: g, Created: time.Now()}, SHA256: hex.EncodeToString(sum[:])})
	}
	s.install(doc, [32]byte{})
	for _, tc := range []struct{ name, header string }{
		{"bearer", "Bearer " + secret},
		{"basic", basic("ci", secret)},
	} {
		r := bearer("")
		r.Header.Set("Authorization", tc.header)
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				id, err := s.Authenticate(r)
				if err != nil || !s.Allowed(id, ScopeRead, "", "corp.example.com/team-a/lib") {
					b.Fatal(id, err)
				}
			}
		})
	}
}
