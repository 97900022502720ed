package fs

import (
	"os"
	"sync"
)

// Call is one recorded file system call of a Store: Op is "fsync" (a
// file), "rename" (Path to To) or "fsync-dir".
type Call struct{ Op, Path, To string }

// Recorder records a Store's sync and rename calls in order, and can make
// them fail.
type Recorder struct {
	mu        sync.Mutex
	calls     []Call
	syncErr   error
	renameErr error
}

// Record replaces s's sync and rename calls with ones that report to the
// returned Recorder before doing the real call. Call it before using s.
func Record(s *Store) *Recorder {
	r := &Recorder{}
	real := s.sys
	s.sys = sysOps{
		syncFile: func(f *os.File) error {
			if err := r.add(Call{Op: "fsync", Path: f.Name()}, &r.syncErr); err != nil {
				return err
			}
			return real.syncFile(f)
		},
		rename: func(oldpath, newpath string) error {
			if err := r.add(Call{Op: "rename", Path: oldpath, To: newpath}, &r.renameErr); err != nil {
				return err
			}
			return real.rename(oldpath, newpath)
		},
		syncDir: func(dir string) {
			_ = r.add(Call{Op: "fsync-dir", Path: dir}, nil)
			real.syncDir(dir)
		},
	}
	return r
}

func (r *Recorder) add(c Call, fail *error) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, c)
	if fail != nil {
		return *fail
	}
	return nil
}

// Calls returns the calls recorded so far and forgets them.
func (r *Recorder) Calls() []Call {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.calls
	r.calls = nil
	return c
}

// FailSync makes file syncs fail with err (nil: succeed again).
func (r *Recorder) FailSync(err error) { r.mu.Lock(); r.syncErr = err; r.mu.Unlock() }

// FailRename makes renames fail with err (nil: succeed again).
func (r *Recorder) FailRename(err error) { r.mu.Lock(); r.renameErr = err; r.mu.Unlock() }
