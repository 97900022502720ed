package cli

import (
	"errors"
	"sync"

	"github.com/modproxy/modproxy/internal/goauth"
)

// savedToken returns doctor's Options.ModproxyAuth: the token `modproxy
// auth` would print for a URL, read from the credentials `modproxy login`
// saved in path (loaded once). No saved credential for the URL is "", nil;
// an unreadable file or one others may read (which the helper refuses) is
// the error.
func savedToken(path string) func(rawURL string) (string, error) {
	load := sync.OnceValues(func() ([]goauth.Credential, error) { return goauth.Load(path) })
	return func(rawURL string) (string, error) {
		creds, err := load()
		if err != nil {
			return "", err
		}
		c, err := goauth.Match(creds, rawURL)
		if errors.Is(err, goauth.ErrNoMatch) {
			return "", nil
		}
		return c.Token, err
	}
}
