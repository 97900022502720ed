package explain

import (
	"fmt"
	"regexp"
	"strings"
)

// Entry is one recognised go command error in the catalog.
//
// Commands are templates: {module}, {path}, {version}, {private}, {host}
// and the named capture groups of Pattern are replaced with the values found
// in the input (see Finding.Commands); unknown values are replaced with an
// upper-case placeholder such as MODULE or VERSION.
// {clean} stands for the command removing the module version from the
// module cache: "modproxy clean --module M@V" when the version is known,
// "go clean -modcache" otherwise.
type Entry struct {
	ID       string   `json:"id"`
	Title    string   `json:"title"`
	Category string   `json:"category"`
	Priority int      `json:"priority"` // higher wins when a line matches several entries
	Pattern  string   `json:"pattern"`  // RE2 syntax, matched against one line
	Example  string   `json:"example"`  // a representative line the entry matches
	Cause    string   `json:"cause"`
	Fix      string   `json:"fix"`
	Commands []string `json:"commands,omitempty"`

	re      *regexp.Regexp
	needles []string // lower-case; at least one must occur in the lower-cased line
	ctx     bool     // the line must also look like go command output (see ctxNeedles)
	follows []string // IDs whose message this line continues (folded, not reported)
	refines []string // IDs whose finding this line explains better: it takes that finding over
	here    bool     // about this machine's setup: never applied inside a server's response
	back    bool     // look for the module in the preceding lines even if this line is not indented
}

// Categories used by the catalog, in display order.
const (
	CatProxy     = "proxy"
	CatChecksum  = "checksum"
	CatVersion   = "version"
	CatModule    = "module"
	CatConfig    = "config"
	CatToolchain = "toolchain"
	CatVCS       = "vcs"
	CatNetwork   = "network"
	CatLocal     = "local"
)

// spec is the immutable data for one catalog entry.
type spec struct {
	id, title, cat string
	prio           int
	pattern        string
	needles        []string
	ctx            bool
	follows        []string
	refines        []string
	here           bool
	back           bool
	example        string
	cause, fix     string
	commands       []string
}

// ctxNeedles are lower-case markers of go command module output. Entries with
// generic messages (network and file system errors) only match lines that
// also contain one of them, so that the same words in test output or
// application logs are not reported.
var ctxNeedles = []string{
	"go: ", "go get", "go mod", "go list", "go build", "go install",
	"reading http", "verifying ", "/@v/", "@v0", "@v1", "@v2", "@v3", "@v4",
	"@v5", "@v6", "@v7", "@v8", "@v9", "pkg/mod", `pkg\mod`, "proxyconnect",
	"go.sum", "go.mod", "https fetch", "go-get=1", "git ls-remote", "git fetch",
}

// Catalog returns the catalog of recognised errors, freshly compiled. The
// returned entries are the caller's: modifying them affects nothing else.
func Catalog() []Entry {
	out := make([]Entry, len(catalogData))
	for i, s := range catalogData {
		out[i] = Entry{
			ID:       s.id,
			Title:    s.title,
			Category: s.cat,
			Priority: s.prio,
			Pattern:  s.pattern,
			Example:  s.example,
			Cause:    s.cause,
			Fix:      s.fix,
			Commands: append([]string(nil), s.commands...),
			re:       regexp.MustCompile(s.pattern),
			needles:  append([]string(nil), s.needles...),
			ctx:      s.ctx,
			follows:  append([]string(nil), s.follows...),
			refines:  append([]string(nil), s.refines...),
			here:     s.here,
			back:     s.back,
		}
	}
	return out
}

// Match reports whether line (one line of go output) matches this entry on
// its own, ignoring priorities and context. It is meant for tests and docs.
func (e Entry) Match(line string) bool {
	if e.re == nil {
		return false
	}
	lower := strings.ToLower(line)
	return e.prefilter(lower) && e.re.MatchString(line)
}

func (e *Entry) prefilter(lower string) bool {
	ok := false
	for _, n := range e.needles {
		if strings.Contains(lower, n) {
			ok = true
			break
		}
	}
	if !ok {
		return false
	}
	if e.ctx {
		for _, n := range ctxNeedles {
			if strings.Contains(lower, n) {
				return true
			}
		}
		return false
	}
	return true
}

func (e *Entry) continues(id string) bool {
	for _, f := range e.follows {
		if f == id {
			return true
		}
	}
	return false
}

func (e Entry) String() string { return fmt.Sprintf("%s (%s)", e.ID, e.Title) }

// Advice shared by several entries.
const (
	privateNote = "GOPRIVATE is a comma-separated list of module path prefixes and implies GONOPROXY and GONOSUMDB; `go env -w` replaces the whole value, so include the prefixes already set (`go env GOPRIVATE`)."
	netFix      = "Check that the host in the message is the one you expect (`go env GOPROXY`), that it is reachable from this machine, and whether traffic must go through an HTTP proxy (HTTPS_PROXY/NO_PROXY). Re-run the command: transient failures succeed on retry. `modproxy doctor` checks the whole configuration."
)

var catalogData = []spec{
	// ---------------------------------------------------------------- proxy
	{
		id: "proxy-list-not-found", title: "Module has no versions on the proxy (@v/list not found)", cat: CatProxy, prio: 52,
		pattern: `reading (?P<url>https?://\S+/@v/list): (?:404 Not Found|410 Gone)`,
		needles: []string{"/@v/list"},
		example: `go: module example.com/lib: reading https://proxy.example.com/example.com/lib/@v/list: 404 Not Found`,
		cause:   "The module proxy has no version list for this module path: the path does not exist, is misspelled, is private (the proxy cannot see it), or the proxy could not reach its repository.",
		fix:     "Check the spelling of the module path and that the repository exists. If the module is private, list it in GOPRIVATE so the go command fetches it directly from its repository instead of asking the proxy. " + privateNote,
		commands: []string{
			"go list -m -versions {path}",
			"go env GOPROXY GOPRIVATE GONOPROXY",
			"go env -w GOPRIVATE={private}",
		},
	},
	{
		id: "proxy-not-found", title: "Proxy returned 404 Not Found", cat: CatProxy, prio: 45,
		pattern: `reading (?P<url>https?://\S+): 404 Not Found`,
		needles: []string{"404 not found"},
		example: `go: example.com/lib@v1.4.0: reading https://proxy.example.com/example.com/lib/@v/v1.4.0.info: 404 Not Found`,
		cause:   "The module proxy does not have the requested module or version: the version was never published (typo, deleted tag), the module is private, or the proxy cannot fetch it from its origin. A 404 for one version of a module says nothing about the module being private: most often the version does not exist.",
		fix:     "Check that the version exists (`go list -m -versions`) and require an existing one; the \"server response\" line under the error, if any, gives the proxy's reason. Only when that reason shows the proxy cannot fetch the module at all (unrecognized import path, authentication or repository-not-found errors) is it private: then list it in GOPRIVATE so the go command fetches it directly from its repository. " + privateNote,
		commands: []string{
			"go list -m -versions {path}",
			"GOPROXY=direct go mod download -x {module}",
		},
	},
	{
		id: "proxy-gone", title: "Proxy returned 410 Gone", cat: CatProxy, prio: 45,
		pattern: `reading (?P<url>https?://\S+): 410 Gone`,
		needles: []string{"410 gone"},
		example: `go: example.com/lib@v1.4.0: reading https://proxy.example.com/example.com/lib/@v/v1.4.0.mod: 410 Gone`,
		cause:   "The proxy reports the module version as permanently unavailable. Public mirrors answer 410 when they could not fetch the module from its origin, which is what happens for private repositories and for versions that do not exist.",
		fix:     "If the module is private, list it in GOPRIVATE so the go command bypasses the public proxy and checksum database. Otherwise check that the version exists; the \"server response\" lines under this error give the proxy's reason. " + privateNote,
		commands: []string{
			"go env -w GOPRIVATE={private}",
			"go list -m -versions {path}",
		},
	},
	{
		id: "proxy-forbidden", title: "Proxy returned 403 Forbidden", cat: CatProxy, prio: 50,
		pattern: `reading (?P<url>https?://\S+): 403 Forbidden`,
		needles: []string{"403 forbidden"},
		example: `go: example.com/lib@v1.4.0: reading https://goproxy.corp.example.com/example.com/lib/@v/v1.4.0.zip: 403 Forbidden`,
		cause:   "The proxy refused the request: the credentials sent are not allowed to read this module, the proxy blocks the module by policy, or an intercepting network proxy denied the request.",
		fix:     "Check the proxy's access rules for this module and the credentials the go command sends (a ~/.netrc entry for the proxy host, or the GOAUTH setting). If the module should not go through this proxy, add it to GOPRIVATE/GONOPROXY.",
		commands: []string{
			"go env GOPROXY GOAUTH GONOPROXY",
			"modproxy doctor",
		},
	},
	{
		id: "proxy-not-available", title: "Proxy refuses this module version (403: not available)", cat: CatProxy, prio: 58,
		pattern: `^\s*server response:\s*not available\b`,
		needles: []string{"not available"},
		refines: []string{"proxy-forbidden"},
		example: "\tserver response: not available",
		cause:   "The proxy answered 403 Forbidden with the reason \"not available\": it understood the request and refuses to serve this module version by its own policy (a deny rule or allow list, a blocked vulnerable or retracted version, a cooldown for new releases, or a quarantine after an integrity failure). It is not a credentials problem: a proxy that wants credentials answers 401, or 403 with a reason about access.",
		fix:     "Require a version the proxy serves (`go list -m -versions`), or ask the proxy's operator why this one is blocked (modproxy logs the rule that refused it). Do not route around the proxy with GOPROXY=direct or GONOPROXY: the block is usually deliberate.",
		commands: []string{
			"go list -m -versions {path}",
			"go env GOPROXY",
		},
	},
	{
		id: "proxy-unauthorized", title: "Proxy returned 401 Unauthorized", cat: CatProxy, prio: 50,
		pattern: `reading (?P<url>https?://\S+): 401 Unauthorized`,
		needles: []string{"401 unauthorized"},
		example: `go: example.com/lib@v1.4.0: reading https://goproxy.corp.example.com/example.com/lib/@v/list: 401 Unauthorized`,
		cause:   "The proxy requires authentication and the go command sent no credentials or wrong ones.",
		fix:     "Provide credentials for the proxy host: a `machine <host> login <user> password <token>` line in ~/.netrc (or the file named by NETRC), or a GOAUTH command (Go 1.24+). Do not put secrets in GOPROXY URLs that end up in logs.",
		commands: []string{
			"go env GOPROXY GOAUTH",
			"modproxy doctor",
		},
	},
	{
		id: "proxy-rate-limited", title: "Proxy rate limit (429 Too Many Requests)", cat: CatProxy, prio: 50,
		pattern: `429 Too Many Requests`,
		needles: []string{"429 too many requests"},
		example: `go: example.com/lib@v1.4.0: reading https://proxy.example.com/example.com/lib/@v/v1.4.0.zip: 429 Too Many Requests`,
		cause:   "The proxy or code host is throttling this client: too many requests in a short time, typically from CI jobs that start with an empty module cache.",
		fix:     "Retry later, and cache the module cache (GOMODCACHE) between CI runs or use a caching proxy so every job does not download every module again.",
		commands: []string{
			"go env GOMODCACHE GOPROXY",
		},
	},
	{
		id: "proxy-server-error", title: "Proxy returned a 5xx server error", cat: CatProxy, prio: 50,
		pattern: `reading (?P<url>https?://\S+): (?P<status>5\d\d)\b`,
		needles: []string{"reading http"},
		example: `go: example.com/lib@v1.4.0: reading https://goproxy.corp.example.com/example.com/lib/@v/v1.4.0.zip: 502 Bad Gateway`,
		cause:   "The proxy failed while serving the request (500/502/503/504): it is overloaded, misconfigured, or failed to fetch the module from upstream.",
		fix:     "Retry; if it persists, check the proxy's health and logs. Listing a fallback in GOPROXY with \"|\" (for example `https://goproxy.corp.example.com|direct`) makes the go command try the next entry on any error, not only on 404/410.",
		commands: []string{
			"go env GOPROXY",
			"modproxy doctor",
		},
	},
	{
		id: "server-response-not-found", title: "Server response: not found (the server could not fetch the origin)", cat: CatProxy, prio: 57,
		pattern: `^\s*(?:server response:\s*)?not found: (?:module )?\S+`,
		needles: []string{"not found: "},
		example: "\tserver response: not found: example.com/lib@v1.4.0: invalid version: git ls-remote -q origin in /tmp/gopath/pkg/mod/cache/vcs/1f2e: exit status 128:",
		cause:   "This is the detail a proxy or checksum database attaches to a 404/410: the server tried to fetch the module from its origin repository and failed, for the reason given (from the server's point of view, not yours). A failure to resolve or authenticate to the origin means the module is private or does not exist.",
		fix:     "Read the origin error in the message. For a private module set GOPRIVATE so the go command fetches it directly; for a version that does not exist, require an existing one. " + privateNote,
		commands: []string{
			"go env -w GOPRIVATE={private}",
			"go list -m -versions {path}",
		},
	},

	// ------------------------------------------------------------- checksum
	{
		id: "sumdb-lookup-not-found", title: "Checksum database does not know the module (private module?)", cat: CatChecksum, prio: 65,
		pattern: `reading (?P<url>https?://\S+/lookup/\S+): (?:404 Not Found|410 Gone)`,
		needles: []string{"/lookup/"},
		example: `go: example.com/private@v1.0.0: verifying module: example.com/private@v1.0.0: reading https://sum.example.com/lookup/example.com/private@v1.0.0: 404 Not Found`,
		cause:   "The go command asked the public checksum database for the module's checksum and the database does not have it. The checksum database only knows modules it can download publicly, so this happens for private modules (and for versions that do not exist).",
		fix:     "Tell the go command the module is private so it skips the checksum database: set GOPRIVATE (or only GONOSUMDB if it may still go through the proxy). Do not turn off GOSUMDB globally.",
		commands: []string{
			"go env -w GOPRIVATE={private}",
			"go env -w GONOSUMDB={private}",
		},
	},
	{
		id: "sumdb-unreachable", title: "Checksum database unreachable", cat: CatChecksum, prio: 95,
		pattern: `verifying (?:module|go\.mod): (?:(?P<mod>[^\s@]+@[^\s:]+): )?Get "(?P<url>[^"]+)": (?P<reason>.+)`,
		needles: []string{"verifying module: ", "verifying go.mod: "},
		here:    true,
		example: `go: example.com/lib@v1.2.3: verifying go.mod: example.com/lib@v1.2.3/go.mod: Get "http://127.0.0.1:1/lookup/example.com/lib@v1.2.3": dial tcp 127.0.0.1:1: connect: connection refused`,
		cause:   "The module was downloaded, but the go command could not reach the checksum database (GOSUMDB) to verify it, so it refuses to use it. The module proxy is not at fault: the request that failed went to the URL in the message, which is the one GOSUMDB names (\"NAME+KEY URL\"), a GOPROXY entry that proxies the database (/sumdb/NAME/supported), or https://NAME. The reason ends the line: connection refused or a timeout means nothing answers at that address, no such host a name that does not resolve, an x509 error a certificate this machine does not trust.",
		fix:     "Check GOSUMDB (`go env GOSUMDB`): its URL and port, and that the database is running and reachable from here (HTTPS_PROXY if an HTTP proxy is needed). For private modules exclude them with GOPRIVATE or GONOSUMDB instead of turning verification off; never set GOSUMDB=off to get past this.",
		commands: []string{
			"go env GOSUMDB GONOSUMDB GOPROXY",
			"modproxy doctor",
		},
	},
	{
		id: "sumdb-verify-failed", title: "Checksum database lookup failed", cat: CatChecksum, prio: 55,
		pattern: `verifying (?:module|go\.mod): (?P<mod>[^\s@]+@[^\s:]+): `,
		needles: []string{"verifying module: ", "verifying go.mod: "},
		example: `go: example.com/lib@v1.4.0: verifying module: example.com/lib@v1.4.0: reading https://sum.example.com/tile/8/0/x081/123: 403 Forbidden`,
		cause:   "The go command could not get the module's checksum from the checksum database named by GOSUMDB (the reason follows in the message), so it refuses to use the download.",
		fix:     "Make the checksum database reachable (directly or through a proxy that supports the /sumdb/ endpoints), or, for private modules, exclude them with GOPRIVATE/GONOSUMDB.",
		commands: []string{
			"go env GOSUMDB GONOSUMDB GOPRIVATE GOPROXY",
			"go env -w GONOSUMDB={private}",
		},
	},
	{
		id: "checksum-mismatch", title: "Checksum mismatch: download differs from go.sum", cat: CatChecksum, prio: 60,
		pattern: `verifying (?P<mod>[^\s@]+@[^\s:/]+): checksum mismatch`,
		needles: []string{"checksum mismatch"},
		example: `verifying example.com/lib@v1.4.0: checksum mismatch`,
		cause:   "The module zip the go command downloaded does not hash to the value recorded in go.sum. Either the module cache holds a corrupted or tampered copy, a proxy served different content, or the version was re-tagged upstream after go.sum was written (or go.sum was edited by hand / merged badly).",
		fix:     "Do not just delete the go.sum line. First remove the cached copy of this version (`modproxy clean --module M@V` removes just it; `go clean -modcache` empties the whole cache) and download again; if it still mismatches, find out which content is right (ask the module author whether the tag moved). Only when you trust the new content, remove the module's lines from go.sum and run `go mod tidy`.",
		commands: []string{
			"{clean}",
			"go mod download -x {module}",
			"go mod verify",
		},
	},
	{
		id: "gomod-checksum-mismatch", title: "Checksum mismatch: go.mod file differs from go.sum", cat: CatChecksum, prio: 60,
		pattern: `verifying (?P<mod>[^\s@]+@[^\s:/]+)/go\.mod: checksum mismatch`,
		needles: []string{"checksum mismatch"},
		example: `verifying example.com/lib@v1.4.0/go.mod: checksum mismatch`,
		cause:   "The go.mod file of this module version does not hash to the /go.mod line recorded in go.sum: the cache or a proxy has different content, or the version was re-published upstream after go.sum was written.",
		fix:     "Remove the cached copy of this version (`modproxy clean --module M@V`, or `go clean -modcache` for the whole cache) and download again. If the mismatch persists, verify the upstream tag did not move before replacing the go.sum line (remove the module's lines, then `go mod tidy`).",
		commands: []string{
			"{clean}",
			"go mod download -x {module}",
			"go mod verify",
		},
	},
	{
		id: "sumdb-checksum-mismatch", title: "Checksum mismatch against the checksum database (SECURITY ERROR)", cat: CatChecksum, prio: 65,
		pattern: `verifying (?:module|go\.mod): checksum mismatch`,
		needles: []string{"checksum mismatch"},
		example: `go: example.com/lib@v1.4.0: verifying module: checksum mismatch`,
		cause:   "The content downloaded (usually via GOPROXY) does not match the checksum the checksum database published for this version. The proxy or something between you and it served modified content, or the module cache is corrupt.",
		fix:     "Treat it as a security problem: do not bypass it. Remove the cached copy (`modproxy clean --module M@V`, or `go clean -modcache` for the whole cache), download directly from the origin to compare, and report the proxy if it keeps serving different bits.",
		commands: []string{
			"{clean}",
			"GOPROXY=direct go mod download -x {module}",
			"go env GOPROXY GOSUMDB",
		},
	},
	{
		id: "sumdb-checksum-missing", title: "Checksum database response lacks the module (SECURITY ERROR)", cat: CatChecksum, prio: 65,
		pattern: `checksum missing from sumdb response`,
		needles: []string{"checksum missing from sumdb response"},
		example: `go: example.com/lib@v1.4.0: verifying module: checksum missing from sumdb response`,
		cause:   "The checksum database (or a proxy relaying it) answered the lookup, but the answer has no line for this module version. The checksum server may be malfunctioning, or the request was intercepted.",
		fix:     "Check which checksum database is used and whether a proxy relays it (`go env GOSUMDB GOPROXY`); retry, and report the proxy if it persists.",
		commands: []string{
			"go env GOSUMDB GOPROXY",
			"modproxy doctor",
		},
	},
	{
		id: "security-error", title: "SECURITY ERROR (checksum verification failed)", cat: CatChecksum, prio: 10,
		pattern: `^\s*SECURITY ERROR\s*$|This download does NOT match`,
		needles: []string{"security error", "this download does not match"},
		follows: []string{"checksum-mismatch", "gomod-checksum-mismatch", "sumdb-checksum-mismatch", "sumdb-checksum-missing", "security-error"},
		example: `SECURITY ERROR`,
		cause:   "The go command's checksum verification failed: a downloaded module does not match go.sum or the checksum database. (The line naming the module was not found above this banner.)",
		fix:     "Look for the \"verifying ...: checksum mismatch\" line of this error; remove the cached copy of that version (`modproxy clean --module M@V`, or `go clean -modcache` for the whole cache) and download again before trusting any new checksum.",
		commands: []string{
			"{clean}",
			"go mod verify",
		},
	},
	{
		id: "missing-gosum-package", title: "Missing go.sum entry for the module providing a package", cat: CatChecksum, prio: 60,
		pattern: `missing go\.sum entry (?:for module providing package|needed to verify package) (?P<pkg>[^\s;]+)`,
		needles: []string{"missing go.sum entry"},
		example: `main.go:5:2: missing go.sum entry for module providing package example.com/lib/sub (imported by example.com/app); to add:`,
		cause:   "go.sum has no checksum for the module that provides an imported package, and the command runs with -mod=readonly (the default), so it may not add it. go.sum is out of date: go.mod changed without go.sum being updated.",
		fix:     "Run the command the go command suggests below the error, or `go mod tidy`, and commit go.sum.",
		commands: []string{
			"go mod tidy",
			"go get {pkg}",
		},
	},
	{
		id: "missing-gosum-gomod", title: "Missing go.sum entry for a go.mod file", cat: CatChecksum, prio: 60,
		pattern: `missing go\.sum entry for go\.mod file`,
		needles: []string{"missing go.sum entry for go.mod file"},
		example: `go: example.com/lib@v1.4.0: missing go.sum entry for go.mod file; to add it:`,
		cause:   "go.sum lacks the \"/go.mod\" checksum of a module in the build graph, so its requirements cannot be verified. go.sum is incomplete (go.mod was edited, or go.sum was generated for a different set of modules, e.g. in a workspace).",
		fix:     "Add the missing checksum with `go mod download <module>` as suggested, or regenerate go.sum with `go mod tidy`, and commit it.",
		commands: []string{
			"go mod download {path}",
			"go mod tidy",
		},
	},
	{
		id: "missing-gosum-entry", title: "Missing go.sum entry", cat: CatChecksum, prio: 55,
		pattern: `missing go\.sum entry(?:;|\s|$)`,
		needles: []string{"missing go.sum entry"},
		example: `go: example.com/lib@v1.4.0: missing go.sum entry; to add it:`,
		cause:   "go.sum has no checksum for a module version the command needs, and with -mod=readonly (the default) the go command will not add it. go.mod and go.sum are out of sync.",
		fix:     "Run `go mod download <module>` (what the go command suggests) or `go mod tidy`, and commit go.sum.",
		commands: []string{
			"go mod download {path}",
			"go mod tidy",
		},
	},
	{
		id: "gosum-updates-readonly", title: "go.sum needs updates but -mod=readonly", cat: CatChecksum, prio: 60,
		pattern: `updates to go\.sum needed, disabled by -mod=readonly`,
		needles: []string{"updates to go.sum needed"},
		example: `go: updates to go.sum needed, disabled by -mod=readonly`,
		cause:   "The command needs to add checksums to go.sum, but runs with -mod=readonly (set explicitly or through GOFLAGS), so it may not write it.",
		fix:     "Update go.sum locally with `go mod tidy` and commit it; CI should not modify go.sum.",
		commands: []string{
			"go mod tidy",
			"go env GOFLAGS",
		},
	},

	// -------------------------------------------------------------- version
	{
		id: "version-missing-v", title: "Version in go.mod lacks the \"v\" prefix", cat: CatVersion, prio: 64,
		pattern: `(?P<path>[^\s:@"]+): version "(?P<version>[0-9]+(?:\.[0-9]+){0,2}(?:[-+][^"\s]*)?)" invalid`,
		needles: []string{"\" invalid"},
		example: `go.mod:5: require example.com/lib: version "1.2.3" invalid: must be of the form v1.2.3`,
		cause:   "A require, replace or exclude line of go.mod gives the version without its \"v\" (1.2.3 instead of v1.2.3). Module versions are semantic versions with a leading \"v\": the go command treats a bare number as a query to resolve, which no proxy or repository answers (the tag is v1.2.3), or rejects it outright.",
		fix:     "Edit the go.mod line named in the message and write the version with its \"v\" (v1.2.3). Neither `go get` nor `go mod edit` can do it for you: both stop at the parse error first. Then run `go mod tidy`.",
		commands: []string{
			"go mod tidy",
		},
	},
	{
		id: "invalid-version-unknown-revision", title: "Invalid version: unknown revision", cat: CatVersion, prio: 62,
		pattern: `invalid version: unknown revision (?P<rev>\S+)`,
		needles: []string{"invalid version: unknown revision"},
		follows: []string{"version-missing-v"},
		example: `go: example.com/lib@v1.9.9: invalid version: unknown revision v1.9.9`,
		cause:   "The requested version (or tag, branch, commit) does not exist in the module's repository: a typo, a tag that was never pushed or was deleted, or a repository the go command cannot fully read (missing credentials can make existing tags invisible).",
		fix:     "List the versions that do exist and require one of them. If the tag exists, check that the go command can authenticate to the repository (GOPRIVATE plus git credentials).",
		commands: []string{
			"go list -m -versions {path}",
			"go get {path}@latest",
		},
	},
	{
		id: "unknown-revision", title: "Unknown revision", cat: CatVersion, prio: 60,
		pattern: `unknown revision (?P<rev>\S+)`,
		needles: []string{"unknown revision"},
		example: `go: example.com/lib@v2.9.0: reading example.com/lib/go.mod at revision v2.9.0: unknown revision v2.9.0`,
		cause:   "The repository has no tag, branch or commit with this name. Often a version was required that was never tagged, a branch was deleted, or a major version is requested without the /vN suffix in the module path.",
		fix:     "Check the revision name against the repository and require an existing version; for v2+ modules use the /vN module path.",
		commands: []string{
			"go list -m -versions {path}",
			"go get {path}@latest",
		},
	},
	{
		id: "no-matching-versions", title: "No matching versions for query", cat: CatVersion, prio: 60,
		pattern: `no matching versions for query "(?P<query>[^"]*)"`,
		needles: []string{"no matching versions for query"},
		example: `go: module example.com/lib: no matching versions for query "v3"`,
		cause:   "No published version of the module satisfies the query (\"latest\", a version prefix, or a comparison). The module may have no tagged releases yet, only pre-releases, or only retracted versions, or the proxy cannot see its tags.",
		fix:     "List the available versions and ask for one that exists; for untagged modules use a commit or branch (`@main`), which yields a pseudo-version.",
		commands: []string{
			"go list -m -versions {path}",
			"GOPROXY=direct go list -m -versions {path}",
		},
	},
	{
		id: "invalid-pseudo-version", title: "Invalid pseudo-version", cat: CatVersion, prio: 60,
		pattern: `invalid pseudo-version: (?P<reason>.*)`,
		needles: []string{"invalid pseudo-version"},
		example: `go: example.com/lib@v0.0.0-20240102030405-0123456789ab: invalid pseudo-version: does not match version-control timestamp (expected 20240102030406)`,
		cause:   "A pseudo-version in go.mod (or on the command line) was written by hand or copied, and does not match the commit it names: wrong timestamp, wrong or abbreviated commit hash, or a base version tag that does not precede the commit.",
		fix:     "Never hand-write pseudo-versions: let the go command compute one from the commit hash.",
		commands: []string{
			"go get {path}@{rev}",
			"go mod tidy",
		},
	},
	{
		id: "post-v1-module-path", title: "go.mod has post-v1 module path at revision", cat: CatVersion, prio: 60,
		pattern: `has post-(?P<major>v\d+) module path "(?P<declared>[^"]+)"`,
		needles: []string{"module path"},
		example: `go: example.com/lib@v2.0.0: invalid version: go.mod has post-v2 module path "example.com/lib/v2" at revision v2.0.0`,
		cause:   "The version requested belongs to a major version whose go.mod declares a /vN module path, so it cannot be used under the path without the suffix.",
		fix:     "Require the module by the path its go.mod declares (with the /vN suffix) and update the import paths in your code to match.",
		commands: []string{
			"go get {declared}@{version}",
		},
	},
	{
		id: "non-major-module-path", title: "go.mod lacks the /vN suffix the path requires", cat: CatVersion, prio: 60,
		pattern: `has non-\.\.\.(?P<suffix>[./]v\d+) module path "(?P<declared>[^"]+)"`,
		needles: []string{"module path"},
		example: `go: example.com/lib/v2@v2.1.0: invalid version: go.mod has non-.../v2 module path "example.com/lib" (and .../v2/go.mod does not exist) at revision v2.1.0`,
		cause:   "You asked for a /vN module path, but at that revision the repository's go.mod declares the path without the major version suffix: the module has not adopted semantic import versioning for that major version.",
		fix:     "Use the module path that go.mod declares (and a v0/v1 version of it), or ask the maintainers to publish the major version with a /vN module path.",
		commands: []string{
			"go list -m -versions {declared}",
			"go get {declared}@latest",
		},
	},
	{
		id: "major-version-mismatch", title: "Major version does not match the module path", cat: CatVersion, prio: 60,
		pattern: `invalid version: (?:should be (?:v0 or v1|v\d+), not (?P<major>v\d+)|module path includes a major version suffix, so major version must match)|(?P<path>[^\s:@"]+): version "(?P<version>[^"]+)" invalid: should be (?:v0 or v1|v\d+), not v\d+`,
		needles: []string{"invalid version: ", "\" invalid: should be"},
		example: `go: example.com/lib@v2.3.0: invalid version: should be v0 or v1, not v2`,
		cause:   "Semantic import versioning: a module path without a /vN suffix can only have v0/v1 versions, and a /vN path only vN versions. The requested version's major number does not match the path.",
		fix:     "Use the module path with the matching major version suffix (and update imports), or request a version of the matching major.",
		commands: []string{
			"go get {majorpath}@{version}",
			"go list -m -versions {majorpath}",
		},
	},
	{
		id: "major-version-suffix-required", title: "Module path must match major version", cat: CatVersion, prio: 61,
		pattern: `module contains a go\.mod file, so (?:module path must match major version \("(?P<declared>[^"]+)"\)|major version must be compatible)`,
		needles: []string{"module contains a go.mod file"},
		example: `go: example.com/lib@v2.0.0: invalid version: module contains a go.mod file, so module path must match major version ("example.com/lib/v2")`,
		cause:   "The module has a go.mod file, so its v2+ versions must be used through the /vN module path; the +incompatible form for a path without suffix is only allowed for repositories without go.mod.",
		fix:     "Require and import the module by its /vN path.",
		commands: []string{
			"go get {declared}@{version}",
		},
	},
	{
		id: "incompatible-not-allowed", title: "+incompatible suffix not allowed", cat: CatVersion, prio: 61,
		pattern: `\+incompatible suffix not allowed`,
		needles: []string{"+incompatible suffix not allowed"},
		example: `go: example.com/lib@v1.2.0+incompatible: invalid version: +incompatible suffix not allowed: major version v1 is compatible`,
		cause:   "+incompatible marks v2+ versions of repositories that have no go.mod file. It is not allowed on v0/v1 versions, nor on modules that have a go.mod file.",
		fix:     "Drop the +incompatible suffix (or, for v2+ with a go.mod, use the /vN module path).",
		commands: []string{
			"go get {path}@{basever}",
		},
	},
	{
		id: "retracted", title: "Version retracted by module author", cat: CatVersion, prio: 50,
		pattern: `retracted by module author`,
		needles: []string{"retracted by module author"},
		example: `go: warning: example.com/lib@v1.5.0: retracted by module author: published accidentally`,
		cause:   "The module's author retracted this version (a retract directive in a later go.mod), usually because it is broken or was published by mistake.",
		fix:     "Move to a version that is not retracted, as the go command suggests.",
		commands: []string{
			"go get {path}@latest",
			"go list -m -retracted -versions {path}",
		},
	},
	{
		id: "deprecated", title: "Module is deprecated", cat: CatVersion, prio: 50,
		pattern: `module (?P<path>[^\s@]+) is deprecated`,
		needles: []string{"is deprecated"},
		example: `go: module example.com/oldlib is deprecated: use example.com/newlib instead`,
		cause:   "The module's author marked the whole module deprecated with a \"// Deprecated:\" comment in its go.mod. It still works but will not get fixes.",
		fix:     "Read the deprecation message (it usually names a replacement) and plan a migration.",
		commands: []string{
			"go list -m -u -json {path}",
		},
	},

	// --------------------------------------------------------------- module
	{
		id: "module-path-mismatch", title: "Module declares its path as X but was required as Y", cat: CatModule, prio: 60,
		pattern: `module declares its path as: (?P<declared>\S+)`,
		needles: []string{"module declares its path as"},
		example: "\tmodule declares its path as: example.com/upstream/lib",
		cause:   "The go.mod file of the downloaded module names a different module path than the one used to require it. Typical causes: importing a fork by its own path, a repository that was renamed or moved, or a case-mismatch in the path.",
		fix:     "Require and import the module by the path its go.mod declares. To keep using a fork, require the declared path and add a replace directive pointing at the fork.",
		commands: []string{
			"go get {declared}@latest",
			"go mod edit -replace={declared}={path}@{version}",
		},
	},
	{
		id: "replace-dir-missing", title: "Replacement directory does not exist", cat: CatModule, prio: 65,
		pattern: `replacement directory (?P<dir>\S+) does not exist|\(replaced by (?P<dir>[^)\s]+)\): reading \S*go\.mod: open \S+: (?:no such file or directory|The system cannot find the (?:file|path) specified)`,
		needles: []string{"replacement directory", "(replaced by "},
		example: `main.go:3:8: example.com/lib@v1.2.3: replacement directory ../lib does not exist`,
		cause:   "go.mod has a replace directive that points the module at a local directory (a path such as ../lib), and that directory, or its go.mod, does not exist here. A relative path is relative to the directory holding go.mod. Typically the replace was made for local development and committed: it names a checkout that exists only on its author's machine, or CI did not check out the sibling repository.",
		fix:     "Check out the module at that path, fix the path in the replace directive, or drop the replace so that the required version is downloaded; a replace with a directory is for local work (a go.work file keeps it out of go.mod).",
		commands: []string{
			"go mod edit -dropreplace={path}",
			"go mod edit -json",
		},
	},
	{
		id: "malformed-module-path", title: "Malformed module path", cat: CatModule, prio: 60,
		pattern: `(?:malformed|invalid) module path "(?P<bad>[^"]*)"`,
		needles: []string{"module path \""},
		example: `go: malformed module path "mylib/util": missing dot in first path element`,
		cause:   "An import path or module path is not a valid module path. The most common case is \"missing dot in first path element\": a package imported by a short path that is not under the main module's path, so the go command treats it as a remote module.",
		fix:     "Import local packages by the main module's path plus the directory (see `go list -m`), or add a replace directive for a local module; remote module paths must start with a domain name.",
		commands: []string{
			"go list -m",
		},
	},
	{
		id: "found-but-no-package", title: "Module found, but does not contain package", cat: CatModule, prio: 60,
		pattern: `module (?P<path>[^\s@]+)@(?P<query>\S+) found(?: \((?P<version>[^),\s]+)[^)]*\))?, but does not contain package`,
		needles: []string{"but does not contain package"},
		example: `go: module example.com/lib@latest found (v1.4.0), but does not contain package example.com/lib/missing`,
		cause:   "The module exists, but the version selected has no such package directory: the package path is misspelled, was moved or removed in that version, or lives in a separate nested module.",
		fix:     "Check the package path against the module's contents at that version; pick a version that has the package, or require the nested module that provides it.",
		commands: []string{
			"go list -m -versions {path}",
		},
	},
	{
		id: "ambiguous-import", title: "Ambiguous import: package found in multiple modules", cat: CatModule, prio: 60,
		pattern: `ambiguous import: found package (?P<pkg>\S+) in multiple`,
		needles: []string{"ambiguous import"},
		example: `main.go:4:2: ambiguous import: found package example.com/lib/sub in multiple modules:`,
		cause:   "Two modules in the build list both provide the same import path, typically after a package was split out of a module into its own nested module and the build still requires an old version of the parent module.",
		fix:     "Upgrade the parent module to a version that no longer contains the package (or remove one of the requirements) so that exactly one module provides it.",
		commands: []string{
			"go mod graph",
			"go mod tidy",
		},
	},
	{
		id: "no-required-module", title: "No required module provides package", cat: CatModule, prio: 40,
		pattern: `no required module provides package (?P<pkg>[^\s;:]+)`,
		needles: []string{"no required module provides package"},
		example: `main.go:6:2: no required module provides package example.com/lib/sub; to add it:`,
		cause:   "The code imports a package that no module in go.mod provides, and the command may not add requirements on its own (-mod=readonly).",
		fix:     "Add the requirement with `go get` (as suggested) or run `go mod tidy`, and commit go.mod and go.sum.",
		commands: []string{
			"go get {pkg}",
			"go mod tidy",
		},
	},
	{
		id: "cannot-find-module", title: "Cannot find module providing package", cat: CatModule, prio: 35,
		pattern: `cannot find module providing package (?P<pkg>[^\s;:]+)`,
		needles: []string{"cannot find module providing package"},
		example: `go: finding module for package example.com/lib/sub: cannot find module providing package example.com/lib/sub`,
		cause:   "No module the go command could look up provides this import path: the path is misspelled, the module is private and unreachable through GOPROXY, or module lookup is disabled (see the rest of the message).",
		fix:     "Check the import path. For private modules set GOPRIVATE and make sure the repository is reachable.",
		commands: []string{
			"go get {pkg}",
			"go env GOPROXY GOPRIVATE GOFLAGS",
		},
	},
	{
		id: "gopath-mode-path-version", title: "path@version used in GOPATH mode", cat: CatModule, prio: 60,
		pattern: `cannot use path@version syntax in GOPATH mode|can only use path@version syntax with 'go get' and 'go install' in module-aware mode`,
		needles: []string{"path@version syntax"},
		example: `go: cannot use path@version syntax in GOPATH mode`,
		cause:   "The go command runs in GOPATH mode (GO111MODULE=off, or auto outside a module), where versions cannot be requested; or path@version was given to a command other than go get/go install.",
		fix:     "Enable module mode (unset GO111MODULE) and run inside a module, or use go install pkg@version to install a tool.",
		commands: []string{
			"go env -u GO111MODULE",
			"go env GO111MODULE GOMOD",
		},
	},
	{
		id: "go-mod-not-found", title: "go.mod file not found", cat: CatModule, prio: 50,
		pattern: `go\.mod file not found in current directory or any parent directory`,
		needles: []string{"go.mod file not found"},
		example: `go: go.mod file not found in current directory or any parent directory; see 'go help modules'`,
		cause:   "The command needs a main module but none contains the current directory: it runs in the wrong directory (a CI working-directory mistake), or the project has no go.mod yet.",
		fix:     "Run the command from the module root, or create the module with `go mod init`.",
		commands: []string{
			"go env GOMOD",
			"go mod init example.com/yourmodule",
		},
	},
	{
		id: "no-main-module", title: "Cannot find main module", cat: CatModule, prio: 50,
		pattern: `cannot find main module, but (?:found (?P<file>\S+) in (?P<dir>\S+)|-modfile was set)`,
		needles: []string{"cannot find main module"},
		example: `go: cannot find main module, but found .git/config in /home/dev/src/app`,
		cause:   "No go.mod was found in the current directory or its parents, but the directory is inside a repository (or -modfile was used without a module root), so the go command cannot tell which module to build.",
		fix:     "Run the command from the directory holding go.mod, or create go.mod at the repository root as suggested.",
		commands: []string{
			"go env GOMOD",
			"go mod init example.com/yourmodule",
		},
	},
	{
		id: "go-mod-parse-error", title: "Errors parsing go.mod", cat: CatModule, prio: 45,
		pattern: `errors parsing go\.(?:mod|work)|go\.(?:mod|work):\d+: (?:unknown directive|invalid go version|unknown block type|usage: |invalid module version|malformed module path|unexpected)`,
		needles: []string{"errors parsing go.", "go.mod:", "go.work:"},
		follows: []string{"go-mod-parse-error"},
		example: `go: errors parsing go.mod:`,
		cause:   "go.mod (or go.work) has a syntax error, or uses a directive or go version format that this go command does not understand (an older toolchain reading a newer go.mod, or a hand edit).",
		fix:     "Fix the line named in the message. If the file is valid for a newer Go, upgrade the toolchain.",
		commands: []string{
			"go version",
			"go mod edit -fmt",
		},
	},

	// --------------------------------------------------------------- config
	{
		id: "goproxy-off", title: "Module lookup disabled by GOPROXY=off", cat: CatConfig, prio: 65,
		pattern: `lookup disabled by GOPROXY=off`,
		needles: []string{"disabled by goproxy=off"},
		example: `go: example.com/lib@v1.4.0: module lookup disabled by GOPROXY=off`,
		cause:   "GOPROXY=off forbids all module downloads, and the module is not in the module cache (or vendor directory).",
		fix:     "Download the modules in a step that has network access (`go mod download`), use -mod=vendor with a complete vendor directory, or restore GOPROXY.",
		commands: []string{
			"go env GOPROXY GOFLAGS",
			"go env -u GOPROXY",
			"go mod download",
		},
	},
	{
		id: "vendor-lookup-disabled", title: "Lookup disabled by -mod=vendor", cat: CatConfig, prio: 65,
		pattern: `(?:import|module) lookup disabled by -mod=vendor`,
		needles: []string{"lookup disabled by -mod=vendor"},
		example: `main.go:6:2: cannot find module providing package example.com/lib/sub: import lookup disabled by -mod=vendor`,
		cause:   "The build uses the vendor directory (explicit -mod=vendor, or go.mod at go 1.14+ with a vendor directory present) and the package is not vendored.",
		fix:     "Re-run `go mod vendor` after changing requirements and commit vendor/, or build with -mod=mod to ignore the vendor directory.",
		commands: []string{
			"go mod vendor",
			"GOFLAGS=-mod=mod go build ./...",
		},
	},
	{
		id: "inconsistent-vendoring", title: "Inconsistent vendoring", cat: CatConfig, prio: 60,
		pattern: `inconsistent vendoring`,
		needles: []string{"inconsistent vendoring"},
		example: `go: inconsistent vendoring in /src/app:`,
		cause:   "vendor/modules.txt does not match go.mod: requirements or replacements were changed without re-running `go mod vendor` (or vendor/ was only partly committed).",
		fix:     "Re-vendor and commit the vendor directory, or ignore vendor/ with -mod=mod.",
		commands: []string{
			"go mod vendor",
			"GOFLAGS=-mod=mod go build ./...",
		},
	},
	{
		id: "gomod-updates-readonly", title: "go.mod needs updates but -mod=readonly", cat: CatConfig, prio: 60,
		pattern: `updates to go\.mod needed, disabled by -mod=(?P<mode>\w+)`,
		needles: []string{"updates to go.mod needed, disabled by"},
		example: `go: updates to go.mod needed, disabled by -mod=readonly; to update it:`,
		cause:   "The build would have to change go.mod (a missing or inconsistent requirement) but runs with -mod=readonly (the default for builds, or set in GOFLAGS).",
		fix:     "Run `go mod tidy` locally and commit go.mod and go.sum. Use GOFLAGS=-mod=mod only if the build is allowed to edit go.mod.",
		commands: []string{
			"go mod tidy",
			"GOFLAGS=-mod=mod go build ./...",
		},
	},
	{
		id: "gomod-updates-needed", title: "go: updates to go.mod needed", cat: CatConfig, prio: 50,
		pattern: `updates to go\.mod needed`,
		needles: []string{"updates to go.mod needed"},
		example: `go: updates to go.mod needed; to update it:`,
		cause:   "go.mod is not consistent with the module graph (missing requirements, an outdated go line, or requirements that tidy would change), and the command may not fix it itself.",
		fix:     "Run `go mod tidy` and commit go.mod and go.sum.",
		commands: []string{
			"go mod tidy",
		},
	},
	{
		id: "goprivate-noproxy", title: "Disabled by GOPRIVATE/GONOPROXY", cat: CatConfig, prio: 60,
		pattern: `(?:disabled by|path does not match) GOPRIVATE/GONOPROXY`,
		needles: []string{"goprivate/gonoproxy"},
		example: `go: example.com/private/lib@v1.0.0: disabled by GOPRIVATE/GONOPROXY`,
		cause:   "The module matches GOPRIVATE/GONOPROXY, so the go command will not ask the proxy for it and must fetch it directly from its repository; that direct fetch did not find it (no access, wrong path, or \"direct\" not usable).",
		fix:     "Make the direct fetch work: check the repository exists and that git can authenticate to it, or remove the module from GOPRIVATE/GONOPROXY if a (private) proxy should serve it.",
		commands: []string{
			"go env GOPRIVATE GONOPROXY GOPROXY",
			"GOPROXY=direct go mod download -x {module}",
		},
	},
	{
		id: "goproxy-empty-list", title: "GOPROXY list contains no entries", cat: CatConfig, prio: 60,
		pattern: `GOPROXY list is not the empty string, but contains no entries`,
		needles: []string{"goproxy list is not the empty string"},
		example: `go: example.com/lib@v1.4.0: GOPROXY list is not the empty string, but contains no entries`,
		cause:   "GOPROXY is set to a value with no usable entry, such as \",\" or spaces, often from an empty variable in a CI template.",
		fix:     "Set GOPROXY to a proper list (for example `https://goproxy.corp.example.com,direct`) or unset it to use the default.",
		commands: []string{
			"go env GOPROXY",
			"go env -u GOPROXY",
		},
	},
	{
		id: "invalid-proxy-url", title: "Invalid GOPROXY URL", cat: CatConfig, prio: 60,
		pattern: `invalid (?:GOPROXY URL|proxy URL (?:missing scheme|scheme)|file:// proxy URL)`,
		needles: []string{"proxy url"},
		example: `go: example.com/lib@v1.4.0: invalid proxy URL missing scheme: goproxy.corp.example.com`,
		cause:   "An entry of GOPROXY is not a valid proxy URL: it lacks the https:// (or http://, file://) scheme or cannot be parsed.",
		fix:     "Write every GOPROXY entry as a full URL, separated by commas or pipes, optionally ending with direct or off.",
		commands: []string{
			"go env GOPROXY",
			"go env -u GOPROXY",
		},
	},
	{
		id: "gosumdb-malformed", title: "Invalid GOSUMDB setting", cat: CatConfig, prio: 60,
		pattern: `invalid GOSUMDB(?: URL)?: |malformed verifier id|missing GOSUMDB|invalid sumdb name`,
		needles: []string{"gosumdb", "malformed verifier id", "invalid sumdb name"},
		example: `go: example.com/lib@v1.4.0: verifying module: invalid GOSUMDB: malformed verifier id`,
		cause:   "GOSUMDB is malformed: it must be off, a database name known to the go command, or \"name+publickey [url]\" with a valid verifier key.",
		fix:     "Unset GOSUMDB to use the default, or copy the exact key string published by your checksum database; to skip verification for private modules use GONOSUMDB/GOPRIVATE instead.",
		commands: []string{
			"go env GOSUMDB",
			"go env -u GOSUMDB",
		},
	},
	{
		id: "sumdb-disabled-toolchain", title: "Checksum database disabled by GOSUMDB=off", cat: CatConfig, prio: 62,
		pattern: `checksum database disabled by GOSUMDB=off`,
		needles: []string{"disabled by gosumdb=off"},
		example: `go: download go1.23.4: golang.org/toolchain@v0.0.1-go1.23.4.linux-amd64.zip: verifying module: checksum database disabled by GOSUMDB=off`,
		cause:   "The go command must verify this download against the checksum database (always the case for Go toolchain downloads), but GOSUMDB=off turns the database off.",
		fix:     "Do not disable GOSUMDB globally: unset it, and exclude only private modules with GONOSUMDB/GOPRIVATE. Alternatively install the required Go release yourself and use GOTOOLCHAIN=local.",
		commands: []string{
			"go env GOSUMDB GONOSUMDB GOPRIVATE",
			"go env -u GOSUMDB",
		},
	},
	{
		id: "govcs-disallowed", title: "GOVCS disallows the version control tool", cat: CatConfig, prio: 60,
		pattern: `GOVCS disallows using (?P<vcs>\w+) for (?:public|private) (?P<root>[^\s;]+)`,
		needles: []string{"govcs disallows"},
		example: `go: example.com/lib@v1.4.0: GOVCS disallows using svn for public example.com/lib; see 'go help vcs'`,
		cause:   "The module's repository uses a version control tool that GOVCS does not allow for that path (by default only git and hg for public modules).",
		fix:     "Allow the tool for this path in GOVCS (rules not matching fall back to the defaults), or fetch the module through a proxy.",
		commands: []string{
			"go env GOVCS",
			"go env -w GOVCS={root}:{vcs}",
		},
	},
	{
		id: "insecure-flag-removed", title: "-insecure flag is no longer supported", cat: CatConfig, prio: 60,
		pattern: `-insecure flag is no longer supported`,
		needles: []string{"-insecure flag"},
		example: `go: -insecure flag is no longer supported; use GOINSECURE instead`,
		cause:   "`go get -insecure` was removed (Go 1.17); insecure fetching is now configured per module path.",
		fix:     "Drop -insecure and list the hosts in GOINSECURE (only for hosts you control, e.g. an internal HTTP proxy or git server).",
		commands: []string{
			"go env -w GOINSECURE={private}",
		},
	},

	// ------------------------------------------------------------ toolchain
	{
		id: "toolchain-not-available", title: "Go toolchain not available for download", cat: CatToolchain, prio: 60,
		pattern: `download (?P<toolchain>go\S+) for (?P<platform>\S+): toolchain not available`,
		needles: []string{"toolchain not available"},
		example: `go: download go1.99.0 for linux/amd64: toolchain not available`,
		cause:   "GOTOOLCHAIN, or the go or toolchain line of go.mod or go.work, asks for a Go release that the go command tried to download (as the module golang.org/toolchain through GOPROXY) and did not find. The go command says \"not available\" for every not-found answer: the release does not exist (a typo, or a version newer than any release), GOPROXY=off forbids the download, the proxies in GOPROXY do not serve golang.org/toolchain, or there is no build for this platform.",
		fix:     "Check where the version comes from (`go env GOTOOLCHAIN`, then the go and toolchain lines of go.mod) and fix typos: releases look like go1.22.3. With GOPROXY=off, or a proxy without toolchains, install that release yourself (then GOTOOLCHAIN=path finds it in PATH) or allow the download. GOTOOLCHAIN=local keeps the installed Go when go.mod does not require a newer one.",
		commands: []string{
			"go env GOTOOLCHAIN GOPROXY",
			"GOTOOLCHAIN=local go version",
			"go install golang.org/dl/{toolchain}@latest",
			"{toolchain} download",
		},
	},
	{
		id: "toolchain-invalid", title: "Invalid toolchain: language version, not a release", cat: CatToolchain, prio: 60,
		pattern: `invalid toolchain: (?P<toolchain>\S+) is a language version but not a toolchain version`,
		needles: []string{"invalid toolchain"},
		example: `go: invalid toolchain: go1.22 is a language version but not a toolchain version (go1.22.x)`,
		cause:   "GOTOOLCHAIN or the toolchain line names a language version such as go1.22; since Go 1.21 toolchains are named by full release, such as go1.22.0.",
		fix:     "Name a full release in the toolchain line or GOTOOLCHAIN.",
		commands: []string{
			"go mod edit -toolchain={toolchain}.0",
			"go env GOTOOLCHAIN",
		},
	},
	{
		id: "toolchain-not-in-path", title: "Toolchain not found in PATH (GOTOOLCHAIN=path)", cat: CatToolchain, prio: 60,
		pattern: `cannot find "(?P<toolchain>go[^"]+)" in PATH`,
		needles: []string{"in path"},
		example: `go: cannot find "go1.23.4" in PATH`,
		cause:   "GOTOOLCHAIN is set to \"path\" (or ...+path), so the go command may only use toolchains found in PATH, and the required one is not installed.",
		fix:     "Install the required Go release and put it in PATH, or allow downloads with GOTOOLCHAIN=auto.",
		commands: []string{
			"go install golang.org/dl/{toolchain}@latest",
			"{toolchain} download",
			"go env -w GOTOOLCHAIN=auto",
		},
	},
	{
		id: "gomod-requires-newer-go", title: "go.mod requires a newer Go (GOTOOLCHAIN=local)", cat: CatToolchain, prio: 61,
		pattern: `(?:^|[\s:])(?:\S*/)?go\.(?:mod|work) requires go >= (?P<gover>[^\s(]+) \(running go (?P<running>[^\s;)]+)`,
		needles: []string{"requires go >="},
		example: `go: go.mod requires go >= 1.23.0 (running go 1.21.5; GOTOOLCHAIN=local)`,
		cause:   "The main module's go line is newer than the installed go command, and GOTOOLCHAIN=local (or a pinned toolchain) forbids switching to a newer toolchain automatically.",
		fix:     "Install a newer Go, or allow automatic toolchain switching (GOTOOLCHAIN=auto), or run with the required toolchain.",
		commands: []string{
			"go env -w GOTOOLCHAIN=auto",
			"GOTOOLCHAIN={gotoolchain} go build ./...",
		},
	},
	{
		id: "module-requires-newer-go", title: "Dependency requires a newer Go", cat: CatToolchain, prio: 60,
		pattern: `(?:module )?(?P<mod>[^\s@:]+@[^\s:]+) requires go >= (?P<gover>[^\s(]+) \(running go (?P<running>[^\s;)]+)`,
		needles: []string{"requires go >="},
		example: `go: example.com/lib@v1.4.0 requires go >= 1.23 (running go 1.21.5; GOTOOLCHAIN=local)`,
		cause:   "A dependency's go.mod declares a newer go version than the running toolchain, and GOTOOLCHAIN does not allow switching. Using it would raise your module's own go line.",
		fix:     "Upgrade Go (or allow GOTOOLCHAIN=auto and raise your go line), or stay on an older version of the dependency that supports your Go.",
		commands: []string{
			"go get go@{goversion}",
			"go env -w GOTOOLCHAIN=auto",
			"go list -m -versions {path}",
		},
	},
	{
		id: "note-module-requires-go", title: "Compile errors: module requires a newer Go", cat: CatToolchain, prio: 60,
		pattern: `^\s*note: module requires Go (?P<gover>\S+)`,
		needles: []string{"note: module requires go"},
		back:    true,
		example: `note: module requires Go 1.22`,
		cause:   "A package failed to compile, and its module declares a newer Go version than the compiler in use: the errors above come from using new language features or standard library API with an old toolchain.",
		fix:     "Build with a Go version at least as new as the one named (raise the toolchain or let GOTOOLCHAIN=auto switch), or use an older version of that module.",
		commands: []string{
			"go version",
			"go env -w GOTOOLCHAIN=auto",
		},
	},

	// ------------------------------------------------------------------ vcs
	{
		id: "git-terminal-prompts-disabled", title: "git: terminal prompts disabled (no credentials)", cat: CatVCS, prio: 70,
		pattern: `could not read (?:Username|Password) for '(?P<url>[^']+)': terminal prompts disabled|terminal prompts disabled`,
		needles: []string{"terminal prompts disabled"},
		example: "\tfatal: could not read Username for 'https://git.example.com': terminal prompts disabled",
		cause:   "git needed credentials to fetch the repository over HTTPS, and the go command disables git's interactive prompts. The repository is private (or does not exist: hosts answer unknown repositories with an authentication request).",
		fix:     "Mark the module private with GOPRIVATE and give git non-interactive credentials: a credential helper or ~/.netrc token for the host, or rewrite HTTPS to SSH with url.insteadOf. " + privateNote,
		commands: []string{
			"go env -w GOPRIVATE={private}",
			`git config --global url."git@{host}:".insteadOf "https://{host}/"`,
		},
	},
	{
		id: "git-could-not-read-username", title: "git: could not read username/password", cat: CatVCS, prio: 68,
		pattern: `could not read (?:Username|Password) for '(?P<url>[^']+)'`,
		needles: []string{"could not read username", "could not read password"},
		example: "\tfatal: could not read Username for 'https://git.example.com': No such device or address",
		cause:   "git needed credentials for the HTTPS remote and had no way to get them (no terminal, no credential helper).",
		fix:     "Configure a git credential helper or ~/.netrc entry for the host, or use SSH via url.insteadOf; set GOPRIVATE for private modules.",
		commands: []string{
			"go env -w GOPRIVATE={private}",
			`git config --global url."git@{host}:".insteadOf "https://{host}/"`,
		},
	},
	{
		id: "git-could-not-read-remote", title: "git: could not read from remote repository", cat: CatVCS, prio: 66,
		pattern: `(?i)fatal: could not read from remote repository`,
		needles: []string{"could not read from remote repository"},
		follows: []string{"git-ssh-permission-denied", "git-host-key-verification", "git-repo-not-found", "git-could-not-read-remote"},
		example: "\tfatal: Could not read from remote repository.",
		cause:   "git could not access the remote over SSH: no SSH key loaded, the key has no access to the repository, or the repository does not exist.",
		fix:     "Check SSH access to the host (`ssh -T git@<host>`), load the right key (ssh-agent, or a deploy key in CI), and check the repository path.",
		commands: []string{
			"ssh -T git@{host}",
			"GOPROXY=direct go mod download -x {module}",
		},
	},
	{
		id: "git-ssh-permission-denied", title: "git: SSH permission denied (publickey)", cat: CatVCS, prio: 70,
		pattern: `(?:(?P<user>[\w.-]+)@(?P<host>[\w.-]+): )?Permission denied \(publickey`,
		needles: []string{"permission denied (publickey"},
		example: "\tgit@git.example.com: Permission denied (publickey).",
		cause:   "The SSH server rejected every key offered: no key is loaded in this environment, or the key is not authorised for the repository.",
		fix:     "Load a key with access (ssh-agent, or a deploy key in CI) and test with `ssh -T`.",
		commands: []string{
			"ssh -T git@{host}",
		},
	},
	{
		id: "git-host-key-verification", title: "git: host key verification failed", cat: CatVCS, prio: 70,
		pattern: `Host key verification failed`,
		needles: []string{"host key verification failed"},
		example: "\tHost key verification failed.",
		cause:   "SSH does not know (or no longer trusts) the git host's key, and cannot ask interactively. Common in fresh CI containers with an empty ~/.ssh/known_hosts.",
		fix:     "Add the host's key to known_hosts after verifying its fingerprint against the host's published one.",
		commands: []string{
			"ssh-keyscan {host} >> ~/.ssh/known_hosts",
		},
	},
	{
		id: "git-repo-not-found", title: "git: repository not found", cat: CatVCS, prio: 66,
		pattern: `fatal: repository '(?P<url>[^']+)' not found|(?:remote: )?Repository not found`,
		needles: []string{"repository not found", "' not found"},
		follows: []string{"git-repo-not-found"},
		example: "\tremote: Repository not found.",
		cause:   "The code host says the repository does not exist. Hosts also say this for private repositories when the credentials used have no access.",
		fix:     "Check the module path (and case) against the repository URL, and that the credentials git uses can read the repository.",
		commands: []string{
			"go env -w GOPRIVATE={private}",
			"GOPROXY=direct go mod download -x {module}",
		},
	},
	{
		id: "git-unable-to-access", title: "git: unable to access the repository", cat: CatVCS, prio: 66,
		pattern: `fatal: unable to access '(?P<url>[^']+)': (?P<reason>.*)`,
		needles: []string{"unable to access '"},
		example: "\tfatal: unable to access 'https://git.example.com/team/lib/': Could not resolve host: git.example.com",
		cause:   "git could not talk to the repository host (the reason follows: DNS, TLS certificate, proxy or connection problem).",
		fix:     "Fix the network or TLS problem named in the message for git (git has its own http.proxy and http.sslCAInfo settings, separate from the go command's).",
		commands: []string{
			"git ls-remote {url}",
			"git config --global --get-regexp '^http\\.'",
		},
	},
	{
		id: "vcs-not-installed", title: "Version control tool not installed", cat: CatVCS, prio: 80,
		pattern: `exec: "(?P<vcs>git|hg|svn|bzr|fossil)": executable file not found in \$PATH`,
		needles: []string{"executable file not found"},
		example: `go: example.com/lib@v1.4.0: git ls-remote -q origin in /root/go/pkg/mod/cache/vcs/5d1f: exec: "git": executable file not found in $PATH`,
		cause:   "The go command has to fetch the module directly from its repository (GOPROXY=direct, GOPRIVATE, or proxy fallback) and the version control tool is not installed, as in minimal container images.",
		fix:     "Install the tool in the build environment, or fetch the module through a proxy.",
		commands: []string{
			"{vcs} --version",
			"go env GOPROXY GOPRIVATE",
		},
	},
	{
		id: "git-ls-remote-failed", title: "git ls-remote failed", cat: CatVCS, prio: 30,
		pattern: `git ls-remote (?:-q )?(?:--end-of-options )?\S+(?: in \S+)?: exit status (?P<status>\d+)`,
		needles: []string{"git ls-remote"},
		example: `go: example.com/lib@v1.4.0: invalid version: git ls-remote -q origin in /root/go/pkg/mod/cache/vcs/5d1f: exit status 128:`,
		cause:   "The go command ran git to list the repository's tags and branches and git failed; git's own error is printed on the following lines (authentication, missing repository, network).",
		fix:     "Read git's error below this line. For private repositories set GOPRIVATE and configure git credentials; re-run with -x to see the git commands.",
		commands: []string{
			"GOPROXY=direct go mod download -x {module}",
			"go env -w GOPRIVATE={private}",
		},
	},
	{
		id: "vcs-command-failed", title: "Version control command failed", cat: CatVCS, prio: 28,
		pattern: `(?:git|hg|svn|bzr|fossil) (?:fetch|clone|init|remote|rev-parse|log|cat-file|tag|config|checkout|archive|pull|update)\b.*: exit status (?P<status>\d+)`,
		needles: []string{"exit status"},
		ctx:     true,
		example: `go: example.com/lib@v1.4.0: git fetch -f origin refs/heads/*:refs/heads/* refs/tags/*:refs/tags/* in /root/go/pkg/mod/cache/vcs/5d1f: exit status 128:`,
		cause:   "A version control command the go command ran in its VCS cache failed; the tool's own error follows. A corrupted VCS cache, lost access, or a force-pushed/deleted ref are common causes.",
		fix:     "Read the tool's error below this line. If the cached clone is corrupt, clean the module cache (which includes the VCS cache) and retry.",
		commands: []string{
			"GOPROXY=direct go mod download -x {module}",
			"go clean -modcache",
		},
	},
	{
		id: "unrecognized-import-path", title: "Unrecognized import path", cat: CatVCS, prio: 56,
		pattern: `unrecognized import path "(?P<path>[^"]+)"`,
		needles: []string{"unrecognized import path"},
		example: `go: example.com/lib@v1.4.0: unrecognized import path "example.com/lib": parse https://example.com/lib?go-get=1: no go-import meta tags ()`,
		cause:   "To fetch directly, the go command requests https://<import path>?go-get=1 to find the repository (go-import meta tag), and that request failed or the page has no go-import tag.",
		fix:     "Check the import path; make the host serve the go-import meta tag (or use a path with a VCS suffix such as .git). For hosts without HTTPS list them in GOINSECURE.",
		commands: []string{
			"GOPROXY=direct go mod download -x {module}",
			"go env GOPRIVATE GOINSECURE",
		},
	},

	// -------------------------------------------------------------- network
	{
		id: "tls-unknown-authority", title: "TLS: certificate signed by unknown authority", cat: CatNetwork, prio: 85,
		pattern: `x509: certificate signed by unknown authority|x509: .*certificate is not trusted`,
		needles: []string{"x509: "},
		ctx:     true,
		example: `go: example.com/lib@v1.4.0: Get "https://goproxy.corp.example.com/example.com/lib/@v/v1.4.0.info": tls: failed to verify certificate: x509: certificate signed by unknown authority`,
		cause:   "The server's certificate chain does not lead to a CA this machine trusts. Usually a TLS-intercepting corporate proxy or an internal proxy with a private CA, whose CA certificate is not installed in the system trust store (or container image).",
		fix:     "Install the organisation's CA certificate in the system trust store of this machine or image (the go command uses the system roots; on Linux SSL_CERT_FILE/SSL_CERT_DIR can point to a bundle that includes it). Do not disable verification.",
		commands: []string{
			"openssl s_client -connect {host}:443 -servername {host} -showcerts",
			"modproxy doctor",
		},
	},
	{
		id: "tls-hostname-mismatch", title: "TLS: certificate is for another host", cat: CatNetwork, prio: 85,
		pattern: `x509: certificate is (?:valid for .+, not (?P<host>\S+)|not valid for any names, but wanted to match (?P<wanted>\S+))`,
		needles: []string{"x509: certificate is"},
		ctx:     true,
		example: `go: example.com/lib@v1.4.0: Get "https://goproxy.corp.example.com/example.com/lib/@v/list": tls: failed to verify certificate: x509: certificate is valid for ingress.example.net, not goproxy.corp.example.com`,
		cause:   "The server presented a certificate for different host names than the one requested: a wrong GOPROXY host, DNS pointing to the wrong server, or an intercepting proxy.",
		fix:     "Check the host name in GOPROXY/the import path and where it resolves; fix the server's certificate to include the name.",
		commands: []string{
			"go env GOPROXY",
			"openssl s_client -connect {host}:443 -servername {host}",
		},
	},
	{
		id: "tls-expired", title: "TLS: certificate expired or not yet valid", cat: CatNetwork, prio: 85,
		pattern: `x509: certificate has expired or is not yet valid`,
		needles: []string{"x509: certificate has expired"},
		ctx:     true,
		example: `go: example.com/lib@v1.4.0: Get "https://goproxy.corp.example.com/example.com/lib/@v/list": tls: failed to verify certificate: x509: certificate has expired or is not yet valid: current time 2025-03-01T10:00:00Z is after 2025-02-28T23:59:59Z`,
		cause:   "The server's certificate is outside its validity period, or this machine's clock is wrong (common in VMs and containers after suspend).",
		fix:     "Check the system clock; if it is right, the server's certificate must be renewed.",
		commands: []string{
			"date -u",
			"openssl s_client -connect {host}:443 -servername {host}",
		},
	},
	{
		id: "tls-legacy-cn", title: "TLS: certificate relies on legacy Common Name", cat: CatNetwork, prio: 85,
		pattern: `x509: certificate relies on legacy Common Name field`,
		needles: []string{"legacy common name"},
		ctx:     true,
		example: `go: example.com/lib@v1.4.0: Get "https://goproxy.corp.example.com/example.com/lib/@v/list": tls: failed to verify certificate: x509: certificate relies on legacy Common Name field, use SANs instead`,
		cause:   "The server's certificate names the host only in the Common Name; Go requires Subject Alternative Names.",
		fix:     "Reissue the server certificate with the host name in the SAN extension.",
		commands: []string{
			"openssl s_client -connect {host}:443 -servername {host}",
		},
	},
	{
		id: "dns-no-such-host", title: "DNS: no such host", cat: CatNetwork, prio: 85,
		pattern: `lookup (?P<host>[^\s:]+)(?: on [^\s]+)?: no such host`,
		needles: []string{"no such host"},
		ctx:     true,
		example: `go: example.com/lib@v1.4.0: Get "https://goproxy.corp.example.com/example.com/lib/@v/v1.4.0.info": dial tcp: lookup goproxy.corp.example.com on 127.0.0.53:53: no such host`,
		cause:   "The host name does not resolve: a typo in GOPROXY/GOSUMDB or the import path, an internal host queried outside the VPN, or DNS not configured in the build container.",
		fix:     "Check the host name and the DNS configuration of this environment (VPN, /etc/resolv.conf, container DNS).",
		commands: []string{
			"go env GOPROXY GOSUMDB",
			"nslookup {host}",
			"modproxy doctor",
		},
	},
	{
		id: "dns-temporary-failure", title: "DNS: lookup failed (server or timeout)", cat: CatNetwork, prio: 86,
		pattern: `lookup (?P<host>[^\s:]+)(?: on [^\s]+)?: (?:server misbehaving|[Tt]emporary failure in name resolution|read udp \S+: i/o timeout|no answer from DNS server|dial udp \S+: )`,
		needles: []string{"lookup "},
		ctx:     true,
		example: `go: example.com/lib@v1.4.0: Get "https://proxy.example.com/example.com/lib/@v/list": dial tcp: lookup proxy.example.com on 10.0.0.2:53: server misbehaving`,
		cause:   "The DNS resolver failed or timed out: the resolver is down or unreachable, or network access is restricted in this environment.",
		fix:     "Check the resolver configuration and network access; retry. " + netFix,
		commands: []string{
			"nslookup {host}",
			"modproxy doctor",
		},
	},
	{
		id: "proxyconnect-failed", title: "HTTP proxy connection failed (proxyconnect)", cat: CatNetwork, prio: 90,
		pattern: `proxyconnect tcp: (?P<reason>.*)`,
		needles: []string{"proxyconnect tcp"},
		example: `go: example.com/lib@v1.4.0: Get "https://proxy.example.com/example.com/lib/@v/list": proxyconnect tcp: dial tcp 10.1.2.3:3128: connect: connection refused`,
		cause:   "The go command sends its requests through the HTTP proxy named by HTTPS_PROXY/HTTP_PROXY, and connecting to that proxy failed (reason follows): the proxy variable is stale or wrong, or the proxy is down.",
		fix:     "Check HTTPS_PROXY/HTTP_PROXY/NO_PROXY in this environment; unset them if no proxy is needed, or add internal hosts to NO_PROXY.",
		commands: []string{
			"env | grep -i _proxy",
			"modproxy doctor",
		},
	},
	{
		id: "http-response-to-https", title: "Server gave HTTP response to HTTPS client", cat: CatNetwork, prio: 80,
		pattern: `server gave HTTP response to HTTPS client`,
		needles: []string{"http response to https client"},
		example: `go: example.com/lib@v1.4.0: Get "https://goproxy.corp.example.com:8080/example.com/lib/@v/list": http: server gave HTTP response to HTTPS client`,
		cause:   "The URL uses https:// but the server speaks plain HTTP on that port.",
		fix:     "Use the http:// scheme for that proxy in GOPROXY if plain HTTP is intended (only on trusted networks), or enable TLS on the server. For direct fetches from such hosts use GOINSECURE.",
		commands: []string{
			"go env GOPROXY GOINSECURE",
		},
	},
	{
		id: "tls-handshake-timeout", title: "TLS handshake timeout", cat: CatNetwork, prio: 76,
		pattern: `TLS handshake timeout`,
		needles: []string{"tls handshake timeout"},
		ctx:     true,
		example: `go: example.com/lib@v1.4.0: Get "https://proxy.example.com/example.com/lib/@v/v1.4.0.zip": net/http: TLS handshake timeout`,
		cause:   "The TCP connection was made but the TLS handshake did not finish in time: a slow or overloaded server, packet loss, or a firewall/proxy interfering with TLS.",
		fix:     netFix,
		commands: []string{
			"modproxy doctor",
		},
	},
	{
		id: "net-io-timeout", title: "Network i/o timeout", cat: CatNetwork, prio: 75,
		pattern: `(?:dial tcp (?P<addr>\S+): )?i/o timeout`,
		needles: []string{"i/o timeout"},
		ctx:     true,
		example: `go: example.com/lib@v1.4.0: Get "https://proxy.example.com/example.com/lib/@v/list": dial tcp 203.0.113.10:443: i/o timeout`,
		cause:   "Connecting to (or reading from) the server timed out: a firewall silently dropping traffic, no route to the internet in this environment, or a server that is down.",
		fix:     netFix,
		commands: []string{
			"go env GOPROXY",
			"modproxy doctor",
		},
	},
	{
		id: "net-connection-refused", title: "Connection refused", cat: CatNetwork, prio: 75,
		pattern: `(?:dial tcp (?P<addr>\S+): )?connect: connection refused`,
		needles: []string{"connection refused"},
		ctx:     true,
		example: `go: example.com/lib@v1.4.0: Get "http://localhost:3000/example.com/lib/@v/list": dial tcp 127.0.0.1:3000: connect: connection refused`,
		cause:   "Nothing is listening on the address and port the go command connected to: the proxy in GOPROXY is not running, or the host/port is wrong.",
		fix:     "Start the proxy or fix the address in GOPROXY. " + netFix,
		commands: []string{
			"go env GOPROXY",
			"modproxy doctor",
		},
	},
	{
		id: "net-connection-reset", title: "Connection reset by peer", cat: CatNetwork, prio: 75,
		pattern: `connection reset by peer|forcibly closed by the remote host`,
		needles: []string{"connection reset by peer", "forcibly closed"},
		ctx:     true,
		example: `go: example.com/lib@v1.4.0: Get "https://proxy.example.com/example.com/lib/@v/v1.4.0.zip": read tcp 10.0.0.5:51234->203.0.113.10:443: read: connection reset by peer`,
		cause:   "The server or something in between (firewall, load balancer, intercepting proxy) abruptly closed the connection.",
		fix:     netFix,
		commands: []string{
			"modproxy doctor",
		},
	},
	{
		id: "net-unreachable", title: "Network unreachable / no route to host", cat: CatNetwork, prio: 75,
		pattern: `network is unreachable|no route to host`,
		needles: []string{"network is unreachable", "no route to host"},
		ctx:     true,
		example: `go: example.com/lib@v1.4.0: Get "https://proxy.example.com/example.com/lib/@v/list": dial tcp [2001:db8::10]:443: connect: network is unreachable`,
		cause:   "This machine has no route to the server: no network in the sandbox or container, a VPN not connected, or IPv6 addresses without IPv6 connectivity.",
		fix:     netFix,
		commands: []string{
			"modproxy doctor",
		},
	},
	{
		id: "net-client-timeout", title: "HTTP request timed out", cat: CatNetwork, prio: 74,
		pattern: `Client\.Timeout exceeded|context deadline exceeded|timeout awaiting response headers`,
		needles: []string{"client.timeout exceeded", "context deadline exceeded", "timeout awaiting response headers"},
		ctx:     true,
		example: `go: example.com/lib@v1.4.0: Get "https://proxy.example.com/example.com/lib/@v/v1.4.0.zip": net/http: request canceled while waiting for connection (Client.Timeout exceeded while awaiting headers)`,
		cause:   "The server did not answer within the client's time limit: an overloaded or stalled proxy, or a very slow network path.",
		fix:     netFix,
		commands: []string{
			"modproxy doctor",
		},
	},
	{
		id: "http2-stream-error", title: "HTTP/2 stream error", cat: CatNetwork, prio: 75,
		pattern: `stream error: stream ID \d+; (?P<code>\w+)`,
		needles: []string{"stream error: stream id"},
		ctx:     true,
		example: `go: example.com/lib@v1.4.0: reading https://proxy.example.com/example.com/lib/@v/v1.4.0.zip: stream error: stream ID 3; INTERNAL_ERROR; received from peer`,
		cause:   "The HTTP/2 stream carrying the download was reset, usually by an intermediary (load balancer or proxy) with a response size or time limit, or by an overloaded server.",
		fix:     "Retry. If it keeps failing on large downloads, try forcing HTTP/1.1 for the go command and raise the intermediary's limits.",
		commands: []string{
			"GODEBUG=http2client=0 go mod download -x {module}",
		},
	},
	{
		id: "unexpected-eof", title: "Unexpected EOF during download", cat: CatNetwork, prio: 55,
		pattern: `unexpected EOF`,
		needles: []string{"unexpected eof"},
		ctx:     true,
		example: `go: example.com/lib@v1.4.0: reading https://proxy.example.com/example.com/lib/@v/v1.4.0.zip: unexpected EOF`,
		cause:   "The connection closed before the whole response arrived: a network interruption, a proxy that cut the transfer, or a truncated file.",
		fix:     "Retry; if it happens again on the same module, check intermediaries for size or time limits. " + netFix,
		commands: []string{
			"go mod download -x {module}",
			"modproxy doctor",
		},
	},

	// ---------------------------------------------------------------- local
	{
		id: "modcache-lock", title: "Cannot lock a module cache file", cat: CatLocal, prio: 80,
		pattern: `(?i)\block\b.*: (?:resource temporarily unavailable|no locks available|function not implemented|operation not supported|inode for file changed since last lock or rlock)`,
		needles: []string{"lock"},
		ctx:     true,
		example: `go: example.com/lib@v1.4.0: Lock /home/ci/go/pkg/mod/cache/download/example.com/lib/@v/v1.4.0.lock: no locks available`,
		cause:   "The go command locks files in the module cache so concurrent go commands can share it; the file system does not support those locks (network file systems such as NFS, some container volume drivers).",
		fix:     "Put the module cache on a local disk by pointing GOMODCACHE at a local directory.",
		commands: []string{
			"go env GOMODCACHE",
			"go env -w GOMODCACHE=$HOME/.cache/go-mod",
		},
	},
	{
		id: "modcache-permission-denied", title: "Permission denied in the module cache", cat: CatLocal, prio: 80,
		pattern: `(?i)(?:pkg[/\\]mod|module cache|GOMODCACHE).*(?:permission denied|access is denied)|(?:permission denied|access is denied).*pkg[/\\]mod`,
		needles: []string{"permission denied", "access is denied"},
		ctx:     true,
		example: `go: example.com/lib@v1.4.0: mkdir /go/pkg/mod/cache/download/example.com: permission denied`,
		cause:   "The module cache (or part of it) is not writable by this user: it was populated by another user (root in a container, a shared CI cache), or files are read-only by design (the go command writes module files read-only; plain rm -rf cannot delete them).",
		fix:     "Use a module cache owned by the current user, or fix its ownership. To delete it, use `go clean -modcache`; build with -modcacherw if tools need to write into it.",
		commands: []string{
			"go env GOMODCACHE",
			`sudo chown -R "$(id -u):$(id -g)" "$(go env GOMODCACHE)"`,
			"go clean -modcache",
		},
	},
	{
		id: "too-many-open-files", title: "Too many open files", cat: CatLocal, prio: 80,
		pattern: `too many open files`,
		needles: []string{"too many open files"},
		ctx:     true,
		example: `go: example.com/lib@v1.4.0: open /home/ci/go/pkg/mod/cache/download/example.com/lib/@v/v1.4.0.zip: too many open files`,
		cause:   "The process hit the open file descriptor limit (ulimit -n), which is low by default on some systems (notably macOS) for the parallel downloads of large module graphs.",
		fix:     "Raise the file descriptor limit for the shell or service running the go command.",
		commands: []string{
			"ulimit -n 8192",
		},
	},
	{
		id: "no-space-left", title: "No space left on device", cat: CatLocal, prio: 90,
		pattern: `no space left on device|disk quota exceeded`,
		needles: []string{"no space left on device", "disk quota exceeded"},
		ctx:     true,
		example: `go: example.com/lib@v1.4.0: write /home/ci/go/pkg/mod/cache/download/example.com/lib/@v/v1.4.0.zip: no space left on device`,
		cause:   "The disk (or quota) holding the module cache, build cache or temporary directory is full.",
		fix:     "Free space: clean the module and build caches, or point GOMODCACHE/GOCACHE/GOTMPDIR at a larger disk.",
		commands: []string{
			`df -h "$(go env GOMODCACHE)"`,
			"go clean -modcache",
			"go clean -cache",
		},
	},
	{
		id: "modcache-not-configured", title: "Module cache location invalid", cat: CatLocal, prio: 70,
		pattern: `(?:GOMODCACHE|GOPATH) entry is relative; must be absolute path|module cache not found: neither GOMODCACHE nor GOPATH is set|could not create module cache: "[^"]*" is not a directory`,
		needles: []string{"entry is relative", "module cache not found", "is not a directory"},
		example: `go: GOMODCACHE entry is relative; must be absolute path: "cache/mod".`,
		cause:   "The module cache location is unusable: GOMODCACHE (or GOPATH, which it defaults from) is relative, empty with no home directory to default to, or points at a file.",
		fix:     "Set GOMODCACHE (or GOPATH) to an absolute directory path; in containers make sure HOME or GOPATH is set.",
		commands: []string{
			"go env GOMODCACHE GOPATH",
			"go env -w GOMODCACHE=$HOME/go/pkg/mod",
		},
	},
	{
		id: "zip-not-valid", title: "Downloaded module zip is not a valid zip file", cat: CatLocal, prio: 60,
		pattern: `zip: not a valid zip file|zip: checksum error|zip: unsupported compression algorithm`,
		needles: []string{"zip: "},
		example: `go: example.com/lib@v1.4.0: zip: not a valid zip file`,
		cause:   "The module zip in the cache or from the proxy is corrupt or not a zip at all: an interrupted download, or a proxy/captive portal that returned an HTML page instead of the file.",
		fix:     "Remove the broken download (`modproxy clean --module M@V` removes just that version; `go clean -modcache` the whole cache) and download again; if it repeats, check what the proxy returns for the .zip URL.",
		commands: []string{
			"{clean}",
			"go mod download -x {module}",
		},
	},
	{
		id: "zip-too-large", title: "Module zip too large", cat: CatLocal, prio: 60,
		pattern: `downloaded zip file too large|module zip file is too large|total uncompressed size of module contents too large|invalid zip file: .*too large`,
		needles: []string{"too large"},
		example: `go: example.com/lib@v1.4.0: downloaded zip file too large`,
		cause:   "The module's zip exceeds the go command's 500 MB limit (compressed or uncompressed), typically because the repository commits large binaries or datasets.",
		fix:     "The module cannot be used through module downloads as published: ask the maintainers to exclude large files (a nested go.mod isolates a directory), use an older version, or point a replace directive at a local checkout.",
		commands: []string{
			"go list -m -versions {path}",
		},
	},
	{
		id: "module-source-too-large", title: "Module source tree too large", cat: CatLocal, prio: 60,
		pattern: `module source tree too large|(?:go\.mod|LICENSE) file too large \(max size`,
		needles: []string{"too large"},
		example: `go: example.com/lib@v1.4.0: create zip: module source tree too large (max size is 524288000 bytes)`,
		cause:   "Creating the module zip from the repository (a direct fetch) failed because the module's files exceed the 500 MB limit (or go.mod/LICENSE exceed theirs).",
		fix:     "Ask the maintainers to move large files out of the module (a nested go.mod excludes a directory), use another version, or use a replace directive pointing at a local checkout.",
		commands: []string{
			"go list -m -versions {path}",
		},
	},
}
