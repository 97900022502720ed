package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"

	"github.com/modproxy/modproxy/internal/hosted"
)

const hostedKeyHelp = `Makes a new signer key for the private log of hosted modules and writes it
to FILE (created with mode 0600; an existing FILE is never overwritten).
The verifier key, which is public, is printed on standard output.

Give FILE to every replica as hosted_log.key_file: on a shared (s3) store
they all sign the one shared log with it. Keep it secret (whoever has it
can sign log heads) and keep a copy: a log can only be extended with the
key that signed it.

Exit status: 0 written, 1 when FILE exists or cannot be written, 2 on a
usage error.`

func hostedKeyCommand() *command {
	return &command{
		name: "hosted-key", args: "FILE", minArgs: 1, maxArgs: 1, summary: "make the signer key of the hosted modules' private log", help: hostedKeyHelp,
		setup: func(*flag.FlagSet) runFunc {
			return func(_ context.Context, env Env, args []string) int {
				return runHostedKey(env, args[0])
			}
		},
	}
}

func runHostedKey(env Env, file string) int {
	skey, vkey, err := hosted.GenerateKey()
	if err == nil {
		err = writeNew(file, []byte(skey+"\n"))
	}
	if err != nil {
		fmt.Fprintf(env.Stderr, "modproxy hosted-key: %v\n", err)
		return ExitFailure
	}
	fmt.Fprintln(env.Stdout, vkey)
	return ExitOK
}

// writeNew creates file with data, mode 0600, failing when it exists; a
// failed write leaves no file behind.
func writeNew(file string, data []byte) error {
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("%s exists; not overwriting a key", file)
	}
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(file)
	}
	return err
}
