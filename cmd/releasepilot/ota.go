package main

import (
	"context"
	"crypto/rsa"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/swapjoy/releasepilot/codepush"
)

const otaReleaseHelp = `releasepilot ota release --app APP --platform ios|android --bundle DIR --commit SHA [flags]

Release a JS bundle over the air by hand (a hotfix), under the rules of a tagged
release: the commit's native fingerprint must match the binaries the release
targets (releasepilot fingerprints the commit through GitHub if it has not yet),
a signed app needs --private-key, and a release to Production starts at the
first stage of the app's rollout plan and moves on only while its gates pass.

DIR is the bundler's output (main.jsbundle or index.android.bundle and its
assets); it is zipped under CodePush/ as the CodePush CLI does.

The server and token come from --server and --token, or from
RELEASEPILOT_URL and RELEASEPILOT_TOKEN.`

func runOTA(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "release" {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
			fmt.Fprintln(stdout, otaReleaseHelp)
			return 0
		}
		fmt.Fprintln(stderr, "usage: releasepilot ota release --app APP --platform ios|android --bundle DIR --commit SHA")
		return 2
	}
	fs := flag.NewFlagSet("ota release", flag.ContinueOnError)
	fs.SetOutput(stderr)
	srv := addServerFlags(fs, "API token or access key with the operator role")
	app := fs.String("app", "", "releasepilot app name (required)")
	platform := fs.String("platform", "", "ios or android (required)")
	bundle := fs.String("bundle", "", "directory with the bundle and its assets (required)")
	commit := fs.String("commit", "", "full SHA of the commit the bundle was built from (required unless the app allows unverified Staging releases)")
	deployment := fs.String("deployment", "Staging", "CodePush deployment: Staging, or Production to start the staged rollout")
	target := fs.String("target-binary", "", "binary versions to target, a semver range (default: every recorded binary the commit matches)")
	description := fs.String("description", "", "release notes shown to users by apps that show them")
	mandatory := fs.Bool("mandatory", false, "devices must install the update")
	rollout := fs.Int("rollout", 0, "percentage on Production (default: the plan's first stage; it cannot start higher)")
	keyPath := fs.String("private-key", "", "PEM RSA private key to sign the package with (required for apps with a signing key)")
	asJSON := fs.Bool("json", false, "print the API's JSON answer")
	if code, done := parse(fs, args[1:], stdout, otaReleaseHelp); done {
		return code
	}
	for _, f := range []struct{ name, v string }{{"app", *app}, {"platform", *platform}, {"bundle", *bundle}} {
		if f.v == "" {
			fmt.Fprintf(stderr, "ota release: --%s is required\n", f.name)
			return 2
		}
	}
	if *rollout < 0 || *rollout > 100 {
		fmt.Fprintf(stderr, "ota release: --rollout %d is not a percentage\n", *rollout)
		return 2
	}
	if st, err := os.Stat(*bundle); err != nil || !st.IsDir() {
		fmt.Fprintf(stderr, "ota release: --bundle %q is not a directory\n", *bundle)
		return 2
	}
	var key *rsa.PrivateKey
	if *keyPath != "" {
		b, err := os.ReadFile(*keyPath)
		if err == nil {
			key, err = codepush.ParsePrivateKey(b)
		}
		if err != nil {
			fmt.Fprintf(stderr, "ota release: --private-key %q: %v\n", *keyPath, err)
			return 2
		}
	}
	zf, err := os.CreateTemp("", "releasepilot-bundle-*.zip")
	if err != nil {
		fmt.Fprintln(stderr, "releasepilot:", err)
		return 1
	}
	defer os.Remove(zf.Name())
	defer zf.Close()
	hash, err := codepush.WritePackage(zf, *bundle, key, time.Now())
	if err == nil {
		_, err = zf.Seek(0, io.SeekStart)
	}
	if err != nil {
		fmt.Fprintf(stderr, "ota release: package %s: %v\n", *bundle, err)
		return 2
	}
	out, err := srv.client().OTARelease(ctx, map[string]any{"app": *app, "platform": *platform, "deployment": *deployment, "commit": *commit,
		"target_binary": *target, "description": *description, "mandatory": *mandatory, "rollout": *rollout}, zf)
	if err != nil {
		return failed(stderr, err)
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(out)
		return 0
	}
	signed := "unsigned"
	if key != nil {
		signed = "signed"
	}
	fmt.Fprintf(stdout, "released %s %s as %s on %s at %v%% for binaries %s (%s, package hash %s)\n",
		str(out["app"]), str(out["platform"]), str(out["label"]), str(out["deployment"]), out["rollout"], str(out["target_binary"]), signed, hash)
	if out["deployment"] == codepush.Staging {
		fmt.Fprintf(stdout, "promote it with: code-push promote <app> Staging Production (or release again with --deployment Production)\n")
	} else {
		fmt.Fprintf(stdout, "follow it with: releasepilot status --app %s\n", str(out["app"]))
	}
	return 0
}

const accessKeyHelp = `releasepilot access-key create --name NAME --role viewer|operator|admin [--ttl 720h]
releasepilot access-key list
releasepilot access-key revoke NAME

Access keys are releasepilot credentials with a role, for the CodePush CLI
("code-push login <releasepilot URL> --accessKey KEY"), scripts and the API.
The secret is printed once, at creation; releasepilot keeps only its hash.
Managing keys needs an admin token or key.

The server and token come from --server and --token, or from
RELEASEPILOT_URL and RELEASEPILOT_TOKEN.`

func runAccessKey(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, accessKeyHelp)
		return 2
	}
	sub := args[0]
	if sub == "-h" || sub == "--help" {
		fmt.Fprintln(stdout, accessKeyHelp)
		return 0
	}
	fs := flag.NewFlagSet("access-key "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	srv := addServerFlags(fs, "admin API token or access key")
	name := fs.String("name", "", "create: the key's name, shown as the actor in the audit log")
	role := fs.String("role", "", "create: viewer, operator or admin")
	ttl := fs.String("ttl", "", "create: lifetime, e.g. 720h (default: does not expire)")
	// revoke takes the name as an argument, before or after flags.
	rest, code, done := parseInterspersed(fs, args[1:], func() { fmt.Fprintln(stdout, accessKeyHelp) })
	if done {
		return code
	}
	c := srv.client()
	var err error
	switch {
	case sub == "create" && len(rest) == 0:
		if *name == "" || *role == "" {
			fmt.Fprintln(stderr, "access-key create: --name and --role are required")
			return 2
		}
		var out map[string]any
		if out, err = c.CreateAccessKey(ctx, *name, *role, *ttl); err == nil {
			exp := str(out["expires_at"])
			if exp == "" {
				exp = "never"
			}
			fmt.Fprintf(stdout, "access key %s (%s, expires %s):\n%s\n\nIt is shown this once; releasepilot keeps only its hash.\nCodePush CLI: code-push login %s --accessKey <key>\n",
				str(out["name"]), str(out["role"]), exp, str(out["key"]), strings.TrimRight(*srv.server, "/"))
		}
	case sub == "list" && len(rest) == 0:
		var out map[string]any
		if out, err = c.AccessKeys(ctx); err == nil {
			ks, _ := out["access_keys"].([]any)
			if len(ks) == 0 {
				fmt.Fprintln(stdout, "no access keys")
			}
			for _, k := range ks {
				m, _ := k.(map[string]any)
				exp := str(m["expires_at"])
				if exp == "" {
					exp = "never"
				}
				fmt.Fprintf(stdout, "%-24s %-8s created %s by %s, expires %s\n", str(m["name"]), str(m["role"]), str(m["created_at"]), str(m["created_by"]), exp)
			}
		}
	case sub == "revoke" && len(rest) == 1:
		if err = c.RevokeAccessKey(ctx, rest[0]); err == nil {
			fmt.Fprintf(stdout, "access key %s revoked\n", rest[0])
		}
	default:
		fmt.Fprintln(stderr, accessKeyHelp)
		return 2
	}
	if err != nil {
		return failed(stderr, err)
	}
	return 0
}
