// Package errclass is the domain's one classification of errors: what a
// failure means for whoever asked (the thing does not exist, the request
// is malformed, policy refuses it, a dependency is unavailable, content
// failed an integrity check), decided where the error is made and mapped
// to a protocol (HTTP statuses, exit codes) only at the edge.
//
// A domain error type reports its class with a Class method (see Classer);
// Of finds it through wrapping. Errors without one are classified by the
// standard library's sentinels. The package is a leaf: it imports nothing
// of modproxy, so that the lowest packages can declare their classes.
package errclass

import (
	"context"
	"errors"
	iofs "io/fs"
	"strconv"
)

// Class is an error class. A few classes are variants of another (Gone of
// Denied, Timeout and StoreFull of Unavailable, Mismatch of Integrity):
// Kind returns the class they refine. The zero value is Internal.
type Class uint8

// The classes.
const (
	// Internal: not classified; a bug or an unexpected local failure
	// (e.g. of the store). Its text is not for clients.
	Internal Class = iota
	// NotExist: the module, version or file does not exist (upstream
	// 404/410, a not-found remembered by the negative cache, a miss in
	// cache-only mode). Any error wrapping fs.ErrNotExist.
	NotExist
	// Invalid: the request itself is malformed (a module path or version
	// that x/mod rejects, a checksum database path that does not parse,
	// an upstream's 400).
	Invalid
	// Denied: refused by policy, ours (a deny rule, the allow list) or an
	// upstream's (403); asking again elsewhere is pointless.
	Denied
	// Gone is Denied, refused for good here, in a way that lets a client
	// move on to the next proxy of its "," list.
	Gone
	// Unavailable: a dependency (an upstream, the checksum database, a
	// replica) failed; retrying later may succeed (see Retry).
	Unavailable
	// Timeout is Unavailable because time ran out (a deadline, an
	// upstream that did not answer in time).
	Timeout
	// Integrity: content failed validation or verification (an invalid
	// answer, a version the checksum database does not know, a
	// misbehaving database). It is never stored.
	Integrity
	// Mismatch is Integrity: the content's hash differs from the one the
	// checksum database records — a possible attack.
	Mismatch
	// StoreFull is Unavailable because local storage is full (no space
	// left on the device, or a disk quota exceeded): an answer could not
	// be stored. It is never the fault of an upstream; it heals by itself
	// when space returns.
	StoreFull
	// Unauthenticated: the request carries no acceptable identity (no
	// credentials, malformed ones, or an unknown, expired or revoked
	// token) where one is required.
	Unauthenticated
)

// NumClasses is the number of classes; they are 0 .. NumClasses-1.
const NumClasses = int(Unauthenticated) + 1

var names = [NumClasses]string{
	Internal: "internal", NotExist: "not-exist", Invalid: "invalid", Denied: "denied", Gone: "gone",
	Unavailable: "unavailable", Timeout: "timeout", Integrity: "integrity", Mismatch: "mismatch",
	StoreFull:       "store-full",
	Unauthenticated: "unauthenticated",
}

func (c Class) String() string {
	if int(c) < NumClasses {
		return names[c]
	}
	return "Class(" + strconv.Itoa(int(c)) + ")"
}

// Kind returns the class a variant refines (Denied for Gone, Unavailable
// for Timeout and StoreFull, Integrity for Mismatch), and c itself
// otherwise.
func (c Class) Kind() Class {
	switch c {
	case Gone:
		return Denied
	case Timeout, StoreFull:
		return Unavailable
	case Mismatch:
		return Integrity
	}
	return c
}

// Retry is the retry hint: it reports whether asking again later may
// succeed (the Unavailable classes).
func (c Class) Retry() bool { return c.Kind() == Unavailable }

// Classer is implemented by errors that know their class.
type Classer interface {
	error
	Class() Class
}

// Of returns the class of err. A full local store (StoreFull: see
// IsStoreFull) anywhere in its tree decides, whatever wraps it: a full
// disk is always a local condition, never the fault of what was asked.
// Otherwise it is the class of the outermost error in the tree that
// implements Classer (found with errors.As); otherwise NotExist for
// fs.ErrNotExist, Timeout for context.DeadlineExceeded, and Internal for
// anything else (context.Canceled included: whether the client went away
// is the edge's knowledge). Of(nil) is Internal.
func Of(err error) Class {
	var c Classer
	switch {
	case IsStoreFull(err):
		return StoreFull
	case errors.As(err, &c):
		return c.Class()
	case errors.Is(err, iofs.ErrNotExist):
		return NotExist
	case errors.Is(err, context.DeadlineExceeded):
		return Timeout
	}
	return Internal
}

// New returns an error with text msg that reports class c; it serves as a
// sentinel that other errors wrap (errors.Is) and that gives them its class.
func New(c Class, msg string) error { return &sentinel{msg: msg, class: c} }

type sentinel struct {
	msg   string
	class Class
}

func (e *sentinel) Error() string { return e.msg }
func (e *sentinel) Class() Class  { return e.class }
