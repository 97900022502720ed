// Package diskspace reports the space of the file system that holds a
// directory (statfs on Linux, macOS and FreeBSD). It is a leaf: the cache
// administration takes a function of its own, and this package is what
// the composition root passes it.
package diskspace

import "errors"

// Space is a file system's size and free space, in bytes. Free is what an
// unprivileged process may still write (blocks reserved for root are not
// free).
type Space struct {
	Free, Size int64
}

// ErrUnsupported is returned on platforms where the space cannot be read.
var ErrUnsupported = errors.ErrUnsupported

// Of returns the space of the file system holding dir. Errors are the
// operating system's (wrapped in *fs.PathError) or ErrUnsupported.
func Of(dir string) (Space, error) { return of(dir) }
