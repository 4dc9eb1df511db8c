package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/swapjoy/releasepilot/internal/apiclient"
)

const remoteHelp = `releasepilot %[1]s [flags] <release-id|lane-id>

%[2]s

The server and token come from --server and --token, or from
RELEASEPILOT_URL and RELEASEPILOT_TOKEN.`

var remoteCommands = map[string]string{
	"status":   "Show a release, its lanes and their rollout status (--app lists releases).",
	"halt":     "Halt a lane's rollout now (Play: halted; iOS: phased release paused; OTA: disabled).",
	"pause":    "Pause a lane's rollout; resume continues where it stopped.",
	"resume":   "Resume a halted or paused lane at its current percentage.",
	"advance":  "Skip the current wait or gate and move to the next percentage now.",
	"complete": "Roll the lane out to 100 % now.",
	"rollback": "Roll back: OTA returns to the previous release; store lanes halt.",
	"approve":  "Approve a lane that waits for approval.",
	"cancel":   "Cancel a lane.",
}

func runRemote(ctx context.Context, cmd string, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	server := fs.String("server", envOr("RELEASEPILOT_URL", "http://127.0.0.1:8080"), "releasepilot server URL")
	token := fs.String("token", "", "API token (default $RELEASEPILOT_TOKEN)")
	platform := fs.String("platform", "", "lane platform when the release has several: ios or android")
	reason := fs.String("reason", "", "why; recorded in the audit log")
	app := fs.String("app", "", "with status and no id: list this app's releases")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), remoteHelp+"\n\nFlags:\n", cmd, remoteCommands[cmd])
		fs.PrintDefaults()
	}
	// Flags may come before or after the id.
	var ids []string
	for {
		if err := fs.Parse(args); err != nil {
			if err == flag.ErrHelp {
				fs.SetOutput(stdout)
				fs.Usage()
				return 0
			}
			return 2
		}
		if fs.NArg() == 0 {
			break
		}
		ids = append(ids, fs.Arg(0))
		args = fs.Args()[1:]
	}
	tok := *token
	if tok == "" {
		tok = os.Getenv("RELEASEPILOT_TOKEN")
	}
	c := &apiclient.Client{BaseURL: *server, Token: tok}
	var (
		out map[string]any
		err error
	)
	switch {
	case cmd == "status" && len(ids) == 0:
		out, err = c.Releases(ctx, *app)
	case len(ids) != 1:
		fmt.Fprintf(stderr, "%s: expected one release or lane id, got %d\n", cmd, len(ids))
		return 2
	case cmd == "status":
		out, err = c.Release(ctx, ids[0])
	default:
		if *reason == "" && (cmd == "halt" || cmd == "rollback" || cmd == "cancel") {
			fmt.Fprintf(stderr, "%s: --reason is required (it goes into the audit log)\n", cmd)
			return 2
		}
		out, err = c.Command(ctx, ids[0], cmd, *platform, *reason)
	}
	if err != nil {
		fmt.Fprintln(stderr, "releasepilot:", err)
		if ae, ok := err.(*apiclient.Error); ok && ae.Status < 500 {
			return 2
		}
		return 1
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	_ = enc.Encode(out)
	return 0
}

func envOr(k, def string) string {
	if v := strings.TrimSpace(os.Getenv(k)); v != "" {
		return v
	}
	return def
}
