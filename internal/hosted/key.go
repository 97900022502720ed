package hosted

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/mod/sumdb/note"
)

// GenerateKey makes a new signer key for the private log (note signer key
// syntax, "PRIVATE+KEY+NAME+HASH+DATA") and returns it with its verifier
// key. Keep the signer key secret: whoever has it can sign heads.
func GenerateKey() (skey, vkey string, err error) {
	return note.GenerateKey(rand.Reader, LogName)
}

// ParseKey parses a signer key from configuration (surrounding space
// ignored) and derives its verifier key. Errors never quote the key.
func ParseKey(skey string) (note.Signer, string, error) {
	skey = strings.TrimSpace(skey)
	s, err := note.NewSigner(skey)
	if err != nil {
		return nil, "", errors.New("hosted log: the signer key is not a note signer key (PRIVATE+KEY+NAME+HASH+DATA, as modproxy hosted-key makes)")
	}
	// PRIVATE+KEY+NAME+HASH+DATA, DATA = base64(algorithm byte 1, Ed25519 seed).
	parts := strings.SplitN(skey, "+", 5)
	data, err := base64.StdEncoding.DecodeString(parts[4])
	if err != nil || len(data) != 1+ed25519.SeedSize || data[0] != 1 {
		return nil, "", errors.New("hosted log: the signer key is not an Ed25519 note key")
	}
	pub := ed25519.NewKeyFromSeed(data[1:]).Public().(ed25519.PublicKey)
	vkey, err := note.NewEd25519VerifierKey(s.Name(), pub)
	if err != nil {
		return nil, "", fmt.Errorf("hosted log: %w", err)
	}
	return s, vkey, nil
}
