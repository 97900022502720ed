package doctor

import (
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
)

// IDProxyAuth is the finding about the credentials a proxy that asks for
// them gets: which source (the URL, netrc, the modproxy GOAUTH helper)
// supplies them and whether the proxy accepted them.
const IDProxyAuth = "proxy.auth"

// maxChallenge bounds the WWW-Authenticate value shown in a finding.
const maxChallenge = 120

// modproxyAuthCmd returns the GOAUTH command that is modproxy's helper
// ("modproxy auth", the program named modproxy with the argument auth),
// or "".
func (c *checker) modproxyAuthCmd() string {
	for _, cmd := range c.auth.Cmds {
		w := strings.Fields(cmd)
		prog := strings.TrimSuffix(filepath.Base(w[0]), ".exe")
		if prog == "modproxy" && len(w) == 2 && w[1] == "auth" {
			return cmd
		}
	}
	return ""
}

// helperToken returns the token modproxy's GOAUTH helper would send with
// a request for rawURL, when GOAUTH runs it and Options.ModproxyAuth can
// tell; and a reason when it cannot supply one.
func (c *checker) helperToken(rawURL string) (token, why string) {
	cmd := c.modproxyAuthCmd()
	switch {
	case cmd == "" || c.auth.Off:
		return "", ""
	case c.o.ModproxyAuth == nil:
		return "", fmt.Sprintf("GOAUTH command %q: its credentials are not read by doctor", cmd)
	}
	tok, err := c.o.ModproxyAuth(rawURL)
	switch {
	case err != nil:
		return "", fmt.Sprintf("GOAUTH command %q has no usable credential for this URL: %v", cmd, err)
	case tok == "":
		return "", fmt.Sprintf("GOAUTH command %q has no credential for this URL (save one with modproxy login URL)", cmd)
	}
	return tok, ""
}

// reportAuth reports, for a proxy that answered the canary with 401 or
// was sent credentials, where credentials come from and whether they were
// accepted. Secrets are never shown: only their source.
func (c *checker) reportAuth(pp *proxyProbe, name string) {
	r, e := pp.List, pp.Entry
	if r.Err != nil || r.IsFile || (r.Status != http.StatusUnauthorized && r.Auth == "") {
		return
	}
	title := name + ": credentials"
	if r.Status != http.StatusUnauthorized {
		c.add(IDProxyAuth, OK, title, fmt.Sprintf("sent %s: accepted (%d %s)", r.Auth, r.Status, http.StatusText(r.Status)), "")
		return
	}
	asks := "the proxy requires authentication"
	if r.Challenge != "" {
		asks += fmt.Sprintf(" (WWW-Authenticate: %s)", r.Challenge)
	}
	if strings.Contains(r.Challenge, `realm="modproxy"`) {
		asks += ": a modproxy with auth.mode = \"required\""
	}
	if r.Auth != "" {
		c.add(IDProxyAuth, Problem, title, asks+"; sent "+r.Auth+": rejected (the token is unknown, expired or revoked)",
			"ask the proxy's administrator for a new token (modproxy token create NAME on the server) and replace the old one where it came from")
		return
	}
	var why []string
	switch {
	case e.URL.Scheme != "https":
		why = append(why, "the URL is http://: the go command sends netrc and GOAUTH credentials over https only")
	case c.auth.Off:
		why = append(why, "GOAUTH=off: no credentials are sent")
	default:
		if c.auth.Netrc {
			if c.netrc.Path == "" || !c.netrc.Exists {
				why = append(why, "no netrc file")
			} else {
				why = append(why, "netrc "+c.netrc.Path+" has no complete entry for machine "+e.URL.Host)
			}
		} else {
			why = append(why, "GOAUTH does not include netrc")
		}
		if _, reason := c.helperToken(e.URL.String()); reason != "" {
			why = append(why, reason)
		}
		for _, cmd := range c.auth.Cmds {
			if cmd != c.modproxyAuthCmd() {
				why = append(why, fmt.Sprintf("GOAUTH command %q is not run by doctor: it may supply credentials when the go command runs it", cmd))
			}
		}
	}
	fix := "run modproxy login " + e.URL.String() + " with a token from the proxy's administrator and set GOAUTH='modproxy auth' (go env -w), or add a netrc line: machine " + e.URL.Host + " login NAME password TOKEN (chmod 600)"
	if e.URL.Scheme != "https" {
		fix = "use https://" + e.URL.Host + e.URL.Path + " (the proxy needs TLS for credentials), then " + fix
	}
	c.add(IDProxyAuth, Problem, title, asks+"; no credentials sent: "+strings.Join(why, "; "), fix)
}

// challengeOf is the WWW-Authenticate value of resp, bounded and on one
// line (it holds no secret: it is the server's request for one).
func challengeOf(resp *http.Response) string {
	v := strings.Join(resp.Header.Values("WWW-Authenticate"), ", ")
	v = strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return -1
		}
		return r
	}, v)
	if len(v) > maxChallenge {
		v = v[:maxChallenge] + "..."
	}
	return v
}
