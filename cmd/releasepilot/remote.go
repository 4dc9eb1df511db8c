package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
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
	srv := addServerFlags(fs, "API token")
	platform := fs.String("platform", "", "lane platform when the release has several: ios or android")
	reason := fs.String("reason", "", "why; recorded in the audit log")
	app := fs.String("app", "", "with status and no id: list this app's releases")
	asJSON := fs.Bool("json", false, "print the API's JSON answer instead of the summary")
	dryRun := fs.Bool("dry-run", false, "say what the command would do and change nothing")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), remoteHelp+"\n\nFlags:\n", cmd, remoteCommands[cmd])
		fs.PrintDefaults()
	}
	// Flags may come before or after the id.
	ids, code, done := parseInterspersed(fs, args, func() {
		fs.SetOutput(stdout)
		fs.Usage()
	})
	if done {
		return code
	}
	c := srv.client()
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
		if *reason == "" && !*dryRun && (cmd == "halt" || cmd == "rollback" || cmd == "cancel") {
			fmt.Fprintf(stderr, "%s: --reason is required (it goes into the audit log)\n", cmd)
			return 2
		}
		if *dryRun {
			out, err = c.DryRun(ctx, ids[0], cmd, *platform, *reason)
			break
		}
		out, err = c.Command(ctx, ids[0], cmd, *platform, *reason)
	}
	if err != nil {
		return failed(stderr, err)
	}
	if cmd == "status" && !*asJSON {
		if len(ids) == 0 {
			printReleases(stdout, out)
		} else {
			printRelease(stdout, out)
		}
		return 0
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	_ = enc.Encode(out)
	return 0
}

// printRelease writes a release as a release engineer reads it: one line
// for the release (and one for its tag when it moved or was deleted), then
// per lane its state, percentage and what comes next.
func printRelease(w io.Writer, rel map[string]any) {
	commit := str(rel["commit"])
	if len(commit) > 12 {
		commit = commit[:12]
	}
	fmt.Fprintf(w, "%s  %s %s  commit %s  %s\n", str(rel["id"]), str(rel["app"]), str(rel["tag"]), commit, str(rel["state"]))
	if ts := str(rel["tag_status"]); ts != "" {
		// The tag moved or was deleted after the release began.
		fmt.Fprintf(w, "  tag: %s\n", ts)
	}
	lanes, _ := rel["lanes"].([]any)
	if len(lanes) == 0 {
		fmt.Fprintln(w, "  no lanes yet: the release is being planned")
	}
	for _, l := range lanes {
		lane, _ := l.(map[string]any)
		st, _ := lane["status"].(map[string]any)
		next, _ := lane["next"].(map[string]any)
		fmt.Fprintf(w, "  %-8s %-7s %-9s %4v%%  %s\n", str(lane["platform"]), str(lane["kind"]), str(st["state"]), st["percent"], str(next["summary"]))
		// Other states' summaries carry the reason already.
		if r := str(st["reason"]); r != "" && (st["state"] == "rolling" || st["state"] == "waiting") {
			fmt.Fprintf(w, "  %-8s %-7s %-9s %5s  last: %s\n", "", "", "", "", r)
		}
		gates, _ := next["gates"].([]any)
		for _, g := range gates {
			gate, _ := g.(map[string]any)
			fmt.Fprintf(w, "  %-8s %-7s %-9s %5s  gate: %s\n", "", "", "", "", str(gate["summary"]))
		}
		fmt.Fprintf(w, "  %-8s %-7s %-9s %5s  lane %s\n", "", "", "", "", str(lane["id"]))
	}
}

// printReleases writes one line per release, newest first as the API
// lists them.
func printReleases(w io.Writer, out map[string]any) {
	rs, _ := out["releases"].([]any)
	if len(rs) == 0 {
		fmt.Fprintln(w, "no releases")
		return
	}
	for _, r := range rs {
		rel, _ := r.(map[string]any)
		fmt.Fprintf(w, "%s  %-12s %-12s %-10s %s\n", str(rel["id"]), str(rel["app"]), str(rel["tag"]), str(rel["state"]), str(rel["created_at"]))
	}
}

func str(v any) string {
	if v == nil {
		return ""
	}
	return fmt.Sprint(v)
}

func envOr(k, def string) string {
	if v := strings.TrimSpace(os.Getenv(k)); v != "" {
		return v
	}
	return def
}
