package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/modproxy/modproxy/internal/hosted"
)

// TestHostedKey: the command writes a signer key (mode 0600) whose
// verifier key is the one it prints, and never overwrites a file.
func TestHostedKey(t *testing.T) {
	file := filepath.Join(t.TempDir(), "hosted.key")
	code, stdout, stderr := run(t, nil, "hosted-key", file)
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	fi, err := os.Stat(file)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", fi, err)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	_, vkey, err := hosted.ParseKey(string(b))
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(stdout) != vkey || !strings.HasPrefix(vkey, hosted.LogName+"+") {
		t.Fatalf("printed %q, the key's verifier is %q", stdout, vkey)
	}
	if strings.Contains(stdout, "PRIVATE") {
		t.Fatal("the signer key was printed")
	}
	code, _, stderr = run(t, nil, "hosted-key", file)
	if code != ExitFailure || !strings.Contains(stderr, "exists") {
		t.Fatalf("existing file: exit %d %q", code, stderr)
	}
	if after, _ := os.ReadFile(file); string(after) != string(b) {
		t.Fatal("an existing key was overwritten")
	}
	if code, _, _ := run(t, nil, "hosted-key"); code != ExitUsage {
		t.Fatalf("no FILE: exit %d", code)
	}
}
