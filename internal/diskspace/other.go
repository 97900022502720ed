//go:build !(linux || darwin || freebsd)

package diskspace

func of(dir string) (Space, error) { return Space{}, ErrUnsupported }
