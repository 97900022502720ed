package toolchain

import (
	"errors"
	"fmt"
	iofs "io/fs"

	"github.com/modproxy/modproxy/internal/errclass"
)

var (
	errShuttingDown = errors.New("toolchain mirror: shutting down, no new fetches")
	errPanicked     = errors.New("toolchain mirror: the fetch failed unexpectedly (see the log)")
	// errSlotWaitEnded: the caller that waited for a fetch slot on behalf
	// of every caller of an archive gave up; the others start over.
	errSlotWaitEnded = errors.New("toolchain mirror: gave up waiting for a fetch slot")
)

// NotFoundError is a file the mirror does not serve: not a distribution
// file name, not named by the site's listing, or not stored in cache-only
// mode. Its class is errclass.NotExist.
type NotFoundError struct {
	File string
	Msg  string
}

func (e *NotFoundError) Error() string { return e.File + ": " + e.Msg }
func (e *NotFoundError) Unwrap() error { return iofs.ErrNotExist }

// Class implements errclass.Classer.
func (e *NotFoundError) Class() errclass.Class { return errclass.NotExist }

// MismatchError is an archive whose SHA-256 differs from the one the
// site's listing gives for it. It was not stored. Its class is
// errclass.Mismatch.
type MismatchError struct {
	File   string
	Source string // the site, without credentials
	Want   string // the listing's SHA-256 (hex)
	Got    string // the SHA-256 of what the site sent
}

func (e *MismatchError) Error() string {
	return fmt.Sprintf("%s from %s: sha256 %s does not match the listing's sha256 %s; not stored", e.File, e.Source, e.Got, e.Want)
}

// Class implements errclass.Classer.
func (e *MismatchError) Class() errclass.Class { return errclass.Mismatch }

// InvalidError is an answer of the site that failed validation (a listing
// that is not the site's JSON, a body shorter than its Content-Length, a
// listing entry without a usable SHA-256). Nothing was stored. Its class
// is errclass.Integrity.
type InvalidError struct {
	What   string // the file name or listing
	Source string
	Err    error
}

func (e *InvalidError) Error() string {
	return fmt.Sprintf("%s from %s: invalid: %v", e.What, e.Source, e.Err)
}
func (e *InvalidError) Unwrap() error { return e.Err }

// Class implements errclass.Classer.
func (e *InvalidError) Class() errclass.Class { return errclass.Integrity }

// TooLargeError is an archive over Options.MaxSize (by the listing's size,
// its Content-Length or its body). It is refused by configuration: class
// errclass.Denied.
type TooLargeError struct {
	File  string
	Size  int64 // as far as known
	Limit int64
}

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("%s: %d bytes or more exceed the limit of %d bytes (dl.max_size)", e.File, e.Size, e.Limit)
}

// Class implements errclass.Classer.
func (e *TooLargeError) Class() errclass.Class { return errclass.Denied }
