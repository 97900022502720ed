package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"

	"github.com/modproxy/modproxy/internal/goauth"
)

const loginHelp = `Usage: modproxy login URL

Saves a modproxy token for the proxy at URL (https:// only) in the user's
configuration directory (modproxy/credentials.json, mode 0600), where
"modproxy auth" finds it. The token is read from standard input (one line;
e.g. modproxy token create NAME | modproxy login URL, or typed at the
prompt). Then let the go command use it with
  GOAUTH='modproxy auth' GOPROXY=URL go mod download
`

const authHelp = `Usage: modproxy auth [URL]

The go command's GOAUTH credential helper (see "go help goauth"): set
GOAUTH='modproxy auth'. It prints the Authorization headers of the
tokens saved by "modproxy login", for the URL's prefix when given one.
`

func runLogin(ctx context.Context, env Env, args []string) int {
	fs := flag.NewFlagSet("login", flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	fs.Usage = func() { fmt.Fprint(env.Stderr, loginHelp) }
	if err := fs.Parse(args); err != nil {
		return flagExit(err)
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return ExitUsage
	}
	path, err := goauth.DefaultPath()
	if err != nil {
		fmt.Fprintf(env.Stderr, "modproxy login: %v\n", err)
		return ExitFailure
	}
	fmt.Fprintf(env.Stderr, "token for %s: ", fs.Arg(0))
	token, err := goauth.ReadToken(env.Stdin)
	fmt.Fprintln(env.Stderr)
	if err == nil {
		err = goauth.Login(path, fs.Arg(0), token)
	}
	if err != nil {
		fmt.Fprintf(env.Stderr, "modproxy login: %v\n", err)
		if errors.Is(err, goauth.ErrInvalid) || errors.Is(err, goauth.ErrNotHTTPS) {
			return ExitUsage
		}
		return ExitFailure
	}
	fmt.Fprintf(env.Stderr, "saved; use it with GOAUTH='modproxy auth'\n")
	return ExitOK
}

func runAuth(ctx context.Context, env Env, args []string) int {
	if len(args) > 0 && strings.HasPrefix(args[0], "-") {
		fmt.Fprint(env.Stderr, authHelp)
		if args[0] == "-h" || args[0] == "-help" || args[0] == "--help" {
			return ExitOK
		}
		return ExitUsage
	}
	path, err := goauth.DefaultPath()
	if err == nil {
		err = goauth.Run(path, args, env.Stdin, env.Stdout)
	}
	if err != nil {
		fmt.Fprintf(env.Stderr, "modproxy auth: %v\n", err)
		if errors.Is(err, goauth.ErrUsage) {
			return ExitUsage
		}
		return ExitFailure
	}
	return ExitOK
}
