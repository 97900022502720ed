package cli

import (
	"flag"
	"os"
	"regexp"
	"runtime/debug"
	"slices"
	"strings"
	"testing"
)

// walkCommands calls fn for every command of the tree with its path
// ("modproxy gc restore").
func walkCommands(fn func(path string, c *command)) {
	var walk func(prefix string, cmds []*command)
	walk = func(prefix string, cmds []*command) {
		for _, c := range cmds {
			fn(prefix+" "+c.name, c)
			walk(prefix+" "+c.name, c.subs)
		}
	}
	walk("modproxy", commands())
}

func TestParseArgs(t *testing.T) {
	for _, tc := range []struct {
		args    []string
		pos     []string
		json    bool
		exclude string
		err     string
	}{
		{args: []string{"a", "--json"}, pos: []string{"a"}, json: true},
		{args: []string{"--json", "a", "b"}, pos: []string{"a", "b"}, json: true},
		{args: []string{"a", "--exclude", "x.example", "b"}, pos: []string{"a", "b"}, exclude: "x.example"},
		{args: []string{"a", "-exclude=x.example"}, pos: []string{"a"}, exclude: "x.example"},
		// A value is taken as it is, even when it looks like a flag or "--".
		{args: []string{"--exclude", "--json", "a"}, pos: []string{"a"}, exclude: "--json"},
		{args: []string{"--exclude", "--", "a"}, pos: []string{"a"}, exclude: "--"},
		{args: []string{"--", "--json"}, pos: []string{"--json"}},
		{args: []string{"a", "--", "-", "--exclude", "x"}, pos: []string{"a", "-", "--exclude", "x"}},
		{args: []string{"-", "--json"}, pos: []string{"-"}, json: true},
		{args: []string{"--json=false", "a"}, pos: []string{"a"}},
		{args: nil, pos: nil},
		{args: []string{"a", "--bogus"}, err: "flag provided but not defined: -bogus"},
		{args: []string{"a", "--exclude"}, err: "flag needs an argument: -exclude"},
		{args: []string{"a", "-h"}, err: flag.ErrHelp.Error()},
		{args: []string{"a", "--help", "--bogus"}, err: flag.ErrHelp.Error()},
	} {
		fs := flag.NewFlagSet("test", flag.ContinueOnError)
		fs.SetOutput(&strings.Builder{})
		j := fs.Bool("json", false, "")
		ex := fs.String("exclude", "", "")
		pos, err := parseArgs(fs, tc.args)
		if tc.err != "" {
			if err == nil || err.Error() != tc.err {
				t.Errorf("parseArgs(%q): error %v, want %q", tc.args, err, tc.err)
			}
			continue
		}
		if err != nil || !slices.Equal(pos, tc.pos) || *j != tc.json || *ex != tc.exclude {
			t.Errorf("parseArgs(%q) = %q (json %v, exclude %q), %v; want %q (json %v, exclude %q)", tc.args, pos, *j, *ex, err, tc.pos, tc.json, tc.exclude)
		}
	}
}

// TestRequestedHelp: every way of asking for help prints it to standard
// output with exit 0 and nothing on standard error.
func TestRequestedHelp(t *testing.T) {
	walkCommands(func(path string, c *command) {
		words := strings.Fields(path)[1:]
		for _, args := range [][]string{
			append(slices.Clone(words), "-h"),
			append(slices.Clone(words), "--help"),
			append(slices.Clone(words), "-help"),
			append([]string{"help"}, words...),
		} {
			code, stdout, stderr := run(t, nil, args...)
			if code != ExitOK || stderr != "" || !strings.HasPrefix(stdout, "Usage: "+path) {
				t.Errorf("%q: exit %d, stderr %q, stdout %.80q...", args, code, stderr, stdout)
			}
		}
	})
	for _, args := range [][]string{{"help"}, {"-h"}, {"--help"}} {
		if code, stdout, stderr := run(t, nil, args...); code != ExitOK || stderr != "" || !strings.Contains(stdout, "Commands:") {
			t.Errorf("%q: exit %d, stderr %q", args, code, stderr)
		}
	}
	if code, stdout, stderr := run(t, nil, "help", "gc", "nosuch"); code != ExitUsage || stdout != "" || !strings.Contains(stderr, `unknown command "gc nosuch"`) {
		t.Errorf("help of an unknown command: exit %d, %q %q", code, stdout, stderr)
	}
}

// TestBadFlag: a bad flag is one line and the pointer to the command's
// help on standard error, exit 2, for every command; flags after the
// positional arguments are flags too.
func TestBadFlag(t *testing.T) {
	walkCommands(func(path string, c *command) {
		if c.setup == nil {
			return
		}
		words := strings.Fields(path)[1:]
		argsets := [][]string{append(slices.Clone(words), "--bogus")}
		if c.maxArgs != 0 {
			argsets = append(argsets, append(slices.Clone(words), "positional", "--bogus"))
		}
		for _, args := range argsets {
			code, stdout, stderr := run(t, nil, args...)
			want := path + ": flag provided but not defined: -bogus\nrun '" + path + " --help' for usage\n"
			if code != ExitUsage || stdout != "" || stderr != want {
				t.Errorf("%q: exit %d, stdout %q, stderr %q; want 2 and %q", args, code, stdout, stderr, want)
			}
		}
	})
	code, _, stderr := run(t, nil, "gc", "restore", "a", "b")
	if code != ExitUsage || stderr != "modproxy gc restore: unexpected arguments: b\nrun 'modproxy gc restore --help' for usage\n" {
		t.Errorf("too many arguments: %d %q", code, stderr)
	}
	if code, _, stderr := run(t, nil, "frobnicate"); code != ExitUsage || strings.Count(stderr, "\n") != 2 || !strings.Contains(stderr, "modproxy help") {
		t.Errorf("unknown command: %d %q", code, stderr)
	}
}

// TestHelpLayout: a command's own flags come first, then the shared
// configuration flags; the key table is serve's only, the others point
// to it.
func TestHelpLayout(t *testing.T) {
	walkCommands(func(path string, c *command) {
		_, help, _ := run(t, nil, append(strings.Fields(path)[1:], "--help")...)
		own := strings.Index(help, "\nFlags:\n")
		shared := strings.Index(help, "\nConfiguration flags")
		keys := strings.Contains(help, "MODPROXY_CACHE_TTL")
		pointer := strings.Contains(help, "run 'modproxy serve --help'")
		switch {
		case shared < 0:
			if keys || pointer {
				t.Errorf("%s: configuration keys without configuration flags", path)
			}
		case path == "modproxy serve":
			if !keys || own < 0 || own > shared || !strings.Contains(help[own:shared], "-listen") {
				t.Errorf("%s --help: own flags %d, shared %d, key table %v\n%s", path, own, shared, keys, help)
			}
		default:
			if keys || !pointer || (own >= 0 && own > shared) {
				t.Errorf("%s --help: own flags %d, shared %d, key table %v, pointer %v\n%s", path, own, shared, keys, pointer, help)
			}
		}
		if own >= 0 && shared >= 0 && strings.Contains(help[own:shared], "-cache-dir") {
			t.Errorf("%s --help lists -cache-dir among its own flags", path)
		}
	})
	_, gcHelp, _ := run(t, nil, "gc", "--help")
	if own := strings.Index(gcHelp, "\nFlags:\n"); own < 0 || !strings.Contains(gcHelp[own:], "-dry-run") {
		t.Errorf("gc --help lacks its own flags:\n%s", gcHelp)
	}
}

// TestConfigFlagNames: the flags help lists as configuration flags are
// exactly those addConfigFlags defines for every command.
func TestConfigFlagNames(t *testing.T) {
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	addConfigFlags(fs, false)
	fs.VisitAll(func(f *flag.Flag) {
		if !isConfigFlag(f.Name) {
			t.Errorf("%s is defined by addConfigFlags but not a configuration flag for help", f.Name)
		}
	})
	for _, name := range []string{"config", "cache-dir", "sumdb", "log-format", "log-level"} {
		if fs.Lookup(name) == nil {
			t.Errorf("isConfigFlag(%q), but addConfigFlags does not define it", name)
		}
	}
	serve := flag.NewFlagSet("serve", flag.ContinueOnError)
	addConfigFlags(serve, true)
	if isConfigFlag("listen") || serve.Lookup("listen") == nil {
		t.Error("-listen should be serve's own flag")
	}
}

// TestFlagsAfterArguments runs commands with their flags after the
// positional arguments.
func TestFlagsAfterArguments(t *testing.T) {
	env := map[string]string{"MODPROXY_VERIFY_PRIVATE": "private.example"}
	dir := t.TempDir()
	code, _, stderr := run(t, env, "gc", "restore", "no-such-batch", "--cache-dir", dir, "--sumdb", "off")
	if code != ExitUsage || !strings.Contains(stderr, `trash batch "no-such-batch"`) {
		t.Errorf("gc restore ID --flags: exit %d, stderr %q", code, stderr)
	}
	log := dir + "/go.log"
	if err := os.WriteFile(log, []byte("ok\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := run(t, nil, "doctor", "explain", log, "--json")
	if code != ExitOK || !strings.HasPrefix(stdout, "{") {
		t.Errorf("doctor explain FILE --json: exit %d, %q %q", code, stdout, stderr)
	}
	// "--" makes what follows positional: a file named "--json".
	code, _, stderr = run(t, nil, "doctor", "explain", "--", "--json")
	if code != ExitFailure || !strings.Contains(stderr, "--json") {
		t.Errorf("doctor explain -- --json: exit %d, %q", code, stderr)
	}
}

func TestBuildInfo(t *testing.T) {
	rev := "0123456789abcdef0123456789abcdef01234567"
	settings := func(kv ...string) []debug.BuildSetting {
		var out []debug.BuildSetting
		for i := 0; i < len(kv); i += 2 {
			out = append(out, debug.BuildSetting{Key: kv[i], Value: kv[i+1]})
		}
		return out
	}
	for _, tc := range []struct {
		name       string
		bi         *debug.BuildInfo
		ldV, ldR   string
		short      string
		lines      []string
		notInLines string
	}{
		{"release", &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Version: "v1.2.3"}, Settings: settings("vcs.revision", rev, "vcs.time", "2026-05-01T12:00:00Z", "vcs.modified", "false")},
			"", "", "v1.2.3", []string{"modproxy v1.2.3", "revision " + rev + ", committed 2026-05-01T12:00:00Z", "built with go1.26.0"}, "modified"},
		{"devel, modified", &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Version: "(devel)"}, Settings: settings("vcs.revision", rev, "vcs.modified", "true")},
			"", "", "(devel) 0123456789ab+modified", []string{"modproxy (devel)", "revision " + rev + " (modified)"}, ""},
		{"no VCS, linker fallback", &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Version: "(devel)"}},
			"v2.0.0", "abc", "v2.0.0", []string{"modproxy v2.0.0", "revision abc"}, ""},
		{"build info wins over the linker", &debug.BuildInfo{Main: debug.Module{Version: "v1.0.0"}, Settings: settings("vcs.revision", rev)},
			"v9.9.9", "abc", "v1.0.0", []string{"modproxy v1.0.0", "revision " + rev}, "v9.9.9"},
		{"nothing known", nil, "", "", "(devel)", []string{"modproxy (devel)", "revision unknown", "-ldflags -X"}, ""},
	} {
		b := readBuildInfo(tc.bi, tc.ldV, tc.ldR)
		if got := b.short(); got != tc.short {
			t.Errorf("%s: short %q, want %q", tc.name, got, tc.short)
		}
		var out strings.Builder
		b.write(&out)
		for _, l := range tc.lines {
			if !strings.Contains(out.String(), l) {
				t.Errorf("%s: version output lacks %q:\n%s", tc.name, l, out.String())
			}
		}
		if tc.notInLines != "" && strings.Contains(out.String(), tc.notInLines) {
			t.Errorf("%s: version output has %q:\n%s", tc.name, tc.notInLines, out.String())
		}
	}
	code, stdout, _ := run(t, nil, "version")
	if code != ExitOK || !regexp.MustCompile(`^modproxy \S+.*\nrevision .*\nbuilt with go`).MatchString(stdout) {
		t.Errorf("modproxy version: %d %q", code, stdout)
	}
	if code, stdout2, _ := run(t, nil, "--version"); code != ExitOK || stdout2 != stdout {
		t.Errorf("--version: %d %q", code, stdout2)
	}
}

// TestREADMEUsage: README's usage block lists every command.
func TestREADMEUsage(t *testing.T) {
	data, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(data), "\n## Usage\n")
	if !ok {
		t.Fatal("README has no Usage section")
	}
	_, block, _ := strings.Cut(rest, "```\n")
	block, _, _ = strings.Cut(block, "```")
	lines := strings.Split(block, "\n")
	walkCommands(func(path string, c *command) {
		if c.setup == nil {
			return
		}
		if !slices.ContainsFunc(lines, func(l string) bool {
			return l == path || strings.HasPrefix(l, path+" ") && !startsWithSub(c, l[len(path)+1:])
		}) {
			t.Errorf("README's usage block has no line for %q", path)
		}
	})
	if !slices.ContainsFunc(lines, func(l string) bool { return strings.HasPrefix(l, "modproxy help") }) {
		t.Error("README's usage block lacks modproxy help")
	}
}

// startsWithSub reports whether rest begins with the name of one of c's
// subcommands (then the line is the subcommand's).
func startsWithSub(c *command, rest string) bool {
	first, _, _ := strings.Cut(rest, " ")
	return c.sub(first) != nil
}
