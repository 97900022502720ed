package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// command is one node of modproxy's command tree. A new command is one
// constructor (its name, synopsis, help and setup) added to commands() or
// to a parent's subs; the tree does the rest the same way for every
// command:
//
//   - requested help (-h, -help, --help anywhere before "--", or
//     "modproxy help CMD ...") goes to standard output, exit 0;
//   - flags are accepted before, between and after positional arguments;
//     "--" ends the flags;
//   - a bad flag or a wrong number of arguments prints one line and
//     "run 'modproxy CMD --help'" to standard error, exit 2;
//   - help shows the usage lines, the description, the command's own flags,
//     then the configuration flags it shares with the other commands that
//     read the configuration, and points to "modproxy serve --help" for the
//     configuration keys (serve prints them).
type command struct {
	name string
	// args is the synopsis of the positional arguments ("" for none);
	// minArgs and maxArgs bound their number (maxArgs < 0: no bound).
	args             string
	minArgs, maxArgs int
	summary          string // one line, in the parent's list of commands
	help             string // the description: paragraphs after the usage lines
	// setup defines the command's flags on fs and returns what runs it
	// with the positional arguments. Nil for a command that only groups
	// subcommands.
	setup func(fs *flag.FlagSet) runFunc
	subs  []*command
	// rewrite, when set, rewrites the arguments before they are parsed
	// (clean's "--trash" without a value).
	rewrite func([]string) []string
	// keys: the help ends with the table of configuration keys.
	keys bool
}

// runFunc runs a command whose flags are parsed, with its positional
// arguments; it returns the exit code.
type runFunc func(ctx context.Context, env Env, args []string) int

// sub returns the subcommand called name, or nil.
func (c *command) sub(name string) *command {
	for _, s := range c.subs {
		if s.name == name {
			return s
		}
	}
	return nil
}

// newFlagSet returns the command's flag set, silent (the tree prints
// errors and help itself), and its run function.
func (c *command) newFlagSet(path string) (*flag.FlagSet, runFunc) {
	fs := flag.NewFlagSet(path, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	var run runFunc
	if c.setup != nil {
		run = c.setup(fs)
	}
	return fs, run
}

// execute runs c, called as path (e.g. "modproxy gc"), with args.
func (c *command) execute(ctx context.Context, env Env, path string, args []string) int {
	if len(args) > 0 {
		if s := c.sub(args[0]); s != nil {
			return s.execute(ctx, env, path+" "+s.name, args[1:])
		}
	}
	fs, run := c.newFlagSet(path)
	if c.rewrite != nil {
		args = c.rewrite(args)
	}
	pos, err := parseArgs(fs, args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		c.writeHelp(env.Stdout, path)
		return ExitOK
	case err != nil:
		return usageError(env, path, "%v", err)
	case run == nil && len(pos) > 0:
		return usageError(env, path, "unknown command %q", pos[0])
	case run == nil:
		return usageError(env, path, "a command is required")
	case len(pos) < c.minArgs:
		return usageError(env, path, "missing arguments: want %s", c.args)
	case c.maxArgs >= 0 && len(pos) > c.maxArgs:
		return usageError(env, path, "unexpected arguments: %s", strings.Join(pos[c.maxArgs:], " "))
	}
	return run(ctx, env, pos)
}

// usageError reports a usage error of the command called path in one line
// and points to its help; it returns ExitUsage.
func usageError(env Env, path, format string, a ...any) int {
	fmt.Fprintf(env.Stderr, "%s: %s\nrun '%s --help' for usage\n", path, fmt.Sprintf(format, a...), path)
	return ExitUsage
}

// parseArgs parses the flags of fs wherever they stand among args and
// returns the positional arguments in order. A flag that takes a value
// takes the next argument when it has no "=VALUE", whatever that argument
// looks like (as package flag does); "--" ends the flags, so everything
// after it is positional, and so is "-". Errors are package flag's
// (flag.ErrHelp for -h and -help).
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var flags, pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			pos = append(pos, args[i+1:]...)
			break
		}
		if len(a) < 2 || a[0] != '-' {
			pos = append(pos, a)
			continue
		}
		flags = append(flags, a)
		name := strings.TrimPrefix(a[1:], "-")
		if strings.Contains(name, "=") {
			continue
		}
		f := fs.Lookup(name)
		if f == nil {
			continue // unknown (or -h): Parse reports it
		}
		if b, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() {
			continue
		}
		if i+1 < len(args) {
			i++
			flags = append(flags, args[i])
		}
	}
	if err := fs.Parse(flags); err != nil {
		return nil, err
	}
	return append(fs.Args(), pos...), nil
}

// usageLines are the command's synopsis lines, with its subcommands'.
func (c *command) usageLines(path string) []string {
	var lines []string
	if c.setup != nil {
		l := path + " [flags]"
		if c.args != "" {
			l += " " + c.args
		}
		lines = append(lines, l)
	}
	for _, s := range c.subs {
		lines = append(lines, s.usageLines(path+" "+s.name)...)
	}
	return lines
}

// writeHelp writes the help of the command called path.
func (c *command) writeHelp(w io.Writer, path string) {
	for i, l := range c.usageLines(path) {
		prefix := "Usage: "
		if i > 0 {
			prefix = "       "
		}
		fmt.Fprintln(w, prefix+l)
	}
	if c.help != "" {
		fmt.Fprintf(w, "\n%s\n", strings.TrimRight(c.help, "\n"))
	}
	if len(c.subs) > 0 {
		fmt.Fprintln(w, "\nCommands:")
		writeCommandList(w, c.subs, "")
		fmt.Fprintf(w, "\nRun '%s COMMAND --help' for a command's flags.\n", path)
	}
	fs, _ := c.newFlagSet(path)
	var own, shared strings.Builder
	writeFlags(&own, fs, func(name string) bool { return !isConfigFlag(name) })
	writeFlags(&shared, fs, isConfigFlag)
	if own.Len() > 0 {
		fmt.Fprintf(w, "\nFlags:\n%s", own.String())
	}
	if shared.Len() == 0 {
		return
	}
	fmt.Fprintf(w, "\nConfiguration flags (precedence, lowest first: built-in defaults, the --config\nfile, MODPROXY_* environment variables, these flags):\n%s", shared.String())
	if c.keys {
		fmt.Fprintf(w, "\nConfiguration keys (file key, environment variable):\n")
		writeConfigKeys(w)
		return
	}
	fmt.Fprintln(w, "\nEvery configuration key, with its MODPROXY_* variable: run 'modproxy serve --help'.")
}

// writeCommandList lists commands with their summaries, subcommands
// indented under their parent by their full name.
func writeCommandList(w io.Writer, cmds []*command, prefix string) {
	for _, c := range cmds {
		fmt.Fprintf(w, "  %-20s %s\n", prefix+c.name, c.summary)
		writeCommandList(w, c.subs, prefix+c.name+" ")
	}
}

// writeFlags prints the flags of fs whose names keep accepts, as
// flag.PrintDefaults does.
func writeFlags(w io.Writer, fs *flag.FlagSet, keep func(name string) bool) {
	sub := flag.NewFlagSet(fs.Name(), flag.ContinueOnError)
	sub.SetOutput(w)
	n := 0
	fs.VisitAll(func(f *flag.Flag) {
		if keep(f.Name) {
			sub.Var(f.Value, f.Name, f.Usage)
			sub.Lookup(f.Name).DefValue = f.DefValue // not the value parsed so far
			n++
		}
	})
	if n > 0 {
		sub.PrintDefaults()
	}
}

// find returns the command that path names below c, or nil.
func (c *command) find(path []string) *command {
	for _, name := range path {
		if c = c.sub(name); c == nil {
			return nil
		}
	}
	return c
}
