package checksum

import (
	"errors"

	"golang.org/x/mod/sumdb"

	"github.com/modproxy/modproxy/internal/errclass"
)

// Class implements errclass.Classer: a hash that differs from the
// database's is errclass.Mismatch.
func (e *MismatchError) Class() errclass.Class { return errclass.Mismatch }

// Class implements errclass.Classer: a database that does not know the
// version, or that misbehaved (sumdb.ErrSecurity), is an integrity
// failure (the content cannot be vouched for and must not be admitted); a
// database that could not be asked is unavailable. (A full local store
// behind the failure, kept as Cause, makes errclass.Of answer StoreFull
// whatever this says.)
func (e *LookupError) Class() errclass.Class {
	if e.NotFound || errors.Is(e.Err, sumdb.ErrSecurity) {
		return errclass.Integrity
	}
	return errclass.Unavailable
}
