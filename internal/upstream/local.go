package upstream

import "github.com/modproxy/modproxy/internal/errclass"

// LocalError is a failure of this machine during a fetch, not of the
// upstream: writing the body to a local temporary file failed (a full disk,
// a read-only or broken file system). The upstream answered; asking it again
// or asking the next upstream would fail the same way. So a Chain stops at
// a LocalError whatever its separator, package resilient neither retries it
// nor counts it against the upstream's circuit breaker, and it is not an
// upstream error in the metrics.
//
// It is deliberately not an *Error. Its class is Internal, whatever its
// cause (a missing temporary directory is not a missing module), except
// that errclass.Of finds a full disk through it first (Err is kept, so
// errors.Is(err, syscall.ENOSPC) holds) and answers StoreFull.
type LocalError struct {
	Upstream string // the upstream whose answer was being written, without credentials
	Path     string
	Op       string // what failed, e.g. "spooling the body"
	Err      error
}

func (e *LocalError) Error() string {
	return e.Upstream + "/" + e.Path + ": " + e.Op + " (a local failure, not the upstream's): " + e.Err.Error()
}

func (e *LocalError) Unwrap() error { return e.Err }

// Class implements errclass.Classer.
func (e *LocalError) Class() errclass.Class { return errclass.Internal }
