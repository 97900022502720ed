package errclass

import (
	"errors"
	"syscall"
)

// IsStoreFull reports whether err, or an error it wraps, says that local
// storage is full: the system's "no space left on device" (ENOSPC) or
// "disk quota exceeded" (EDQUOT), as os and syscall errors carry them
// (*fs.PathError, *os.LinkError, *os.SyscallError all unwrap to the
// syscall.Errno).
func IsStoreFull(err error) bool {
	return err != nil && (errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT))
}
