package modrefs

import (
	"errors"
	"slices"
	"testing"
)

func TestRetractions(t *testing.T) {
	data := []byte("module example.com/m\n\ngo 1.21\n\nunknownverb x\n\nretract (\n\tv1.0.0 // leaks credentials\n\t[v1.1.0, v1.1.5]\n)\n")
	got, err := Retractions("go.mod", data)
	if err != nil {
		t.Fatal(err)
	}
	want := []Retraction{{Low: "v1.0.0", High: "v1.0.0", Rationale: "leaks credentials"}, {Low: "v1.1.0", High: "v1.1.5"}}
	if !slices.Equal(got, want) {
		t.Errorf("Retractions = %+v, want %+v", got, want)
	}
	_, err = Retractions("go.mod", []byte("module\n"))
	var fe *FileError
	if !errors.As(err, &fe) || fe.File != "go.mod" {
		t.Errorf("a bad go.mod: %v, want a *FileError", err)
	}
}
