package explain

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// want is one expected finding: catalog ID, 1-based line, extracted module.
type want struct {
	id     string
	line   int
	module string
}

// goldenSamples lists, for every file in testdata/samples, every finding
// Explain must report for it, in order. Files are named after the catalog
// entry they demonstrate (optionally with a "-variant" suffix); noise lines
// around the errors must not produce findings.
var goldenSamples = map[string][]want{
	"ambiguous-import":                    {{"ambiguous-import", 2, "example.com/cloud@v0.34.0"}},
	"cannot-find-module":                  {{"cannot-find-module", 3, ""}},
	"checksum-mismatch":                   {{"checksum-mismatch", 3, "example.com/lib@v1.4.0"}},
	"checksum-mismatch-modcache":          {{"checksum-mismatch", 2, "example.com/lib@v1.2.3"}},
	"deprecated":                          {{"deprecated", 3, "example.com/oldlib"}},
	"dns-no-such-host":                    {{"dns-no-such-host", 2, "example.com/lib@v1.4.0"}},
	"dns-temporary-failure":               {{"dns-temporary-failure", 2, "example.com/lib@v1.4.0"}},
	"found-but-no-package":                {{"found-but-no-package", 2, "example.com/lib@v1.4.0"}},
	"git-could-not-read-remote":           {{"git-ls-remote-failed", 2, "git.example.com/team/lib@v1.2.0"}, {"git-could-not-read-remote", 4, "git.example.com/team/lib@v1.2.0"}},
	"git-could-not-read-username":         {{"git-ls-remote-failed", 2, "git.example.com/team/lib@v1.2.0"}, {"git-could-not-read-username", 3, "git.example.com/team/lib@v1.2.0"}},
	"git-host-key-verification":           {{"git-ls-remote-failed", 2, "git.example.com/team/lib@v1.2.0"}, {"git-host-key-verification", 3, "git.example.com/team/lib@v1.2.0"}},
	"git-ls-remote-failed":                {{"git-ls-remote-failed", 2, "example.com/lib"}},
	"git-repo-not-found":                  {{"git-ls-remote-failed", 2, "github.com/acme-corp/missing@latest"}, {"git-repo-not-found", 3, "github.com/acme-corp/missing@latest"}},
	"git-ssh-permission-denied":           {{"git-ls-remote-failed", 2, "git.example.com/team/lib@v1.2.0"}, {"git-ssh-permission-denied", 3, "git.example.com/team/lib@v1.2.0"}},
	"git-terminal-prompts-disabled":       {{"git-ls-remote-failed", 2, "git.example.com/team/lib@v1.2.0"}, {"git-terminal-prompts-disabled", 3, "git.example.com/team/lib@v1.2.0"}},
	"git-unable-to-access":                {{"git-ls-remote-failed", 2, "git.example.com/team/lib@v1.2.0"}, {"git-unable-to-access", 3, "git.example.com/team/lib@v1.2.0"}},
	"go-mod-not-found":                    {{"go-mod-not-found", 2, ""}},
	"go-mod-parse-error":                  {{"go-mod-parse-error", 2, ""}},
	"gomod-checksum-mismatch":             {{"gomod-checksum-mismatch", 3, "example.com/lib@v1.4.0"}},
	"gomod-requires-newer-go":             {{"gomod-requires-newer-go", 2, ""}},
	"gomod-updates-needed":                {{"gomod-updates-needed", 2, ""}},
	"gomod-updates-readonly":              {{"gomod-updates-readonly", 2, ""}},
	"gopath-mode-path-version":            {{"gopath-mode-path-version", 2, ""}},
	"goprivate-noproxy":                   {{"goprivate-noproxy", 2, "corp.example.com/platform/auth@v1.2.0"}},
	"goproxy-empty-list":                  {{"goproxy-empty-list", 2, "example.com/tools/cmd/fmtx@latest"}},
	"goproxy-off":                         {{"goproxy-off", 2, "example.com/lib@v1.4.0"}},
	"gosum-updates-readonly":              {{"gosum-updates-readonly", 3, ""}},
	"gosumdb-malformed":                   {{"gosumdb-malformed", 2, "example.com/lib@v1.4.0"}},
	"govcs-disallowed":                    {{"govcs-disallowed", 2, "example.com/legacy/lib@v1.0.0"}},
	"http-response-to-https":              {{"http-response-to-https", 2, "example.com/lib@v1.4.0"}},
	"http2-stream-error":                  {{"http2-stream-error", 3, "example.com/bigmodule@v3.2.0+incompatible"}},
	"incompatible-not-allowed":            {{"incompatible-not-allowed", 2, "example.com/lib@v1.2.0+incompatible"}},
	"inconsistent-vendoring":              {{"inconsistent-vendoring", 2, "example.com/lib@v1.4.0"}},
	"insecure-flag-removed":               {{"insecure-flag-removed", 2, ""}},
	"invalid-proxy-url":                   {{"invalid-proxy-url", 2, "example.com/lib@v1.4.0"}},
	"invalid-pseudo-version":              {{"invalid-pseudo-version", 2, "example.com/lib@v0.0.0-20240102030405-0123456789ab"}},
	"invalid-version-unknown-revision":    {{"invalid-version-unknown-revision", 2, "example.com/lib@v1.9.9"}},
	"major-version-mismatch-query":        {{"major-version-mismatch", 2, "example.com/lib/v3@v2.0.1"}},
	"major-version-mismatch":              {{"go-mod-parse-error", 2, ""}, {"major-version-mismatch", 3, "example.com/lib@v2.3.0"}},
	"major-version-suffix-required":       {{"major-version-suffix-required", 2, "example.com/lib@v2.0.0"}},
	"malformed-module-path":               {{"malformed-module-path", 4, ""}},
	"missing-gosum-entry":                 {{"missing-gosum-entry", 3, "example.com/c@v0.1.0"}},
	"missing-gosum-gomod":                 {{"missing-gosum-gomod", 3, "github.com/stretchr/testify@v1.9.0"}},
	"missing-gosum-package":               {{"missing-gosum-package", 2, ""}},
	"modcache-lock-list":                  {{"modcache-lock", 2, "example.com/BigCorp/lib"}},
	"modcache-lock":                       {{"modcache-lock", 2, "example.com/lib@v1.4.0"}},
	"modcache-not-configured":             {{"modcache-not-configured", 2, ""}},
	"modcache-permission-denied-rm":       {{"modcache-permission-denied", 2, "example.com/lib@v1.4.0"}},
	"modcache-permission-denied":          {{"modcache-permission-denied", 2, ""}},
	"module-path-mismatch":                {{"module-path-mismatch", 4, "github.com/fork/lib@v1.2.0"}},
	"module-requires-newer-go":            {{"module-requires-newer-go", 3, "example.com/lib@v1.4.0"}},
	"module-source-too-large":             {{"module-source-too-large", 2, "example.com/monorepo@v4.9.9+incompatible"}},
	"net-client-timeout":                  {{"net-client-timeout", 2, "example.com/lib@v1.4.0"}},
	"net-connection-refused":              {{"net-connection-refused", 2, "example.com/lib@v1.4.0"}},
	"net-connection-refused-toolchain":    {{"net-connection-refused", 3, "golang.org/toolchain@v0.0.1-go1.24.1.linux-amd64"}},
	"net-connection-reset":                {{"net-connection-reset", 2, "example.com/lib@v1.4.0"}},
	"net-io-timeout":                      {{"net-io-timeout", 2, "example.com/lib@v1.4.0"}},
	"net-unreachable":                     {{"net-unreachable", 2, "example.com/lib@v1.4.0"}},
	"no-main-module":                      {{"no-main-module", 2, ""}},
	"no-matching-versions":                {{"no-matching-versions", 2, "example.com/lib/v3"}},
	"no-required-module":                  {{"no-required-module", 2, ""}},
	"no-space-left":                       {{"no-space-left", 3, "example.com/lib@v1.4.0"}},
	"non-major-module-path":               {{"non-major-module-path", 2, "example.com/lib/v2@v2.1.0"}},
	"note-module-requires-go":             {{"note-module-requires-go", 4, "example.com/lib@v1.4.0"}},
	"post-v1-module-path":                 {{"post-v1-module-path", 2, "example.com/lib@v2.0.0"}},
	"proxy-forbidden":                     {{"proxy-forbidden", 3, "example.com/payments/sdk@v0.9.1"}},
	"proxy-not-available":                 {{"proxy-not-available", 2, "example.com/payments/sdk@v0.9.1"}},
	"proxy-not-available-toolchain":       {{"proxy-not-available", 3, "golang.org/toolchain@v0.0.1-go1.24.1.linux-amd64"}},
	"proxy-gone":                          {{"proxy-gone", 4, "github.com/acme-corp/billing@v1.3.0"}, {"server-response-not-found", 5, "github.com/acme-corp/billing@v1.3.0"}, {"git-terminal-prompts-disabled", 6, "github.com/acme-corp/billing@v1.3.0"}},
	"proxy-list-not-found":                {{"proxy-list-not-found", 3, "corp.example.com/platform/widgets"}},
	"proxy-not-found-json":                {{"proxy-not-found", 5, "github.com/Azure/go-autorest/autorest@v0.11.99"}},
	"proxy-not-found":                     {{"proxy-not-found", 4, "example.com/lib/v2@v2.0.0-rc.1"}},
	"proxy-not-found-version":             {{"proxy-not-found", 2, "github.com/google/uuid@v1.99.0"}, {"invalid-version-unknown-revision", 3, "github.com/google/uuid@v1.99.0"}},
	"proxy-rate-limited":                  {{"proxy-rate-limited", 4, "github.com/spf13/cobra@v1.8.0"}},
	"proxy-server-error":                  {{"proxy-server-error", 3, "github.com/prometheus/client_golang@v1.19.0"}},
	"proxy-unauthorized":                  {{"proxy-unauthorized", 3, "corp.example.com/platform/auth@v1.2.0"}},
	"proxyconnect-failed":                 {{"proxyconnect-failed", 2, "example.com/lib@v1.4.0"}},
	"replace-dir-missing":                 {{"replace-dir-missing", 2, "example.com/lib@v1.2.3"}},
	"replace-dir-missing-gomod":           {{"replace-dir-missing", 2, "example.com/lib@v1.2.3"}},
	"replace-dir-missing-tidy":            {{"replace-dir-missing", 3, "example.com/lib@v1.2.3"}},
	"retracted":                           {{"retracted", 3, "example.com/lib@v1.5.0"}},
	"security-error":                      {{"security-error", 4, ""}},
	"server-response-not-found":           {{"proxy-not-found", 3, "example.com/tools/gen@v0.3.0"}, {"server-response-not-found", 5, "example.com/tools/gen@v0.3.0"}, {"git-repo-not-found", 6, "example.com/tools/gen@v0.3.0"}},
	"sumdb-checksum-mismatch-gomod":       {{"sumdb-checksum-mismatch", 2, "example.com/quote@v1.5.2"}},
	"sumdb-checksum-mismatch":             {{"sumdb-checksum-mismatch", 3, "example.com/lib@v1.4.0"}},
	"sumdb-checksum-missing":              {{"sumdb-checksum-missing", 2, "example.com/lib@v1.4.0"}},
	"sumdb-disabled-toolchain":            {{"sumdb-disabled-toolchain", 3, "golang.org/toolchain@v0.0.1-go1.23.4.linux-amd64"}},
	"sumdb-lookup-not-found-gomod":        {{"sumdb-lookup-not-found", 3, "git.example.com/team/lib@v0.4.0"}, {"invalid-version-unknown-revision", 4, "git.example.com/team/lib@v0.4.0"}},
	"sumdb-lookup-not-found":              {{"sumdb-lookup-not-found", 3, "corp.example.com/platform/auth@v1.2.0"}, {"server-response-not-found", 5, "corp.example.com/platform/auth@v1.2.0"}},
	"sumdb-unreachable":                   {{"sumdb-unreachable", 2, "example.com/lib@v1.2.3"}},
	"sumdb-unreachable-toolchain":         {{"sumdb-unreachable", 3, "golang.org/toolchain@v0.0.1-go1.24.1.linux-amd64"}},
	"sumdb-verify-failed":                 {{"sumdb-verify-failed", 3, "example.com/lib@v1.4.0"}},
	"tls-expired":                         {{"tls-expired", 2, "example.com/lib@v1.4.0"}},
	"tls-handshake-timeout":               {{"tls-handshake-timeout", 2, "example.com/lib@v1.4.0"}},
	"tls-hostname-mismatch":               {{"tls-hostname-mismatch", 2, "example.com/lib@v1.4.0"}},
	"tls-legacy-cn":                       {{"tls-legacy-cn", 2, "example.com/lib@v1.4.0"}},
	"tls-unknown-authority":               {{"tls-unknown-authority", 3, "example.com/lib@v1.4.0"}},
	"too-many-open-files":                 {{"too-many-open-files", 2, "example.com/lib@v1.4.0"}},
	"toolchain-invalid":                   {{"toolchain-invalid", 2, ""}},
	"toolchain-not-available":             {{"toolchain-not-available", 3, ""}},
	"toolchain-not-available-goproxy-off": {{"toolchain-not-available", 3, ""}},
	"toolchain-not-in-path":               {{"toolchain-not-in-path", 2, ""}},
	"unexpected-eof":                      {{"unexpected-eof", 2, "example.com/lib@v1.4.0"}},
	"unknown-revision":                    {{"unknown-revision", 4, "example.com/tui/bubble/v2@v2.9.0"}},
	"unrecognized-import-path":            {{"unrecognized-import-path", 2, "example.com/lib@v1.4.0"}},
	"version-missing-v":                   {{"go-mod-parse-error", 2, ""}, {"version-missing-v", 3, "example.com/lib@1.2.3"}},
	"version-missing-v-edit":              {{"go-mod-parse-error", 2, ""}, {"version-missing-v", 3, "example.com/lib@1.2.3"}},
	"vcs-command-failed":                  {{"vcs-command-failed", 2, "example.com/lib@v1.4.0"}},
	"vcs-not-installed":                   {{"vcs-not-installed", 2, "example.com/lib@v1.4.0"}},
	"vendor-lookup-disabled":              {{"vendor-lookup-disabled", 2, ""}},
	"zip-not-valid":                       {{"zip-not-valid", 2, "example.com/lib@v1.4.0"}},
	"zip-too-large":                       {{"zip-too-large", 2, "example.com/datasets@v1.0.0"}},
}

func readSample(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "samples", name+".txt"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSamplesGolden(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "samples", "*.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != len(goldenSamples) {
		t.Errorf("%d sample files, %d golden entries", len(files), len(goldenSamples))
	}
	x := New()
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".txt")
		t.Run(name, func(t *testing.T) {
			exp, ok := goldenSamples[name]
			if !ok {
				t.Fatalf("sample %s has no golden entry", name)
			}
			fs, err := x.Explain(strings.NewReader(string(readSample(t, name))))
			if err != nil {
				t.Fatal(err)
			}
			var got []want
			for _, f := range fs {
				got = append(got, want{f.ID, f.Line, f.Module})
			}
			if !slices.Equal(got, exp) {
				t.Errorf("findings:\n got  %v\n want %v", got, exp)
			}
		})
	}
}

// TestEveryEntryHasSample makes sure the catalog cannot grow untested: each
// entry needs a sample named after it whose golden findings include the
// entry, and running that sample must produce it.
func TestEveryEntryHasSample(t *testing.T) {
	x := New()
	for _, e := range Catalog() {
		found := false
		for name, exp := range goldenSamples {
			if name != e.ID && !strings.HasPrefix(name, e.ID+"-") {
				continue
			}
			for _, w := range exp {
				if w.id == e.ID {
					found = true
				}
			}
			fs, err := x.Explain(strings.NewReader(string(readSample(t, name))))
			if err != nil {
				t.Fatal(err)
			}
			if !slices.ContainsFunc(fs, func(f Finding) bool { return f.ID == e.ID }) {
				t.Errorf("sample %s does not produce %s", name, e.ID)
			}
		}
		if !found {
			t.Errorf("catalog entry %s has no sample testdata/samples/%s.txt with a golden finding for it", e.ID, e.ID)
		}
	}
}

// TestRealSampleAdvice checks what the explanations of real go output say,
// not only which entry they come from: each case is a go command output
// that an earlier catalog explained wrongly or only half.
func TestRealSampleAdvice(t *testing.T) {
	x := New()
	type check struct {
		id      string   // the finding to look at
		has     []string // each must occur in its cause, fix or commands
		not     []string // none may occur in them
		cmds    []string // commands it must list
		notCmds []string // commands it must not list
	}
	for _, tc := range []struct {
		sample string
		checks []check
	}{
		{"replace-dir-missing", []check{{id: "replace-dir-missing", has: []string{"replace directive"}, cmds: []string{"go mod edit -dropreplace=example.com/lib"}}}},
		{"replace-dir-missing-tidy", []check{{id: "replace-dir-missing", cmds: []string{"go mod edit -dropreplace=example.com/lib"}}}},
		{"replace-dir-missing-gomod", []check{{id: "replace-dir-missing", has: []string{"replace directive"}, cmds: []string{"go mod edit -dropreplace=example.com/lib"}}}},
		{"version-missing-v", []check{{id: "version-missing-v", has: []string{`"v"`, "go.mod"}, not: []string{"GOPRIVATE"}, cmds: []string{"go mod tidy"}}}},
		{"version-missing-v-edit", []check{{id: "version-missing-v", has: []string{`"v"`}, cmds: []string{"go mod tidy"}}}},
		{"proxy-not-available", []check{{id: "proxy-not-available", has: []string{"not available", "policy"}, not: []string{"netrc", "GOAUTH", "credentials sent"}}}},
		{"proxy-not-available-toolchain", []check{{id: "proxy-not-available", has: []string{"go1.24.1", "GOTOOLCHAIN"}, not: []string{"netrc"}, cmds: []string{"GOTOOLCHAIN=local go version"}}}},
		{"net-connection-refused-toolchain", []check{{id: "net-connection-refused", has: []string{"go1.24.1", "golang.org/toolchain", "GOTOOLCHAIN"}, cmds: []string{"go env GOTOOLCHAIN GOPROXY GOSUMDB", "GOTOOLCHAIN=local go version"}}}},
		{"toolchain-not-available-goproxy-off", []check{{id: "toolchain-not-available", has: []string{"GOPROXY=off", "GOTOOLCHAIN"}, cmds: []string{"go env GOTOOLCHAIN GOPROXY"}}}},
		{"sumdb-unreachable", []check{{id: "sumdb-unreachable", has: []string{"GOSUMDB", "connection refused"}, not: []string{"address in GOPROXY", "GOSUMDB=off go"}, cmds: []string{"go env GOSUMDB GONOSUMDB GOPROXY"}}}},
		{"sumdb-unreachable-toolchain", []check{{id: "sumdb-unreachable", has: []string{"GOSUMDB", "GOTOOLCHAIN"}, not: []string{"address in GOPROXY"}, cmds: []string{"GOTOOLCHAIN=local go version"}}}},
		{"proxy-not-found-version", []check{
			{id: "proxy-not-found", not: []string{"GOPRIVATE=github.com/google"}, cmds: []string{"go list -m -versions github.com/google/uuid"}},
			{id: "invalid-version-unknown-revision", not: []string{"GOPRIVATE=github.com/google"}},
		}},
		{"checksum-mismatch-modcache", []check{{id: "checksum-mismatch", notCmds: []string{"go clean -modcache"}, cmds: []string{"modproxy clean --module example.com/lib@v1.2.3", "go mod verify"}}}},
	} {
		t.Run(tc.sample, func(t *testing.T) {
			fs, err := x.Explain(strings.NewReader(string(readSample(t, tc.sample))))
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range tc.checks {
				i := slices.IndexFunc(fs, func(f Finding) bool { return f.ID == c.id })
				if i < 0 {
					t.Errorf("no %s finding in %v", c.id, fs)
					continue
				}
				f := fs[i]
				text := f.Cause + "\n" + f.Fix + "\n" + strings.Join(f.Commands, "\n")
				for _, s := range c.has {
					if !strings.Contains(text, s) {
						t.Errorf("%s: lacks %q:\n%s", c.id, s, text)
					}
				}
				for _, s := range c.not {
					if strings.Contains(text, s) {
						t.Errorf("%s: says %q:\n%s", c.id, s, text)
					}
				}
				for _, s := range c.cmds {
					if !slices.Contains(f.Commands, s) {
						t.Errorf("%s: commands %q lack %q", c.id, f.Commands, s)
					}
				}
				for _, s := range c.notCmds {
					if slices.Contains(f.Commands, s) {
						t.Errorf("%s: commands %q list %q", c.id, f.Commands, s)
					}
				}
			}
		})
	}
}
