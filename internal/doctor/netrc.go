package doctor

import (
	"fmt"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// netrcEntry is one machine of a netrc file.
type netrcEntry struct {
	Line     int
	Machine  string
	Login    string
	Password string // never shown
}

// Complete reports whether the go command uses the entry: it needs a
// machine, a login and a password.
func (e netrcEntry) Complete() bool { return e.Machine != "" && e.Login != "" && e.Password != "" }

// netrcFile is the netrc file the go command reads.
type netrcFile struct {
	Path     string
	Explicit bool // named by NETRC
	Exists   bool
	Mode     fs.FileMode
	Err      error // reading failed (other than not existing)
	netrcParse
}

// readNetrc locates and parses the netrc file as the go command does
// (cmd/go/internal/auth): $NETRC, else ~/.netrc (~/_netrc first on
// Windows). The parse also keeps incomplete entries, which the go command
// drops silently, so they can be reported.
func (c *checker) readNetrc() netrcFile {
	var n netrcFile
	if v, ok := c.o.LookupEnv("NETRC"); ok && v != "" {
		n.Path, n.Explicit = v, true
	} else {
		home := ""
		for _, k := range homeVars() {
			if v, ok := c.o.LookupEnv(k); ok && v != "" {
				home = v
				break
			}
		}
		if home == "" {
			return n
		}
		n.Path = filepath.Join(home, ".netrc")
		if runtime.GOOS == "windows" {
			if _, err := os.Stat(filepath.Join(home, "_netrc")); err == nil {
				n.Path = filepath.Join(home, "_netrc")
			}
		}
	}
	st, err := os.Stat(n.Path)
	if err != nil {
		if !os.IsNotExist(err) {
			n.Err = err
		}
		return n
	}
	n.Exists, n.Mode = true, st.Mode()
	data, err := os.ReadFile(n.Path)
	if err != nil {
		n.Err = err
		return n
	}
	n.netrcParse = parseNetrc(string(data))
	return n
}

func homeVars() []string {
	switch runtime.GOOS {
	case "windows":
		return []string{"USERPROFILE"}
	case "plan9":
		return []string{"home"}
	}
	return []string{"HOME"}
}

// parseNetrc follows the go command's parser exactly: tokens in pairs per
// line, "machine" starts an entry, an entry is used once it has a machine,
// a login and a password, "macdef" skips to the next empty line, and a
// "default" token left over at the end of a line stops the parse. It also
// returns what the go command drops silently, to report it.
func parseNetrc(data string) (p netrcParse) {
	var l netrcEntry
	inMacro := false
	lines := strings.Split(data, "\n")
	for ln, line := range lines {
		if inMacro {
			if line == "" {
				inMacro = false
			}
			continue
		}
		f := strings.Fields(line)
		i := 0
		for ; i < len(f)-1; i += 2 {
			switch f[i] {
			case "machine":
				if l.Machine != "" {
					p.Incomplete = append(p.Incomplete, l)
				}
				l = netrcEntry{Line: ln + 1, Machine: f[i+1]}
			case "default":
				if p.Default == 0 {
					p.Default = ln + 1
				}
			case "login":
				l.Login = f[i+1]
			case "password":
				l.Password = f[i+1]
			case "macdef":
				inMacro = true
			}
			if l.Complete() {
				p.Entries = append(p.Entries, l)
				l = netrcEntry{}
			}
		}
		if i < len(f) && f[i] == "default" {
			if p.Default == 0 {
				p.Default = ln + 1
			}
			for _, rest := range lines[ln+1:] {
				for _, t := range strings.Fields(rest) {
					if t == "machine" {
						p.Ignored++
					}
				}
			}
			l = netrcEntry{}
			break
		}
	}
	if l.Machine != "" {
		p.Incomplete = append(p.Incomplete, l)
	}
	return p
}

// netrcParse is the content of a netrc file.
type netrcParse struct {
	Entries    []netrcEntry // complete entries, in file order
	Incomplete []netrcEntry // entries the go command ignores
	Default    int          // line of a "default" token (never used by the go command)
	Ignored    int          // machine entries after a "default" that stopped the parse
}

// credentialFor returns the netrc entry the go command would use for u
// (https only), matching the machine against host[:port] and the path
// prefixes of the URL, as cmd/go/internal/auth does.
func (n netrcFile) credentialFor(u *url.URL) (netrcEntry, bool) {
	if u.Scheme != "https" {
		return netrcEntry{}, false
	}
	prefix := strings.TrimSuffix(u.Host+u.EscapedPath(), "/")
	for {
		// The first complete entry for a machine wins.
		for _, e := range n.Entries {
			if strings.TrimSuffix(strings.TrimPrefix(e.Machine, "https://"), "/") == prefix {
				return e, true
			}
		}
		i := strings.LastIndexByte(prefix, '/')
		if i < 0 {
			return netrcEntry{}, false
		}
		prefix = prefix[:i]
	}
}

// addCredentials sets the credentials the go command would send on req
// (the URL's, netrc's, then modproxy's GOAUTH helper's) and says which,
// never the secret.
func (c *checker) addCredentials(req *http.Request) string {
	if req.URL.User != nil {
		return "basic auth from the URL"
	}
	if c.auth.Off {
		return ""
	}
	if e, ok := c.netrc.credentialFor(req.URL); ok && c.auth.Netrc {
		req.SetBasicAuth(e.Login, e.Password)
		return "basic auth from netrc machine " + e.Machine
	}
	if req.URL.Scheme != "https" {
		return ""
	}
	if tok, _ := c.helperToken(req.URL.String()); tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
		return "a bearer token from GOAUTH " + c.modproxyAuthCmd() + " (modproxy login)"
	}
	return ""
}

func (c *checker) checkNetrc() {
	n := c.netrc
	if !c.auth.Netrc || c.auth.Off {
		return
	}
	switch {
	case n.Path == "":
		c.add(IDNetrc, OK, "netrc file", "no NETRC and no home directory: no netrc credentials", "")
		return
	case n.Err != nil:
		c.add(IDNetrc, Problem, "netrc file "+n.Path, "cannot be read: "+n.Err.Error()+"; the go command sends no netrc credentials",
			"fix its permissions for your user (chmod 600 "+n.Path+")")
		return
	case !n.Exists && n.Explicit:
		c.add(IDNetrc, Warning, "netrc file "+n.Path, "NETRC names a file that does not exist: no netrc credentials are sent",
			"create it or fix NETRC")
		return
	case !n.Exists:
		c.add(IDNetrc, OK, "netrc file "+n.Path, "does not exist: no netrc credentials (fine unless a proxy or private repository needs them)", "")
		return
	}
	c.add(IDNetrc, OK, "netrc file "+n.Path, fmt.Sprintf("%d complete entr%s, %d incomplete", len(n.Entries), plural(len(n.Entries), "y", "ies"), len(n.Incomplete)), "")

	if runtime.GOOS != "windows" && n.Mode.Perm()&0o077 != 0 {
		c.add(IDNetrcPerm, Warning, "netrc file "+n.Path,
			fmt.Sprintf("permissions %04o: readable or writable by other users, who can read your tokens or change where they are sent", n.Mode.Perm()),
			"chmod 600 "+n.Path)
	}
	for _, e := range n.Incomplete {
		var missing []string
		if e.Login == "" {
			missing = append(missing, "login")
		}
		if e.Password == "" {
			missing = append(missing, "password")
		}
		c.add(IDNetrcEntry, Warning, fmt.Sprintf("netrc machine %s (line %d)", e.Machine, e.Line),
			"no "+strings.Join(missing, " and ")+": the go command ignores the entry and sends no credentials to "+e.Machine+" (requests then get 401, 403 or 404)",
			fmt.Sprintf("write it as: machine %s login USER password TOKEN", e.Machine))
	}
	for _, e := range n.Entries {
		title := fmt.Sprintf("netrc machine %s (line %d)", e.Machine, e.Line)
		if q := e.Password[0]; q == '"' || q == '\'' {
			c.add(IDNetrcEntry, Warning, title, "the password starts with a quote: the go command does not unquote, so the quotes are sent as part of it",
				"remove the quotes (netrc values cannot contain white space)")
		}
	}
	if n.Default > 0 {
		seen := fmt.Sprintf("a default entry at line %d: the go command never uses it", n.Default)
		if n.Ignored > 0 {
			seen += fmt.Sprintf(", and stops reading there: %d later machine entr%s ignored", n.Ignored, plural(n.Ignored, "y is", "ies are"))
		}
		c.add(IDNetrcEntry, Warning, "netrc default entry", seen, "give each host its own machine entry, before any default entry")
	}

	// Proxies: which credentials the go command sends.
	for _, e := range c.list.Used() {
		if e.Kind != kindProxy || e.URL.User != nil {
			continue
		}
		title := "netrc credentials for " + e.Name()
		if e.URL.Scheme == "http" {
			for _, ne := range n.Entries {
				if ne.Machine == e.URL.Hostname() || ne.Machine == e.URL.Host {
					c.add(IDNetrcProxy, Warning, title, "netrc has an entry for "+ne.Machine+", but credentials are only sent over https",
						"use https:// for the proxy")
				}
			}
			continue
		}
		if ne, ok := n.credentialFor(e.URL); ok {
			c.add(IDNetrcProxy, OK, title, "sent: netrc machine "+ne.Machine, "")
			continue
		}
		if e.URL.Port() != "" {
			for _, ne := range n.Entries {
				if ne.Machine == e.URL.Hostname() {
					c.add(IDNetrcProxy, Warning, title,
						fmt.Sprintf("netrc machine %s does not include the port, and the go command (1.24 and later) matches host:port: no credentials are sent to %s", ne.Machine, e.URL.Host),
						fmt.Sprintf("add an entry for machine %s", e.URL.Host))
				}
			}
		}
	}
}
