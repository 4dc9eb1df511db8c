package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

const otaExpoHelp = `releasepilot ota release --expo-dist DIR --app APP --commit SHA [flags]

Release the output of "npx expo export" (DIR holds metadata.json) over the
Expo Updates protocol: each exported platform (or --platform) becomes an
update of the app's OTA deployment, through the same rules as CodePush
releases made by hand: the native gate (--commit is required; its native
fingerprint must equal the fingerprint of the binaries with the update's
runtime version), the unfinished-rollout lock, a staged rollout on
Production (an OTA lane starting at the app's first stage) with its gates,
halt and rollback, and the audit log with you as actor.

The runtime version is read from DIR/expoConfig.json (write it with
"npx expo config --json --type public > DIR/expoConfig.json") unless
--runtime-version gives it.

The server and token come from --server and --token, or from
RELEASEPILOT_URL and RELEASEPILOT_TOKEN.`

// runOTAExpo uploads an export as a streamed tar.gz.
func runOTAExpo(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("ota release", flag.ContinueOnError)
	fs.SetOutput(stderr)
	srv := addServerFlags(fs, "API token")
	dist := fs.String("expo-dist", "", "output directory of npx expo export (required)")
	app := fs.String("app", "", "the releasepilot app (required)")
	deployment := fs.String("deployment", "Staging", "deployment (channel) to release to")
	platform := fs.String("platform", "", "ios or android (default: every exported platform)")
	runtime := fs.String("runtime-version", "", "the update's runtime version (default: from expoConfig.json)")
	commit := fs.String("commit", "", "git commit the export was built from (the native gate compares its fingerprint)")
	description := fs.String("description", "", "release notes")
	rollout := fs.Int("rollout", 0, "percentage of installs offered the update (default 100)")
	mandatory := fs.Bool("mandatory", false, "mark the update mandatory")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "%s\n\nFlags:\n", otaExpoHelp)
		fs.PrintDefaults()
	}
	if code, done := parse(fs, args, stdout, ""); done {
		return code
	}
	switch {
	case *dist == "":
		fmt.Fprintln(stderr, "ota release: --expo-dist is required")
		return 2
	case *app == "":
		fmt.Fprintln(stderr, "ota release: --app is required")
		return 2
	case *rollout < 0 || *rollout > 100:
		fmt.Fprintf(stderr, "ota release: --rollout %d is not a percentage from 1 to 100\n", *rollout)
		return 2
	}
	if _, err := os.Stat(*dist + "/metadata.json"); err != nil {
		fmt.Fprintf(stderr, "ota release: --expo-dist %q: no metadata.json (is it the output directory of npx expo export?)\n", *dist)
		return 2
	}
	fields := map[string]string{"app": *app, "deployment": *deployment, "platform": *platform, "runtimeVersion": *runtime,
		"commit": *commit, "description": *description, "mandatory": fmt.Sprint(*mandatory)}
	if *rollout > 0 {
		fields["rollout"] = fmt.Sprint(*rollout)
	}
	releases, err := srv.client().ExpoRelease(ctx, *dist, fields)
	if err != nil {
		return failed(stderr, err)
	}
	for _, r := range releases {
		fmt.Fprintf(stdout, "%s %s on %s: runtime version %s, rollout %v%%, %v assets\n",
			r["app"], r["label"], r["deployment"], r["runtimeVersion"], r["rollout"], r["assets"])
	}
	return 0
}

// hasExpoDist reports whether an ota release names an Expo export.
func hasExpoDist(args []string) bool {
	for _, a := range args {
		if a == "--expo-dist" || a == "-expo-dist" || strings.HasPrefix(a, "--expo-dist=") || strings.HasPrefix(a, "-expo-dist=") {
			return true
		}
	}
	return false
}
