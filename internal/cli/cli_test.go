package cli

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func run(t *testing.T, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Run(context.Background(), args, Env{
		Stdout: &out, Stderr: &errb, Stdin: strings.NewReader(""),
		LookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok },
		GoEnv: func(ctx context.Context, keys ...string) (map[string]string, error) {
			return nil, errors.New("go command not available in this test")
		},
	})
	return code, out.String(), errb.String()
}

func TestUsage(t *testing.T) {
	if code, _, stderr := run(t, nil); code != ExitUsage || !strings.Contains(stderr, "Commands:") {
		t.Errorf("no args: %d %q", code, stderr)
	}
	if code, _, stderr := run(t, nil, "frobnicate"); code != ExitUsage || !strings.Contains(stderr, `unknown command "frobnicate"`) {
		t.Errorf("unknown command: %d %q", code, stderr)
	}
	if code, stdout, _ := run(t, nil, "help"); code != ExitOK || !strings.Contains(stdout, "serve") {
		t.Errorf("help: %d %q", code, stdout)
	}
	if code, stdout, _ := run(t, nil, "version"); code != ExitOK || !strings.HasPrefix(stdout, "modproxy ") {
		t.Errorf("version: %d %q", code, stdout)
	}
	code, stdout, _ := run(t, nil, "serve", "--help")
	if code != ExitOK {
		t.Errorf("serve --help exit %d", code)
	}
	for _, want := range []string{"-listen", "-cache-dir", "-upstream", "-config", "-sumdb", "MODPROXY_CACHE_TTL", "cache.stale_if_error"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("serve --help lacks %q", want)
		}
	}
	// The policy's modes as they are: warn serves, block refuses.
	for _, want := range []string{"vulnerable versions under\npolicy.vulnerable = block (warn serves them", "policy.retracted = block (warn serves them"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("serve --help lacks %q", want)
		}
	}
	if code, _, _ := run(t, nil, "serve", "--bogus"); code != ExitUsage {
		t.Errorf("serve --bogus exit %d", code)
	}
}

func TestServeConfigErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.toml")
	if err := os.WriteFile(bad, []byte("[cache]\nttl = 5\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"bad file value", nil, []string{"--config", bad, "--upstream", "https://p.example"}, "cache.ttl"},
		{"missing file", nil, []string{"--config", filepath.Join(dir, "nope.toml")}, "nope.toml"},
		{"bad env", map[string]string{"MODPROXY_CACHE_STALE_IF_ERROR": "x"}, []string{"--upstream", "https://p.example"}, "MODPROXY_CACHE_STALE_IF_ERROR"},
		{"no go command and no upstream", nil, []string{"--cache-dir", dir}, "upstream"},
		{"bad listen", map[string]string{"MODPROXY_VERIFY_PRIVATE": "corp.example.com"}, []string{"--listen", "x", "--upstream", "https://p.example", "--sumdb", "off"}, "listen"},
		{"no go command and no private patterns", nil, []string{"--upstream", "https://p.example", "--sumdb", "off"}, "verify.private"},
		{"bad upstream list", map[string]string{"MODPROXY_VERIFY_PRIVATE": "x.example"}, []string{"--upstream", "ftp://p.example", "--sumdb", "off"}, "config: upstream: "},
		{"verify: bad upstream list", map[string]string{"MODPROXY_VERIFY_PRIVATE": "x.example", "MODPROXY_UPSTREAM": "ftp://p.example"}, []string{"--sumdb", "off", "--cache-dir", dir}, "config: upstream: "},
		{"verify: no cache dir", map[string]string{"MODPROXY_VERIFY_PRIVATE": "x.example"}, []string{"--sumdb", "off", "--cache-dir", filepath.Join(dir, "none")}, "not found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := "serve"
			if strings.HasPrefix(tc.name, "verify") {
				cmd = "verify"
			}
			code, _, stderr := run(t, tc.env, append([]string{cmd}, tc.args...)...)
			if code != ExitUsage || !strings.Contains(stderr, tc.want) {
				t.Errorf("exit %d, stderr %q; want %d mentioning %q", code, stderr, ExitUsage, tc.want)
			}
		})
	}
}

// runCleanCmd runs "modproxy clean ARGS".
func runCleanCmd(env Env, args []string) int {
	return Run(context.Background(), append([]string{"clean"}, args...), env)
}

// runDoctorCmd runs "modproxy doctor ARGS".
func runDoctorCmd(env Env, args []string) int {
	return Run(context.Background(), append([]string{"doctor"}, args...), env)
}
