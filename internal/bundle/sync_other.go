//go:build !linux

package bundle

import "os"

// syncStaged makes the staged files (paths, in dir) durable, one fsync
// each.
func syncStaged(_ string, paths []string) error {
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		err = f.Sync()
		f.Close()
		if err != nil {
			return err
		}
	}
	return nil
}
