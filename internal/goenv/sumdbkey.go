package goenv

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"

	"golang.org/x/mod/sumdb/note"
)

// SumDBKey returns the verifier key that the go command has built in for
// the checksum database name (GOSUMDB may name a database without its key
// only when the go command knows the key). It reads the go binary found in
// PATH and looks for "NAME+HASH+KEYDATA" whose key parses and names the
// database, so modproxy never carries a copy of a public key of its own.
func SumDBKey(name string) (string, error) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("finding the go command: %w", err)
	}
	if p, err := filepath.EvalSymlinks(goBin); err == nil {
		goBin = p
	}
	data, err := os.ReadFile(goBin)
	if err != nil {
		return "", err
	}
	return findKey(data, name)
}

func findKey(data []byte, name string) (string, error) {
	re := regexp.MustCompile(regexp.QuoteMeta(name) + `\+[0-9a-f]{8}\+[A-Za-z0-9+/]{44}`)
	for _, m := range re.FindAll(data, -1) {
		v, err := note.NewVerifier(string(m))
		if err == nil && v.Name() == name && bytes.HasPrefix(m, []byte(name+"+")) {
			return string(m), nil
		}
	}
	return "", fmt.Errorf("the go command has no built-in key for checksum database %q; give it as NAME+KEY", name)
}
