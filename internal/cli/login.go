package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"

	"github.com/modproxy/modproxy/internal/goauth"
)

const loginHelp = `Saves a modproxy token for the proxy at URL (https:// only) in the user's
configuration directory (modproxy/credentials.json, mode 0600), where
"modproxy auth" finds it. The token is read from standard input (one line;
e.g. modproxy token create NAME | modproxy login URL, or typed at the
prompt). Then let the go command use it with
  GOAUTH='modproxy auth' GOPROXY=URL go mod download`

const authHelp = `The go command's GOAUTH credential helper (see "go help goauth"): set
GOAUTH='modproxy auth'. It prints the Authorization headers of the
tokens saved by "modproxy login", for the URL's prefix when given one.`

func loginCommand() *command {
	return &command{
		name: "login", args: "URL", minArgs: 1, maxArgs: 1, summary: "save a token for a proxy URL (for modproxy auth)", help: loginHelp,
		setup: func(*flag.FlagSet) runFunc { return runLogin },
	}
}

func authCommand() *command {
	return &command{
		name: "auth", args: "[URL]", maxArgs: 1, summary: "the GOAUTH credential helper (GOAUTH='modproxy auth')", help: authHelp,
		setup: func(*flag.FlagSet) runFunc { return runAuth },
	}
}

func runLogin(ctx context.Context, env Env, args []string) int {
	path, err := goauth.DefaultPath()
	if err != nil {
		fmt.Fprintf(env.Stderr, "modproxy login: %v\n", err)
		return ExitFailure
	}
	fmt.Fprintf(env.Stderr, "token for %s: ", args[0])
	token, err := goauth.ReadToken(env.Stdin)
	fmt.Fprintln(env.Stderr)
	if err == nil {
		err = goauth.Login(path, args[0], token)
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
