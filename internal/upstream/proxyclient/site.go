package proxyclient

import (
	"fmt"
	"net/url"
	"strings"
)

// NewSite returns a Client for a plain download site that is not a
// GOPROXY (the Go toolchain distribution site). Its Fetch takes a file
// name below baseURL, optionally followed by a query
// ("go1.22.0.linux-amd64.tar.gz", "?mode=json&include=all"), checked by
// siteURL and sent as it is. Every body is limited by MaxZipSize (the
// site's files are archives); timeouts, redirects, errors and their
// classes are those of New.
func NewSite(baseURL string, opts Options) (*Client, error) {
	c, err := New(baseURL, opts)
	if err != nil {
		return nil, err
	}
	c.site = true
	return c, nil
}

// siteURL returns the URL of p below base for a site Client: p is an
// optional file name (letters, digits, '.', '-', '_', not starting with a
// dot) and an optional query of such words joined by '=' and '&'.
// Anything else is not sent.
func siteURL(base *url.URL, p string) (string, error) {
	name, query, hasQuery := strings.Cut(p, "?")
	if !siteWord(name, false) || (hasQuery && !siteWord(query, true)) || (name == "" && !hasQuery) {
		return "", fmt.Errorf("%q is not a file name with an optional plain query", p)
	}
	u := *base
	u.Path = strings.TrimSuffix(u.Path, "/") + "/" + name
	u.RawPath = ""
	u.RawQuery = query
	return u.String(), nil
}

// siteWord reports whether s holds only letters, digits, '.', '-' and
// '_' (and, in a query, '=' and '&'), and does not start with a dot.
func siteWord(s string, query bool) bool {
	if strings.HasPrefix(s, ".") {
		return false
	}
	for _, c := range []byte(s) {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '-', c == '_':
		case query && (c == '=' || c == '&'):
		default:
			return false
		}
	}
	return true
}
