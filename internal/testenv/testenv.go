// Package testenv holds the one rule for tests that need a real server or
// tool the go command does not ship (redis-server, versitygw, chromium):
// tests look for it and never install anything themselves; when it is
// missing, the test is skipped with the reason (./scripts/test lists every
// skip at the end), except under CI=true, where .ci/run has installed
// everything and a missing one is a failure.
package testenv

import (
	"fmt"
	"os"
	"testing"
)

// Unavailable skips t, or fails it under CI=true, with the reason, which
// should say how to install what is missing.
func Unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s (CI=true, where .ci/run installs it: failing)", msg)
	}
	t.Skip(msg)
}
