package artifact

import (
	"errors"
	"strings"
	"testing"

	"github.com/modproxy/modproxy/internal/storage"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		path    string
		kind    Kind
		mod     string
		ver     string
		immut   bool
		wantErr bool
	}{
		{path: "example.com/a/@v/list", kind: List, mod: "example.com/a"},
		{path: "example.com/a/@latest", kind: Latest, mod: "example.com/a"},
		{path: "example.com/a/@v/v1.2.3.info", kind: Info, mod: "example.com/a", ver: "v1.2.3", immut: true},
		{path: "example.com/a/@v/v1.2.3.mod", kind: Mod, mod: "example.com/a", ver: "v1.2.3", immut: true},
		{path: "example.com/a/@v/v1.2.3.zip", kind: Zip, mod: "example.com/a", ver: "v1.2.3", immut: true},
		{path: "github.com/!burnt!sushi/toml/@v/v1.3.2.zip", kind: Zip, mod: "github.com/BurntSushi/toml", ver: "v1.3.2", immut: true},
		{path: "example.com/a/@v/v2.0.0+incompatible.mod", kind: Mod, mod: "example.com/a", ver: "v2.0.0+incompatible", immut: true},
		{path: "example.com/a/v2/@v/v2.1.0.zip", kind: Zip, mod: "example.com/a/v2", ver: "v2.1.0", immut: true},
		{path: "example.com/a/@v/v0.0.0-20240101120000-abcdefabcdef.info", kind: Info, mod: "example.com/a", ver: "v0.0.0-20240101120000-abcdefabcdef", immut: true},
		{path: "example.com/a/@v/master.info", kind: Query, mod: "example.com/a", ver: "master"},
		{path: "example.com/a/@v/abcdef1.info", kind: Query, mod: "example.com/a", ver: "abcdef1"},
		{path: "example.com/a/@v/v1.2.info", kind: Query, mod: "example.com/a", ver: "v1.2"},
		{path: "example.com/a/@v/v1.0.0-!r!c1.info", kind: Info, mod: "example.com/a", ver: "v1.0.0-RC1", immut: true},
		{path: "golang.org/toolchain/@v/v0.0.1-go1.21.0.linux-amd64.zip", kind: Zip, mod: "golang.org/toolchain", ver: "v0.0.1-go1.21.0.linux-amd64", immut: true},
		{path: "gopkg.in/yaml.v3/@v/v3.0.1.mod", kind: Mod, mod: "gopkg.in/yaml.v3", ver: "v3.0.1", immut: true},
		// Invalid.
		{path: "example.com/a/@v/v1.2.mod", wantErr: true},            // query for .mod
		{path: "example.com/a/@v/master.zip", wantErr: true},          // query for .zip
		{path: "example.com/a/v2/@v/v1.0.0.zip", wantErr: true},       // major mismatch
		{path: "example.com/a/@v/v2.0.0.zip", wantErr: true},          // v2 without suffix or +incompatible
		{path: "github.com/BurntSushi/toml/@v/list", wantErr: true},   // upper case not escaped
		{path: "example.com/../etc/@v/list", wantErr: true},           // traversal
		{path: "../../etc/passwd", wantErr: true},                     //
		{path: "/etc/passwd/@v/list", wantErr: true},                  // absolute
		{path: "example.com/a\\b/@v/list", wantErr: true},             // backslash
		{path: "example.com/a/@v/v1.0.0.txt", wantErr: true},          // unknown ext
		{path: "example.com/a/@v/", wantErr: true},                    //
		{path: "example.com/a/@v/.info", wantErr: true},               // empty version
		{path: "example.com/a/@v/..info", wantErr: true},              //
		{path: "example.com/a/@v/latest.info", wantErr: true},         // go-command-only query
		{path: "example.com/a/@v/x\x00.info", wantErr: true},          // NUL
		{path: "example.com/a", wantErr: true},                        //
		{path: "@v/list", wantErr: true},                              //
		{path: strings.Repeat("a", 2000) + "/@v/list", wantErr: true}, // overlong
	} {
		r, err := Parse(tc.path)
		if tc.wantErr {
			if err == nil {
				t.Errorf("Parse(%q) = %+v, want error", tc.path, r)
			} else if !errors.Is(err, ErrInvalid) {
				t.Errorf("Parse(%q) error %v does not wrap ErrInvalid", tc.path, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("Parse(%q): %v", tc.path, err)
			continue
		}
		if r.Kind != tc.kind || r.Module != tc.mod || r.Version != tc.ver || r.Key != tc.path || r.Immutable() != tc.immut {
			t.Errorf("Parse(%q) = %+v (immutable %v), want kind %v mod %q ver %q immutable %v", tc.path, r, r.Immutable(), tc.kind, tc.mod, tc.ver, tc.immut)
		}
	}
}

func TestParseSumDB(t *testing.T) {
	for _, tc := range []struct {
		path    string
		key     string
		immut   bool
		wantErr bool
	}{
		{path: "sum.example.com/supported"},
		{path: "sum.example.com/latest", key: "sumdb/sum.example.com/latest"},
		{path: "sum.example.com/lookup/github.com/!burnt!sushi/toml@v1.3.2", key: "sumdb/sum.example.com/lookup/github.com/!burnt!sushi/toml@v1.3.2", immut: true},
		{path: "sum.example.com/tile/8/0/001", key: "sumdb/sum.example.com/tile/8/0/001", immut: true},
		{path: "sum.example.com/tile/8/1/x001/234.p/5", key: "sumdb/sum.example.com/tile/8/1/x001/234.p/5"},
		{path: "sum.example.com/tile/8/data/000", key: "sumdb/sum.example.com/tile/8/data/000", immut: true},
		{path: "sum.example.com/lookup/example.com/a@master", wantErr: true},
		{path: "sum.example.com/lookup/../../x@v1.0.0", wantErr: true},
		{path: "sum.example.com/tile/8/0/../../x", wantErr: true},
		{path: "sum.example.com/tile/8/0/1", wantErr: true},
		{path: "../x/latest", wantErr: true},
		{path: "sum.example.com/other", wantErr: true},
		{path: "sum.example.com", wantErr: true},
	} {
		r, err := ParseSumDB(tc.path)
		if tc.wantErr {
			if err == nil {
				t.Errorf("ParseSumDB(%q) = %+v, want error", tc.path, r)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseSumDB(%q): %v", tc.path, err)
			continue
		}
		if r.Key != tc.key || r.Immutable() != tc.immut || r.SumDBName != "sum.example.com" {
			t.Errorf("ParseSumDB(%q) = %+v immutable %v, want key %q immutable %v", tc.path, r, r.Immutable(), tc.key, tc.immut)
		}
	}
}

// FuzzParse checks that no path panics the parsers and that every accepted
// path yields a key that is safe as a relative file path.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"example.com/a/@v/list", "github.com/!burnt!sushi/toml/@v/v1.3.2.zip", "example.com/a/@latest",
		"example.com/a/@v/master.info", "../x/@v/list", "a/@v/v1.0.0+incompatible.mod",
		"sum.example.com/lookup/example.com/a@v1.0.0", "sum.example.com/tile/8/0/x001/002.p/3",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		for _, parse := range []func(string) (Request, error){Parse, ParseSumDB} {
			r, err := parse(p)
			if err != nil {
				if !errors.Is(err, ErrInvalid) {
					t.Fatalf("error %v does not wrap ErrInvalid", err)
				}
				continue
			}
			if r.Key == "" {
				continue // "supported"
			}
			if err := storage.CheckKey(r.Key); err != nil {
				t.Fatalf("accepted %q with unsafe key %q", p, r.Key)
			}
		}
	})
}
