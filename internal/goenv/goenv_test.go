package goenv

import (
	"crypto/rand"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"
)

func TestFindKey(t *testing.T) {
	_, vkey, err := note.GenerateKey(rand.Reader, "sum.test.example")
	if err != nil {
		t.Fatal(err)
	}
	_, other, _ := note.GenerateKey(rand.Reader, "other.test.example")
	blob := []byte("\x00\x01garbage sum.test.example+0000zzzz+notakey " + other + "\x00more\x00" + vkey + "\x00tail")
	got, err := findKey(blob, "sum.test.example")
	if err != nil || got != vkey {
		t.Fatalf("findKey = %q, %v; want %q", got, err, vkey)
	}
	if _, err := findKey(blob, "missing.test.example"); err == nil || !strings.Contains(err.Error(), "NAME+KEY") {
		t.Fatalf("findKey(missing) = %v", err)
	}
}

func TestCommand(t *testing.T) {
	m, err := Command(t.Context(), "GOROOT", "GOVERSION")
	if err != nil {
		t.Fatal(err)
	}
	if m["GOROOT"] == "" || !strings.HasPrefix(m["GOVERSION"], "go") {
		t.Fatalf("go env = %v", m)
	}
}
