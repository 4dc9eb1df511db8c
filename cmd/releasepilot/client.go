package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/swapjoy/releasepilot/internal/apiclient"
)

// serverFlags are --server and --token of a command that talks to a running
// releasepilot.
type serverFlags struct{ server, token *string }

func addServerFlags(fs *flag.FlagSet, tokenUsage string) serverFlags {
	return serverFlags{
		server: fs.String("server", envOr("RELEASEPILOT_URL", "http://127.0.0.1:8080"), "releasepilot server URL"),
		token:  fs.String("token", "", tokenUsage+" (default $RELEASEPILOT_TOKEN)"),
	}
}

// client is the API client the flags name; the token defaults to
// $RELEASEPILOT_TOKEN, so it need not appear in the shell's history.
func (f serverFlags) client() *apiclient.Client {
	tok := *f.token
	if tok == "" {
		tok = os.Getenv("RELEASEPILOT_TOKEN")
	}
	return &apiclient.Client{BaseURL: *f.server, Token: tok}
}

// failed prints a call's error and gives the exit code: 2 when the server
// refused what was asked (a 4xx), 1 when the server or the network failed.
func failed(stderr io.Writer, err error) int {
	fmt.Fprintln(stderr, "releasepilot:", err)
	var ae *apiclient.Error
	if errors.As(err, &ae) && ae.Status < 500 {
		return 2
	}
	return 1
}

// parseInterspersed parses flags that may stand before or after the
// command's arguments and returns the arguments. done says the command ends
// here with code: 0 after help (printed by help), 2 after a bad flag.
func parseInterspersed(fs *flag.FlagSet, args []string, help func()) (rest []string, code int, done bool) {
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				help()
				return nil, 0, true
			}
			return nil, 2, true
		}
		if fs.NArg() == 0 {
			return rest, 0, false
		}
		rest = append(rest, fs.Arg(0))
		args = fs.Args()[1:]
	}
}
