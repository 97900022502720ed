// Package goenv reads the effective Go environment by asking the go
// command (`go env -json`), never by guessing its defaults.
package goenv

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
)

// Reader returns values of go env variables.
type Reader func(ctx context.Context, keys ...string) (map[string]string, error)

// Command runs `go env -json KEYS...` with the go command found in PATH.
func Command(ctx context.Context, keys ...string) (map[string]string, error) {
	args := append([]string{"env", "-json"}, keys...)
	cmd := exec.CommandContext(ctx, "go", args...)
	out, err := cmd.Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			return nil, fmt.Errorf("go env: %v: %s", err, strings.TrimSpace(string(ee.Stderr)))
		}
		return nil, fmt.Errorf("go env: %w", err)
	}
	m := map[string]string{}
	if err := json.Unmarshal(out, &m); err != nil {
		return nil, fmt.Errorf("go env: %w", err)
	}
	return m, nil
}
