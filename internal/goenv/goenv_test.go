package goenv

import (
	"strings"
	"testing"
)

func TestCommand(t *testing.T) {
	m, err := Command(t.Context(), "GOROOT", "GOVERSION")
	if err != nil {
		t.Fatal(err)
	}
	if m["GOROOT"] == "" || !strings.HasPrefix(m["GOVERSION"], "go") {
		t.Fatalf("go env = %v", m)
	}
}
