package explain

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzExplain checks that Explain never panics and that its findings are
// always well-formed, whatever the input.
func FuzzExplain(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "samples", "*.txt"))
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, e := range Catalog() {
		f.Add([]byte(e.Example))
	}
	f.Add([]byte("\x00\xff\r\n\t\tSECURITY ERROR\n!!@v/.zip: 404 Not Found\nreading http://[::1/@v/list: 410 Gone"))
	f.Add([]byte("go: !a@v1: Lock /pkg/mod/cache/download/!/@v/!.lock: no locks available"))

	x := New()
	ids := map[string]bool{}
	for _, e := range Catalog() {
		ids[e.ID] = true
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		fs, err := x.Explain(bytes.NewReader(in))
		if err != nil {
			t.Fatal(err)
		}
		lines := bytes.Count(in, []byte("\n")) + 1
		prev := 0
		for _, fd := range fs {
			if !ids[fd.ID] {
				t.Fatalf("unknown id %q", fd.ID)
			}
			if fd.Line <= prev || fd.Line > lines {
				t.Fatalf("bad line %d (previous %d, %d lines)", fd.Line, prev, lines)
			}
			prev = fd.Line
			if fd.Count < 1 || fd.Text == "" || len(fd.Text) > MaxTextBytes+8 || !utf8.ValidString(fd.Text) {
				t.Fatalf("bad finding %+v", fd)
			}
			for _, c := range fd.Commands {
				if strings.ContainsAny(c, "\n\r") {
					t.Fatalf("multi-line command %q", c)
				}
			}
		}
		if err := WriteText(new(bytes.Buffer), fs); err != nil {
			t.Fatal(err)
		}
	})
}
