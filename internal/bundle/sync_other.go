//go:build !linux

package bundle

// syncStaged makes the staged files (paths, in dir) durable, one fsync
// each.
func syncStaged(_ string, paths []string) error { return syncEach(paths) }
