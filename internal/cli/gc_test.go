package cli

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/modproxy/modproxy/internal/cacheadmin"
)

// TestGCExitCodes: the cache administration's error classes become exit
// codes: unknown or invalid requests are usage errors, anything else a
// failure.
func TestGCExitCodes(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want int
	}{
		{fmt.Errorf("%w: trash batch %q", cacheadmin.ErrNotFound, "x"), ExitUsage},
		{fmt.Errorf("%w: a reason is required", cacheadmin.ErrInvalid), ExitUsage},
		{fmt.Errorf("%w: 2 versions are being served or filled", cacheadmin.ErrConflict), ExitFailure},
		{errors.New("disk full"), ExitFailure},
	} {
		if got := cacheExit(tc.err); got != tc.want {
			t.Errorf("%v: exit %d, want %d", tc.err, got, tc.want)
		}
	}

	env := map[string]string{"MODPROXY_VERIFY_PRIVATE": "private.example"}
	dir := t.TempDir()
	code, _, stderr := run(t, env, "gc", "restore", "--cache-dir", dir, "--sumdb", "off", "no-such-batch")
	if code != ExitUsage || !strings.Contains(stderr, `trash batch "no-such-batch"`) {
		t.Errorf("gc restore of an unknown batch: exit %d, stderr %q", code, stderr)
	}
	code, stdout, stderr := run(t, env, "gc", "--cache-dir", dir, "--sumdb", "off", "--dry-run")
	if code != ExitOK || !strings.Contains(stdout, "plan: evict 0 versions") {
		t.Errorf("gc --dry-run: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
}
