// Package goauth is the client side of modproxy's front door: the
// credentials `modproxy login URL` saves and the GOAUTH command helper
// `modproxy auth` that hands them to the go command
// (GOAUTH='modproxy auth', see `go help goauth`).
//
// # The GOAUTH command protocol
//
// Before its first HTTPS fetch the go command runs the helper with no
// argument and no input; Run then prints every saved credential. After a
// 4xx answer it runs the helper again with the request URL as the one
// argument and the response (status line, header lines, blank line) on
// stdin; Run then prints the credential whose URL is the longest prefix of
// the request URL (same host and port, path prefix at a "/" boundary), or
// nothing. The answer depends on the URL only: the response is read and
// otherwise ignored (the go command retries the request once whatever the
// helper prints). Each credential is printed as
//
//	https://HOST[:PORT][/PATH]
//	<blank line>
//	Authorization: Bearer TOKEN
//	<blank line>
//
// which the go command attaches to every HTTPS request below that prefix.
// Output is written with one Write, after every check, so a failing run
// prints nothing.
//
// # Refusals
//
// Credentials are only ever sent over HTTPS: Login refuses other URLs, and
// Run refuses to answer for one (ErrNotHTTPS). A request URL on another
// host, port or path gets no credential (Match reports ErrNoMatch, Run
// prints nothing). A credentials file that others may read is refused
// (ErrPermissions), like ssh does, outside Windows. Tokens are checked to
// be a single HTTP token68 word, so a saved value cannot inject header
// lines into the go command.
//
// # The file
//
// DefaultPath is os.UserConfigDir()/modproxy/credentials.json. It is one
// JSON document, written by temporary file, fsync and rename with mode
// 0600 (directory 0700). The package holds no state; concurrent Logins of
// one file may lose one of the changes (the last writer wins).
package goauth

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"

	"github.com/modproxy/modproxy/internal/atomicfile"
)

// FileName is the credentials file's name in its directory.
const FileName = "credentials.json"

// maxFile bounds the credentials file.
const maxFile = 1 << 20

// Errors, for errors.Is.
var (
	ErrNotHTTPS    = errors.New("credentials are sent over https:// only")
	ErrNoMatch     = errors.New("no saved credential for this URL")
	ErrPermissions = errors.New("credentials file is readable by others")
	ErrUsage       = errors.New("usage: modproxy auth [URL]")
	ErrInvalid     = errors.New("invalid credential")
)

// Credential is a token for every URL below a prefix.
type Credential struct {
	// URL is the prefix, as NormalizeURL returns it:
	// https://HOST[:PORT][/PATH], lower-case host, no default port, no
	// trailing slash.
	URL   string `json:"url"`
	Token string `json:"token"`
}

// String shows the URL only, never the token.
func (c Credential) String() string { return c.URL }

type document struct {
	Version     int          `json:"version"`
	Credentials []Credential `json:"credentials"`
}

// DefaultPath returns os.UserConfigDir()/modproxy/credentials.json.
func DefaultPath() (string, error) {
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "modproxy", FileName), nil
}

// NormalizeURL returns the prefix form of an https URL (see Credential),
// or an error: ErrNotHTTPS for another scheme, ErrInvalid for a URL
// without host or with user information, a query or a fragment.
func NormalizeURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if !strings.EqualFold(u.Scheme, "https") {
		return "", fmt.Errorf("%s: %w", redact(u), ErrNotHTTPS)
	}
	if u.Host == "" || u.User != nil || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
		return "", fmt.Errorf("%w: %s: want https://HOST[:PORT][/PATH] without user, query or fragment", ErrInvalid, redact(u))
	}
	return prefix(u), nil
}

// prefix is the normalised https://host[:port]/path of u.
func prefix(u *url.URL) string {
	host := strings.ToLower(u.Hostname())
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if p := u.Port(); p != "" && p != "443" {
		host += ":" + p
	}
	return "https://" + host + strings.TrimRight(u.EscapedPath(), "/")
}

func redact(u *url.URL) string {
	c := *u
	c.User, c.RawQuery, c.Fragment = nil, "", ""
	return c.String()
}

// validToken reports whether t is one token68 word (RFC 7235): what can
// follow "Bearer " on a header line.
func validToken(t string) bool {
	if t == "" || len(t) > 4096 {
		return false
	}
	body := strings.TrimRight(t, "=")
	if body == "" {
		return false
	}
	for i := 0; i < len(body); i++ {
		c := body[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-._~+/", c) >= 0) {
			return false
		}
	}
	return true
}

// Load returns the credentials saved in path: none when the file does not
// exist, ErrPermissions when others may read it, ErrInvalid when an entry
// is not valid.
func Load(path string) ([]Credential, error) {
	if runtime.GOOS != "windows" {
		fi, err := os.Stat(path)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		if fi.Mode().Perm()&0o077 != 0 {
			return nil, fmt.Errorf("%s: %w (mode %v; run chmod 600 %s)", path, ErrPermissions, fi.Mode().Perm(), path)
		}
	}
	return read(path)
}

// read parses path without looking at its mode.
func read(path string) ([]Credential, error) {
	data, err := atomicfile.Read(path, maxFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var doc document
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if doc.Version != 1 {
		return nil, fmt.Errorf("%s: version %d (this modproxy reads version 1)", path, doc.Version)
	}
	for _, c := range doc.Credentials {
		if n, err := NormalizeURL(c.URL); err != nil || n != c.URL || !validToken(c.Token) {
			return nil, fmt.Errorf("%s: %w: entry for %q", path, ErrInvalid, c.URL)
		}
	}
	return doc.Credentials, nil
}

func write(path string, creds []Credential) error {
	slices.SortFunc(creds, func(a, b Credential) int { return cmp.Compare(a.URL, b.URL) })
	data, err := json.MarshalIndent(document{Version: 1, Credentials: creds}, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Write(path, append(data, '\n'), 0o600)
}

// Login saves token for every URL below rawURL in path, replacing the
// token saved for the same prefix. The file (and its directory) are
// created private; an existing file is rewritten with mode 0600. Errors:
// ErrNotHTTPS, ErrInvalid (URL or token), or the file's.
func Login(path, rawURL, token string) error {
	u, err := NormalizeURL(rawURL)
	if err != nil {
		return err
	}
	if !validToken(token) {
		return fmt.Errorf("%w: the token must be one word of letters, digits and -._~+/", ErrInvalid)
	}
	creds, err := read(path)
	if err != nil {
		return err
	}
	creds = slices.DeleteFunc(creds, func(c Credential) bool { return c.URL == u })
	return write(path, append(creds, Credential{URL: u, Token: token}))
}

// Logout removes the credential saved for rawURL's prefix and reports
// whether there was one.
func Logout(path, rawURL string) (bool, error) {
	u, err := NormalizeURL(rawURL)
	if err != nil {
		return false, err
	}
	creds, err := read(path)
	if err != nil {
		return false, err
	}
	kept := slices.DeleteFunc(slices.Clone(creds), func(c Credential) bool { return c.URL == u })
	if len(kept) == len(creds) {
		return false, nil
	}
	return true, write(path, kept)
}

// Match returns the credential the go command should send with a request
// to rawURL: the one whose URL is the longest prefix of it. Errors:
// ErrNotHTTPS (never send credentials in clear), ErrInvalid, ErrNoMatch.
func Match(creds []Credential, rawURL string) (Credential, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return Credential{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if !strings.EqualFold(u.Scheme, "https") {
		return Credential{}, fmt.Errorf("%s: %w", redact(u), ErrNotHTTPS)
	}
	if u.Host == "" {
		return Credential{}, fmt.Errorf("%w: %s has no host", ErrInvalid, redact(u))
	}
	target := prefix(u)
	var best Credential
	for _, c := range creds {
		if (target == c.URL || strings.HasPrefix(target, c.URL+"/")) && len(c.URL) > len(best.URL) {
			best = c
		}
	}
	if best.URL == "" {
		return Credential{}, fmt.Errorf("%s: %w", redact(u), ErrNoMatch)
	}
	return best, nil
}

// Format writes creds in the GOAUTH command output format.
func Format(w io.Writer, creds []Credential) error {
	var b bytes.Buffer
	for _, c := range creds {
		if !strings.HasPrefix(c.URL, "https://") || strings.ContainsAny(c.URL, "\r\n") || !validToken(c.Token) {
			return fmt.Errorf("%w: entry for %q", ErrInvalid, c.URL)
		}
		fmt.Fprintf(&b, "%s\n\nAuthorization: Bearer %s\n\n", c.URL, c.Token)
	}
	_, err := w.Write(b.Bytes())
	return err
}

// Run is `modproxy auth [URL]`, the GOAUTH command: with no argument it
// prints every credential saved in path; with a URL it reads the go
// command's response from stdin and prints the credential for that URL,
// or nothing when none matches. Errors (nothing printed): ErrUsage,
// ErrNotHTTPS, ErrInvalid, ErrPermissions, or the file's.
func Run(path string, args []string, stdin io.Reader, stdout io.Writer) error {
	if len(args) > 1 {
		return ErrUsage
	}
	creds, err := Load(path)
	if err != nil {
		return err
	}
	if len(args) == 0 {
		return Format(stdout, creds)
	}
	// The response the go command got; not needed to choose the answer.
	if stdin != nil {
		if _, err := io.Copy(io.Discard, bufio.NewReader(stdin)); err != nil {
			return err
		}
	}
	c, err := Match(creds, args[0])
	if errors.Is(err, ErrNoMatch) {
		return nil
	}
	if err != nil {
		return err
	}
	return Format(stdout, []Credential{c})
}

// ReadToken reads a token from the first line of r (for `modproxy login`
// reading stdin), trimming surrounding white space.
func ReadToken(r io.Reader) (string, error) {
	line, err := bufio.NewReader(io.LimitReader(r, 8192)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	t := strings.TrimSpace(line)
	if !validToken(t) {
		return "", fmt.Errorf("%w: the token must be one word of letters, digits and -._~+/", ErrInvalid)
	}
	return t, nil
}
