package doctor

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// GoEnvCommand runs `go env -json KEYS...` with the go command found in
// PATH, in the process environment changed by set: each name is given its
// value, or removed when the value is "". It is Options.GoEnvWith in
// production. The error carries the go command's standard error.
func GoEnvCommand(ctx context.Context, set map[string]string, keys ...string) (map[string]string, error) {
	var env []string
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); !hasKey(set, k) {
			env = append(env, kv)
		}
	}
	for k, v := range set {
		if v != "" {
			env = append(env, k+"="+v)
		}
	}
	cmd := exec.CommandContext(ctx, "go", append([]string{"env", "-json"}, keys...)...)
	cmd.Env = env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go env: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	m := map[string]string{}
	if err := json.Unmarshal(out, &m); err != nil {
		return nil, fmt.Errorf("go env: %w", err)
	}
	return m, nil
}

func hasKey(m map[string]string, k string) bool { _, ok := m[k]; return ok }
