package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"

	"github.com/swapjoy/releasepilot/internal/nativecheck"
	"github.com/swapjoy/releasepilot/internal/nativecheck/gitlocal"
)

const fingerprintHelp = `releasepilot fingerprint [--dir .] [--against REF] [flags]

Print the native fingerprint of each platform for a commit of a local git
checkout (HEAD by default) and, with --against, whether the change since REF
(the tag of the binaries in users' hands) could ship over the air, with the
explanation the service gives. No server is needed; dependencies are judged
from the npm registry (--registry; NPM_TOKEN is sent to it when set).

Exit status: 0 the change can ship over the air (or no --against), 3 it is
native and needs a store build, 2 usage errors, 1 other failures.`

// stringList is a repeatable flag.
type stringList []string

func (s *stringList) String() string { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error {
	*s = append(*s, v)
	return nil
}

func runFingerprint(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("fingerprint", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", ".", "a directory of the git checkout: the app root, unless --root says otherwise")
	against := fs.String("against", "", "the revision (tag, branch, commit) of the binaries in users' hands")
	rev := fs.String("rev", "HEAD", "the revision to fingerprint")
	root := fs.String("root", "", "the app's directory in the repository (default: --dir's place in it)")
	platform := fs.String("platform", "ios,android", "platforms to judge: ios, android or both")
	registry := fs.String("registry", defaultRegistry(), "npm registry used to judge dependencies")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	var nativeGlobs, ignoreGlobs, forceNative, forceJS stringList
	fs.Var(&nativeGlobs, "native-glob", "extra native path glob, relative to the app root (repeatable)")
	fs.Var(&ignoreGlobs, "ignore-glob", "path glob that is never native (repeatable)")
	fs.Var(&forceNative, "force-native", "npm package (glob) always native (repeatable)")
	fs.Var(&forceJS, "force-js", "npm package (glob) never native (repeatable)")
	if code, done := parse(fs, args, stdout, fingerprintHelp); done {
		return code
	}
	var pls []nativecheck.Platform
	for _, p := range strings.Split(*platform, ",") {
		switch p := nativecheck.Platform(strings.TrimSpace(p)); p {
		case nativecheck.IOS, nativecheck.Android:
			pls = append(pls, p)
		default:
			fmt.Fprintf(stderr, "releasepilot fingerprint: --platform: %q is not ios or android\n", p)
			return 2
		}
	}
	if u, err := url.Parse(*registry); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		fmt.Fprintf(stderr, "releasepilot fingerprint: --registry: %q is not an http(s) URL\n", *registry)
		return 2
	}
	report, err := gitlocal.Check(ctx, gitlocal.Options{
		Dir: *dir, Rev: *rev, Against: *against, Platforms: pls,
		Rules: nativecheck.Rules{Root: *root, NativeGlobs: nativeGlobs, IgnoredGlobs: ignoreGlobs, ForceNative: forceNative, ForceJSOnly: forceJS},
		// The token goes to the registry's host only; it is never printed.
		Packages: &nativecheck.Registry{URL: *registry, Token: os.Getenv("NPM_TOKEN")},
	})
	if err != nil {
		fmt.Fprintln(stderr, "releasepilot fingerprint:", err)
		if gitlocal.IsUsage(err) {
			return 2
		}
		return 1
	}
	if *asJSON {
		err = report.WriteJSON(stdout)
	} else {
		err = report.WriteText(stdout)
	}
	if err != nil {
		fmt.Fprintln(stderr, "releasepilot fingerprint:", err)
		return 1
	}
	return report.ExitCode()
}

// defaultRegistry honours npm's own setting, as npm itself would.
func defaultRegistry() string {
	if r := os.Getenv("npm_config_registry"); r != "" {
		return r
	}
	return nativecheck.DefaultRegistryURL
}
