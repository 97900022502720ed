package bundle

import (
	"os"

	"golang.org/x/sys/unix"
)

// syncStaged makes the staged files in dir (the given paths) durable. On
// Linux 5.8 and later it is one syncfs(2) of dir's file system instead of
// an fsync per file: one flush of the journal for a bundle's hundreds of
// members. Older kernels' syncfs does not report write-back errors, so
// there (or when the kernel's version cannot be read) every file is
// fsynced, as elsewhere.
func syncStaged(dir string, paths []string) error {
	if !syncfsReportsErrors() {
		return syncEach(paths)
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return unix.Syncfs(int(d.Fd()))
}

// syncfsReportsErrors reports whether the running kernel is Linux 5.8 or
// later, whose syncfs(2) returns write-back errors.
func syncfsReportsErrors() bool {
	var u unix.Utsname
	if unix.Uname(&u) != nil {
		return false
	}
	var major, minor int
	rel := unix.ByteSliceToString(u.Release[:])
	for i, part := 0, 0; i < len(rel) && part < 2; i++ {
		c := rel[i]
		switch {
		case c >= '0' && c <= '9':
			if part == 0 {
				major = major*10 + int(c-'0')
			} else {
				minor = minor*10 + int(c-'0')
			}
		case c == '.':
			part++
		default:
			part = 2
		}
	}
	return major > 5 || major == 5 && minor >= 8
}
