package access

import (
	"errors"
	"reflect"
	"testing"
)

func TestNewGrant(t *testing.T) {
	for _, tc := range []struct {
		name       string
		scopes     []Scope
		namespaces []string
		match      []string
		want       Grant
		wantErr    bool
	}{
		{name: "defaults to the root namespace", scopes: []Scope{ScopeRead},
			want: Grant{Scopes: []Scope{ScopeRead}, Namespaces: []string{""}}},
		{name: "canonical scope order without duplicates", scopes: []Scope{ScopeAdmin, ScopeRead, ScopeAdmin, ScopePublish},
			want: Grant{Scopes: []Scope{ScopeRead, ScopePublish, ScopeAdmin}, Namespaces: []string{""}}},
		{name: "namespaces sorted and deduplicated", scopes: []Scope{ScopeRead}, namespaces: []string{"prod", "", "dev", "prod"},
			want: Grant{Scopes: []Scope{ScopeRead}, Namespaces: []string{"", "dev", "prod"}}},
		{name: "patterns trimmed and deduplicated in order", scopes: []Scope{ScopeRead}, match: []string{"corp.example.com/b/*", " corp.example.com/a/ ", "corp.example.com/b/*"},
			want: Grant{Scopes: []Scope{ScopeRead}, Namespaces: []string{""}, Match: []string{"corp.example.com/b/*", "corp.example.com/a"}}},
		{name: "all namespaces", scopes: []Scope{ScopeRead}, namespaces: []string{"*"},
			want: Grant{Scopes: []Scope{ScopeRead}, Namespaces: []string{"*"}}},
		{name: "no scope", wantErr: true},
		{name: "unknown scope", scopes: []Scope{"write"}, wantErr: true},
		{name: "bad namespace", scopes: []Scope{ScopeRead}, namespaces: []string{"Prod"}, wantErr: true},
		{name: "namespace with slash", scopes: []Scope{ScopeRead}, namespaces: []string{"a/b"}, wantErr: true},
		{name: "pattern with comma", scopes: []Scope{ScopeRead}, match: []string{"a.example,b.example"}, wantErr: true},
		{name: "empty pattern", scopes: []Scope{ScopeRead}, match: []string{" "}, wantErr: true},
		{name: "bad glob", scopes: []Scope{ScopeRead}, match: []string{"corp.example.com/[a"}, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := NewGrant(tc.scopes, tc.namespaces, tc.match)
			if tc.wantErr {
				if !errors.Is(err, ErrInvalidSpec) {
					t.Fatalf("NewGrant = %+v, %v; want ErrInvalidSpec", got, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("NewGrant = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestParseScope(t *testing.T) {
	for _, s := range []Scope{ScopeRead, ScopePublish, ScopeAdmin} {
		if got, err := ParseScope(string(s)); err != nil || got != s {
			t.Errorf("ParseScope(%q) = %q, %v", s, got, err)
		}
	}
	if _, err := ParseScope("Read"); !errors.Is(err, ErrInvalidSpec) {
		t.Errorf("ParseScope(Read) = %v, want ErrInvalidSpec", err)
	}
}

func TestAllowed(t *testing.T) {
	s := openService(t, Options{State: &memState{}, Private: "corp.example.com"})
	grant := func(scopes []Scope, ns, match []string) Identity {
		t.Helper()
		g, err := NewGrant(scopes, ns, match)
		if err != nil {
			t.Fatal(err)
		}
		return newIdentity("x", KindToken, g)
	}
	read := []Scope{ScopeRead}
	teamA := grant(read, nil, []string{"corp.example.com/team-a/*"})
	teamB := grant(read, nil, []string{"corp.example.com/team-b"})
	everything := grant(read, nil, nil)
	prod := grant(read, []string{"prod"}, nil)
	all := grant(read, []string{"*"}, nil)
	admin := grant([]Scope{ScopeAdmin}, []string{"prod"}, []string{"corp.example.com/team-a/*"})
	publish := grant([]Scope{ScopePublish}, nil, []string{"corp.example.com/team-a/*"})
	// Built outside the package: patterns are joined on the fly.
	outside := Identity{Name: "y", Grant: Grant{Scopes: read, Namespaces: []string{""}, Match: []string{"corp.example.com/team-b"}}}

	for _, tc := range []struct {
		name   string
		id     Identity
		scope  Scope
		ns     string
		module string
		want   bool
	}{
		{"team A reads its module", teamA, ScopeRead, "", "corp.example.com/team-a/lib", true},
		{"team A reads a public module", teamA, ScopeRead, "", "example.org/pub", true},
		{"team A does not see team B", teamA, ScopeRead, "", "corp.example.com/team-b/lib", false},
		{"team B does not see team A", teamB, ScopeRead, "", "corp.example.com/team-a/lib", false},
		{"team B reads below its prefix", teamB, ScopeRead, "", "corp.example.com/team-b/x/y", true},
		{"team B reads a public module", teamB, ScopeRead, "", "example.org/pub", true},
		{"an identity without patterns reads private modules", everything, ScopeRead, "", "corp.example.com/team-a/lib", true},
		{"a request naming no module", teamA, ScopeRead, "", "", true},
		{"root-only grant in another namespace", everything, ScopeRead, "prod", "example.org/pub", false},
		{"namespace grant in its namespace", prod, ScopeRead, "prod", "example.org/pub", true},
		{"namespace grant at the root", prod, ScopeRead, "", "example.org/pub", false},
		{"all namespaces", all, ScopeRead, "dev", "corp.example.com/team-a/lib", true},
		{"read does not imply admin", everything, ScopeAdmin, "", "", false},
		{"admin does not imply read", admin, ScopeRead, "prod", "example.org/pub", false},
		{"admin is global", admin, ScopeAdmin, "dev", "corp.example.com/team-b/lib", true},
		{"publish is checked like read", publish, ScopePublish, "", "corp.example.com/team-b/lib", false},
		{"publish within patterns", publish, ScopePublish, "", "corp.example.com/team-a/lib", true},
		{"publish does not imply read", publish, ScopeRead, "", "corp.example.com/team-a/lib", false},
		{"anonymous holds nothing", Anonymous(), ScopeRead, "", "example.org/pub", false},
		{"identity built outside, allowed", outside, ScopeRead, "", "corp.example.com/team-b/lib", true},
		{"identity built outside, refused", outside, ScopeRead, "", "corp.example.com/team-a/lib", false},
	} {
		if got := s.Allowed(tc.id, tc.scope, tc.ns, tc.module); got != tc.want {
			t.Errorf("%s: Allowed(%v, %q, %q) = %v, want %v", tc.name, tc.scope, tc.ns, tc.module, got, tc.want)
		}
	}
}

func TestIsSumDBPath(t *testing.T) {
	for p, want := range map[string]bool{
		"/sumdb/sum.example.org/supported":                    true,
		"/sumdb/sum.example.org/latest":                       true,
		"/sumdb/sum.example.org/lookup/example.org/m@v1.0.0":  true,
		"/sumdb/sum.example.org/tile/8/0/001":                 true,
		"/sumdb/sum.example.org/tile/8/0/001.p/5":             true,
		"/sumdb//supported":                                   false,
		"/sumdb/sum.example.org":                              false,
		"/sumdb/sum.example.org/":                             false,
		"/sumdb/sum.example.org/other":                        false,
		"/sumdb":                                              false,
		"/example.org/m/@v/list":                              false,
		"/corp.example.com/sumdb/x/supported":                 false,
		"sumdb/sum.example.org/supported":                     false,
		"/sumdb/sum.example.org/supportedx":                   false,
		"/sumdb/sum.example.org/lookupx/example.org/m@v1.0.0": false,
	} {
		if got := IsSumDBPath(p); got != want {
			t.Errorf("IsSumDBPath(%q) = %v, want %v", p, got, want)
		}
	}
}
