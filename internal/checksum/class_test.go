package checksum

import (
	"errors"
	"fmt"
	"testing"

	"golang.org/x/mod/sumdb"

	"github.com/modproxy/modproxy/internal/errclass"
)

// TestErrorClass: verification failures that mean the content cannot be
// admitted are integrity failures; an unreachable database is unavailable.
func TestErrorClass(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want errclass.Class
	}{
		{"mismatch", &MismatchError{Module: "m", Version: "v1.0.0"}, errclass.Mismatch},
		{"unknown version", &LookupError{NotFound: true, Err: errors.New("not found")}, errclass.Integrity},
		{"misbehaving database", &LookupError{Err: fmt.Errorf("tree forked: %w", sumdb.ErrSecurity)}, errclass.Integrity},
		{"unreachable", &LookupError{Err: errors.New("connection refused")}, errclass.Unavailable},
	} {
		if got := errclass.Of(fmt.Errorf("admit: %w", tc.err)); got != tc.want {
			t.Errorf("%s: class %v, want %v", tc.name, got, tc.want)
		}
	}
}
