package explain

import (
	"net/url"
	"regexp"
	"strings"
	"unicode/utf8"
)

// extractor holds the compiled regular expressions used to pull module paths,
// versions and hosts out of go command output. It is immutable once built.
type extractor struct {
	lookupURL   *regexp.Regexp // checksum database lookup URL: .../lookup/path@version
	atV         *regexp.Regexp // proxy URL or module cache path: .../path/@v/version.ext or /@v/list
	token       *regexp.Regexp // path@version anywhere in the line
	modWord     *regexp.Regexp // "module path:" or "module path@query:"
	goPrefix    *regexp.Regexp // "go: path/sub: "
	urlHost     *regexp.Regexp // first URL host in the line
	safe        *regexp.Regexp // values allowed inside suggested commands
	decor       *regexp.Regexp // log decorations removed before de-duplication
	ansi        *regexp.Regexp // terminal colour escapes
	pseudo      *regexp.Regexp // pseudo-version commit suffix
	toolchainDL *regexp.Regexp // a failed toolchain download: "download go1.N.P: golang.org/toolchain@..."
}

func newExtractor() *extractor {
	return &extractor{
		lookupURL:   regexp.MustCompile(`https?://[^\s/"']+(?:/[^\s"']*)?/lookup/([^\s@"']+)@([^\s:"']+)`),
		atV:         regexp.MustCompile(`([^\s"'@]*?)/@(?:v/(?:list|([^/\s"']+?)\.(?:info|mod|zip|ziphash|lock|partial))|latest)\b`),
		token:       regexp.MustCompile(`([A-Za-z0-9][-A-Za-z0-9_~]*(?:\.[-A-Za-z0-9_~]+)+(?:/[-A-Za-z0-9_.~!+]+)*)@(v[0-9][-A-Za-z0-9_.+~!]*|(?:latest|upgrade|patch|none|master|main|[0-9a-f]{7,40})\b)`),
		modWord:     regexp.MustCompile(`\bmodule ([A-Za-z0-9][-A-Za-z0-9_~]*(?:\.[-A-Za-z0-9_~]+)+(?:/[-A-Za-z0-9_.~!+]+)*)(?:@([^\s:]+))?:`),
		goPrefix:    regexp.MustCompile(`^\s*go(?: get)?: ([A-Za-z0-9][-A-Za-z0-9_~]*(?:\.[-A-Za-z0-9_~]+)+(?:/[-A-Za-z0-9_.~!+]+)+):`),
		urlHost:     regexp.MustCompile(`https?://(?:[^@/\s"']*@)?([A-Za-z0-9][-A-Za-z0-9.]*)`),
		safe:        regexp.MustCompile(`^[A-Za-z0-9][-A-Za-z0-9_.~+/@!:=,*]*$`),
		decor:       regexp.MustCompile(`^(?:#\d+\s+)?(?:\[?\d{4}-\d\d-\d\d[T ][0-9:.,]+(?:Z|[+-]\d\d:?\d\d)?\]?\s+)?(?:\d+(?:\.\d+)?\s+)?`),
		ansi:        regexp.MustCompile("\x1b\\[[0-9;?]*[A-Za-z]"),
		pseudo:      regexp.MustCompile(`-(?:0\.)?(?:\d+\.)?\d{14}-([0-9a-f]{12})(?:\+incompatible)?$`),
		toolchainDL: regexp.MustCompile(`\bdownload (go[0-9][^\s:]*): golang\.org/toolchain@`),
	}
}

// toolchain returns the toolchain whose download line reports, or "".
func (x *extractor) toolchain(line string) string {
	if m := x.toolchainDL.FindStringSubmatch(line); m != nil && len(m[1]) <= 64 && x.safe.MatchString(m[1]) {
		return m[1]
	}
	return ""
}

// module returns "path@version" (or "path") found in line, or "".
func (x *extractor) module(line string) string {
	if m := x.lookupURL.FindStringSubmatch(line); m != nil {
		if p := unescapeModPath(m[1]); validPath(p) {
			return join(p, unescapeModPath(strings.TrimSuffix(m[2], "/go.mod")))
		}
	}
	if m := x.token.FindStringSubmatch(line); m != nil {
		return join(m[1], cleanVersion(m[2]))
	}
	if m := x.atV.FindStringSubmatch(line); m != nil {
		if p := modPathFromPrefix(m[1]); p != "" {
			return join(p, unescapeModPath(m[2]))
		}
	}
	if m := x.modWord.FindStringSubmatch(line); m != nil {
		return join(m[1], cleanVersion(m[2]))
	}
	if m := x.goPrefix.FindStringSubmatch(line); m != nil {
		return m[1]
	}
	return ""
}

// host returns the host of the first URL in line, or "".
func (x *extractor) host(line string) string {
	if m := x.urlHost.FindStringSubmatch(line); m != nil {
		return strings.TrimSuffix(m[1], ".")
	}
	return ""
}

func join(path, version string) string {
	if version == "" {
		return path
	}
	return path + "@" + version
}

// cleanVersion trims what commonly follows a version in messages.
func cleanVersion(v string) string {
	v = strings.TrimSuffix(v, "/go.mod")
	for _, ext := range []string{".zip", ".mod", ".info", ".ziphash"} {
		v = strings.TrimSuffix(v, ext)
	}
	return strings.TrimRight(v, ".,;:)")
}

// modPathFromPrefix turns the part of a proxy URL or module cache path that
// precedes "/@v/" into a module path: the scheme and host, the proxy's own
// path prefix and the cache directory are dropped by starting at the first
// element that contains a dot (module paths start with a domain name).
func modPathFromPrefix(prefix string) string {
	if i := strings.Index(prefix, "://"); i >= 0 {
		prefix = prefix[i+3:]
		if j := strings.IndexByte(prefix, '/'); j >= 0 {
			prefix = prefix[j+1:]
		} else {
			return ""
		}
	}
	if i := strings.LastIndex(prefix, "cache/download/"); i >= 0 {
		prefix = prefix[i+len("cache/download/"):]
	}
	elems := strings.Split(prefix, "/")
	for i, e := range elems {
		if strings.Contains(e, ".") && e != "." && e != ".." {
			p := unescapeModPath(strings.Join(elems[i:], "/"))
			if validPath(p) {
				return p
			}
			return ""
		}
	}
	return ""
}

// unescapeModPath undoes the case encoding of module paths and versions in
// proxy URLs and cache paths ("!a" stands for "A"). Invalid input is
// returned unchanged.
func unescapeModPath(s string) string {
	if !strings.Contains(s, "!") {
		if u, err := url.PathUnescape(s); err == nil {
			return u
		}
		return s
	}
	var b strings.Builder
	bang := false
	for _, r := range s {
		switch {
		case bang && r >= 'a' && r <= 'z':
			b.WriteRune(r - 'a' + 'A')
			bang = false
		case bang:
			return s
		case r == '!':
			bang = true
		default:
			b.WriteRune(r)
		}
	}
	if bang {
		return s
	}
	return b.String()
}

// validPath reports whether p looks like a module path worth reporting.
func validPath(p string) bool {
	if p == "" || len(p) > 300 || strings.HasPrefix(p, "/") || strings.HasPrefix(p, ".") {
		return false
	}
	first, _, _ := strings.Cut(p, "/")
	if !strings.Contains(first, ".") {
		return false
	}
	for _, r := range p {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-._~/+!", r)) {
			return false
		}
	}
	return true
}

// PrivatePattern suggests a GOPRIVATE pattern for a module path: the
// owner on multi-tenant code hosts (github.com/acme), the host otherwise;
// "" when the path does not start with a host name.
func PrivatePattern(path string) string {
	elems := strings.Split(path, "/")
	if len(elems) == 0 || !strings.Contains(elems[0], ".") {
		return ""
	}
	if MultiTenantHost(elems[0]) && len(elems) >= 2 {
		return elems[0] + "/" + elems[1]
	}
	return elems[0]
}

// MultiTenantHost reports whether host is a public code host shared by many
// owners, where a pattern naming only the host covers everyone's modules.
func MultiTenantHost(host string) bool { return multiTenant[host] }

// majorPath returns path adjusted to the major version of version:
// example.com/m + v2.1.0 -> example.com/m/v2; example.com/m/v2 + v3.0.0 ->
// example.com/m/v3; v0/v1 drop the suffix.
func majorPath(path, version string) string {
	if path == "" || !strings.HasPrefix(version, "v") {
		return ""
	}
	major := version[1:]
	if i := strings.IndexAny(major, ".-+"); i >= 0 {
		major = major[:i]
	}
	if major == "" || strings.Trim(major, "0123456789") != "" {
		return ""
	}
	base := path
	if i := strings.LastIndex(path, "/v"); i > 0 && strings.Trim(path[i+2:], "0123456789") == "" && len(path) > i+2 {
		base = path[:i]
	}
	if major == "0" || major == "1" {
		return base
	}
	return base + "/v" + major
}

// fullRelease turns a go version ("1.23", "go1.23") into a toolchain name
// with a patch level ("go1.23.0").
func fullRelease(v string) string {
	v = strings.TrimPrefix(v, "go")
	if v == "" {
		return ""
	}
	if strings.Count(v, ".") == 1 && strings.Trim(v, "0123456789.") == "" {
		v += ".0"
	}
	return "go" + v
}

// truncateText shortens s to about max bytes around the byte offset at,
// marking cuts with an ellipsis, and keeps the result valid UTF-8.
func truncateText(s string, at, max int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= max {
		return s
	}
	start := 0
	if at > max/2 {
		start = at - max/3
	}
	if start > len(s)-max {
		start = len(s) - max
	}
	for start > 0 && start < len(s) && !utf8.RuneStart(s[start]) {
		start++
	}
	end := start + max
	if end > len(s) {
		end = len(s)
	}
	for end < len(s) && end > start && !utf8.RuneStart(s[end]) {
		end--
	}
	out := s[start:end]
	if start > 0 {
		out = "…" + out
	}
	if end < len(s) {
		out += "…"
	}
	return out
}

// multiTenant lists public code hosts shared by many owners (read only).
var multiTenant = map[string]bool{
	"github.com": true, "gitlab.com": true, "bitbucket.org": true,
	"codeberg.org": true, "dev.azure.com": true, "gitee.com": true,
}

// placeholders lists the template values of Entry.Commands with what is
// shown when the value is unknown.
var placeholders = []struct{ name, fallback string }{
	{"module", "MODULE@VERSION"},
	{"majorpath", "MODULE/vN"},
	{"path", "MODULE"},
	{"version", "VERSION"},
	{"basever", "VERSION"},
	{"private", "corp.example.com"},
	{"host", "HOST"},
	{"url", "URL"},
	{"pkg", "PACKAGE"},
	{"declared", "MODULE_PATH"},
	{"rev", "COMMIT"},
	{"gotoolchain", "go1.N.P"},
	{"goversion", "1.N.P"},
	{"gover", "1.N.P"},
	{"toolchain", "go1.N.P"},
	{"vcs", "git"},
	{"root", "MODULE"},
	{"dir", "DIR"},
	{"clean", "go clean -modcache"}, // see render
}

// render fills command templates with values taken from the input. Values
// that are unknown, or that contain anything but the characters of module
// paths, versions and host names, are replaced by a placeholder, so the
// commands shown are safe to paste into a shell.
func (x *extractor) render(templates []string, vars map[string]string, module string) []string {
	if len(templates) == 0 {
		return nil
	}
	path, version, _ := strings.Cut(module, "@")
	val := map[string]string{
		"module":  module,
		"path":    path,
		"version": version,
		"basever": strings.TrimSuffix(version, "+incompatible"),
	}
	for k, v := range vars {
		if _, ok := val[k]; !ok || val[k] == "" {
			val[k] = v
		}
	}
	val["majorpath"] = majorPath(path, version)
	if m := x.pseudo.FindStringSubmatch(version); m != nil {
		val["rev"] = m[1]
	}
	if g := fullRelease(vars["gover"]); g != "" {
		val["gotoolchain"] = g
		val["goversion"] = strings.TrimPrefix(g, "go")
	}
	if p := PrivatePattern(path); p != "" {
		val["private"] = p
	} else if h := vars["host"]; h != "" && !MultiTenantHost(h) && strings.Contains(h, ".") {
		val["private"] = h
	}

	// {clean} removes the one version from the module cache when it is
	// known, the whole cache otherwise.
	clean := "go clean -modcache"
	if version != "" && len(module) <= 256 && x.safe.MatchString(module) {
		clean = "modproxy clean --module {module}"
	}
	out := make([]string, 0, len(templates))
	for _, t := range templates {
		t = strings.ReplaceAll(t, "{clean}", clean)
		for _, p := range placeholders {
			key := "{" + p.name + "}"
			if !strings.Contains(t, key) {
				continue
			}
			v := val[p.name]
			if v == "" || len(v) > 256 || !x.safe.MatchString(v) {
				v = p.fallback
			}
			t = strings.ReplaceAll(t, key, v)
		}
		out = append(out, t)
	}
	return out
}

// safeCommand reports whether a command line copied from the input contains
// only harmless characters (no shell syntax).
func (x *extractor) safeCommand(c string) bool {
	for _, f := range strings.Fields(c) {
		if !x.safe.MatchString(f) {
			return false
		}
	}
	return true
}
