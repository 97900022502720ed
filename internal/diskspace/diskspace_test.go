package diskspace_test

import (
	"errors"
	"io/fs"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/modproxy/modproxy/internal/diskspace"
)

func TestOf(t *testing.T) {
	sp, err := diskspace.Of(t.TempDir())
	if errors.Is(err, diskspace.ErrUnsupported) {
		t.Skipf("free space is not read on %s", runtime.GOOS)
	}
	if err != nil {
		t.Fatal(err)
	}
	if sp.Size <= 0 || sp.Free < 0 || sp.Free > sp.Size {
		t.Errorf("Of = %+v: want 0 <= free <= size, size > 0", sp)
	}
	_, err = diskspace.Of(filepath.Join(t.TempDir(), "missing"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Of(missing dir) = %v, want fs.ErrNotExist", err)
	}
}
