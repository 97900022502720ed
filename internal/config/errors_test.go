package config

import (
	"errors"
	"strings"
	"testing"
)

// TestEveryUnknownKey: a file with several unknown keys reports each of
// them with its line, not only the first.
func TestEveryUnknownKey(t *testing.T) {
	p := writeFile(t, "listen = \"127.0.0.1:3000\"\nbogus = 1\n[gc]\npinz = []\n[cache]\nttl = \"1m\"\nfoo = \"x\"\n")
	c := Default()
	err := c.LoadFile(p)
	if err == nil {
		t.Fatal("LoadFile accepted unknown keys")
	}
	var ce *Error
	if !errors.As(err, &ce) || ce.Key != "bogus" || ce.Line != 2 {
		t.Errorf("first error %+v, want key bogus on line 2", ce)
	}
	want := []string{
		"config (file " + p + ", line 2): bogus: unknown key",
		"config (file " + p + ", line 4): gc.pinz: unknown key",
		"config (file " + p + ", line 7): cache.foo: unknown key",
	}
	if got := strings.Split(err.Error(), "\n"); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("error text:\n%s\nwant:\n%s", err, strings.Join(want, "\n"))
	}
}

// TestInvalidTOMLNamesTheLine: a syntax error names the file, line and
// column, without an empty key.
func TestInvalidTOMLNamesTheLine(t *testing.T) {
	p := writeFile(t, "listen = \"127.0.0.1:3000\"\n\n[cache\nttl = \"1m\"\n")
	c := Default()
	err := c.LoadFile(p)
	var ce *Error
	if !errors.As(err, &ce) || ce.Line != 3 || ce.Column == 0 {
		t.Fatalf("LoadFile = %v (%+v), want an *Error on line 3", err, ce)
	}
	if want := "config (file " + p + ", line 3 column 7): expected ']' to close table name"; err.Error() != want {
		t.Errorf("error text %q, want %q", err, want)
	}
	// A value of the wrong type names its key too.
	p = writeFile(t, "[cache]\nttl = \"soon\"\n")
	c = Default()
	if err := c.LoadFile(p); !errors.As(err, &ce) || ce.Key != "cache.ttl" || ce.Line != 2 {
		t.Errorf("bad value: %v, want key cache.ttl on line 2", err)
	}
}

// TestPinsAreChecked: gc.pins entries are module-pattern[@version], with
// a valid pattern and a canonical version.
func TestPinsAreChecked(t *testing.T) {
	for _, p := range []string{
		"example.com/a", "example.com/a@v1.2.3", "example.com/*", "*.corp.example.com/lib@v0.0.0-20240102030405-abcdef123456",
		"example.com/legacy@v3.0.0+incompatible", "github.com/Upper/Case", "example.com/a@v1.2.3-rc.1",
	} {
		if err := CheckPin(p); err != nil {
			t.Errorf("CheckPin(%q) = %v, want nil", p, err)
		}
	}
	for _, p := range []string{
		"", "@v1.0.0", "example.com/a@", "example.com/a@1.2.3", "example.com/a@v1.2", "example.com/a@latest",
		"example.com/[a", "example.com//a", "example.com/a,example.com/b", "example.com/a b",
		"/example.com/a", "example.com/a/", "example.com/a@v1.0.0@v2.0.0", "exa\x00mple.com",
	} {
		if err := CheckPin(p); err == nil {
			t.Errorf("CheckPin(%q) = nil, want an error", p)
		}
	}
	c := Default()
	c.Upstream = "https://proxy.example"
	c.GC.Pins = []string{"example.com/a@v1", "example.com/b"}
	var ce *Error
	if err := c.Validate(); !errors.As(err, &ce) || ce.Key != "gc.pins" || !strings.Contains(err.Error(), "example.com/a@v1") {
		t.Errorf("Validate = %v, want a gc.pins error naming the pin", err)
	}
}
