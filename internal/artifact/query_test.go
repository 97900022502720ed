package artifact

import (
	"errors"
	"testing"
)

// TestParseQueryEscapes: version queries holding percent escapes (the path
// is already decoded once by net/http) are accepted as long as no further
// decoding turns them into a path traversal or a control character.
func TestParseQueryEscapes(t *testing.T) {
	for _, tc := range []struct {
		path string
		ok   bool
	}{
		{"example.com/a/@v/feat%2fx.info", true},   // a branch name's "/" escaped: one element for every server
		{"example.com/a/@v/feat%2525x.info", true}, // decodes to "feat%25x", then "feat%x"
		{"example.com/a/@v/a..b.info", true},       // dots inside an element
		{"example.com/a/@v/v1.2%2b3.info", true},   // "+"
		{"example.com/a/@v/release 1.info", true},  // a space is a valid query character
		// The attack from the report: once decoded by net/http it is
		// "..%2f..%2fadmin%2fsecret", which a server decoding again reads
		// as "../../admin/secret".
		{"example.com/a/@v/..%2f..%2fadmin%2fsecret.info", false},
		{"example.com/a/@v/..%252f..%252fadmin.info", false}, // three decodings deep
		{"example.com/a/@v/x%2f..%2fy.info", false},
		{"example.com/a/@v/x%5c..%5cy.info", false}, // backslashes
		{"example.com/a/@v/%2e%2e.info", false},
		{"example.com/a/@v/%2e.info", false},
		{"example.com/a/@v/x%2f%2e%2fy.info", false},
		{"example.com/a/@v/x%0ay.info", false},         // newline
		{"example.com/a/@v/x%00y.info", false},         // NUL
		{"example.com/a/@v/x%7fy.info", false},         // DEL
		{"example.com/a/@v/x%250ay.info", false},       // newline two decodings deep
		{"example.com/a/@v/x%zz%2f%2e%2e.info", false}, // a lenient decoder's "x%zz/.."
		{"example.com/a/@v/x%zzy.info", true},          // "%" that starts no escape stays "%"
		{"example.com/a/@v/x%.info", true},
		{"example.com/a/@v/x%25.info", true}, // decodes to "x%"
		// Control characters and ".." in the query itself (x/mod's checks).
		{"example.com/a/@v/x\ny.info", false},
		{"example.com/a/@v/x\x7fy.info", false},
		{"example.com/a/@v/...info", false},
	} {
		r, err := Parse(tc.path)
		switch {
		case tc.ok && err != nil:
			t.Errorf("Parse(%q): %v", tc.path, err)
		case tc.ok && r.Kind != Query:
			t.Errorf("Parse(%q) kind %v, want query", tc.path, r.Kind)
		case !tc.ok && err == nil:
			t.Errorf("Parse(%q) = %+v, want an error", tc.path, r)
		case !tc.ok && !errors.Is(err, ErrInvalid):
			t.Errorf("Parse(%q): %v does not wrap ErrInvalid", tc.path, err)
		}
	}
}

func TestParseSumDBPath(t *testing.T) {
	for _, tc := range []struct {
		path     string
		mod, ver string
		ok       bool
	}{
		{path: "lookup/github.com/!burnt!sushi/toml@v1.3.2", mod: "github.com/BurntSushi/toml", ver: "v1.3.2", ok: true},
		{path: "tile/8/0/x001/234.p/5", ok: true},
		{path: "latest", ok: true},
		{path: "supported", ok: true},
		{path: "lookup/example.com/a@master"},
		{path: "lookup/../../admin@v1.0.0"},
		{path: "tile/8/0/../../x"},
		{path: "sum.example/latest"}, // a name in front: that is ParseSumDB's
		{path: ""},
	} {
		r, err := ParseSumDBPath(tc.path)
		switch {
		case tc.ok && (err != nil || r.Kind != SumDB || r.SumDBPath != tc.path || r.Module != tc.mod || r.Version != tc.ver || r.Key != ""):
			t.Errorf("ParseSumDBPath(%q) = %+v, %v", tc.path, r, err)
		case !tc.ok && !errors.Is(err, ErrInvalid):
			t.Errorf("ParseSumDBPath(%q) = %+v, %v; want an ErrInvalid error", tc.path, r, err)
		}
	}
}
