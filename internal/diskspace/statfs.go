//go:build linux || darwin || freebsd

package diskspace

import (
	"io/fs"

	"golang.org/x/sys/unix"
)

func of(dir string) (Space, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return Space{}, &fs.PathError{Op: "statfs", Path: dir, Err: err}
	}
	bs := int64(st.Bsize)
	return Space{Free: int64(st.Bavail) * bs, Size: int64(st.Blocks) * bs}, nil
}
