// Command releasepilot runs mobile releases from a git tag to 100 % of users.
//
//	releasepilot serve   [--config FILE]   run the service
//	releasepilot migrate [--config FILE]   apply database migrations and exit
//	releasepilot version                   print the version
//	releasepilot fingerprint [--against REF]
//	                                       native fingerprint of a local checkout;
//	                                       exit 3 when a change is native
//	releasepilot status|halt|resume|advance|complete|rollback|approve ID
//	                                       operate a release through the API
//	releasepilot ota release ...           release a hotfix over the air
//	releasepilot access-key create|list|revoke
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/swapjoy/releasepilot/internal/config"
	"github.com/swapjoy/releasepilot/internal/sandbox"
	"github.com/swapjoy/releasepilot/internal/service"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// The first signal starts a drain; a second one ends the process at
	// once (what is left running is handed over by the other replicas).
	context.AfterFunc(ctx, stop)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

const usage = `releasepilot runs mobile releases from a git tag to 100 %% of users.

Usage:
  releasepilot <command> [flags]

Commands:
  serve     run the service (HTTP API, webhooks, OTA server, jobs)
  migrate   apply database migrations and exit
  version   print the version
  demo      run a release end to end against built-in fakes (about 20 s);
            --keep-serving leaves it running to open the dashboard on
  fingerprint  print a local checkout's native fingerprints; with --against REF,
            whether the change could ship over the air (exit 0) or is native (exit 3)

  status    show a release and its lanes (or list releases)
  halt      halt a lane's rollout          resume    resume a halted or paused lane
  pause     pause a lane's rollout         advance   move to the next percentage now
  complete  roll out to 100 %% now          rollback  roll back (OTA) or halt (stores)
  approve   approve a waiting lane         cancel    cancel a lane

  ota release --expo-dist DIR   release an npx expo export over Expo Updates
  ota release  release a JS bundle over the air by hand (a hotfix), still gated
  access-key   create, list or revoke access keys (CodePush CLI, scripts)

Run "releasepilot <command> --help" for a command's flags.
`

// run executes one command and returns the exit code: 0 ok, 1 failure,
// 2 usage or configuration error.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintf(stderr, usage)
		return 2
	}
	switch args[0] {
	case "-h", "--help", "help":
		fmt.Fprintf(stdout, usage)
		return 0
	case "version":
		fs := flag.NewFlagSet("version", flag.ContinueOnError)
		fs.SetOutput(stderr)
		if code, done := parse(fs, args[1:], stdout, "releasepilot version\n\nPrint the version."); done {
			return code
		}
		fmt.Fprintln(stdout, "releasepilot", service.Version)
		return 0
	case "demo":
		fs := flag.NewFlagSet("demo", flag.ContinueOnError)
		fs.SetOutput(stderr)
		dataDir := fs.String("data-dir", "", "where the demo keeps its database (default: a new temporary directory, removed afterwards)")
		soak := fs.Duration("soak", 2*time.Second, "time each rollout stage waits")
		keep := fs.Bool("keep-serving", false, "leave the sandbox running afterwards, with a release in flight, to open the dashboard on (until Ctrl-C)")
		listen := fs.String("listen", "127.0.0.1:0", "address to serve on (with --keep-serving, e.g. 127.0.0.1:8080)")
		if code, done := parse(fs, args[1:], stdout, "releasepilot demo [--data-dir DIR] [--soak 2s] [--keep-serving [--listen ADDR]]\n\nTag a React Native app four times against in-process fakes of GitHub, npm,\nApp Store Connect, Google Play and Sentry: the first tag goes through\nTestFlight and the App Store phased release on iOS and the Play staged\nrollout on Android; the second, JS-only, over the air on both; the third,\nan OTA tag whose commit adds a native module, is refused with the files that\ndiffer; the fourth ships that change as store builds, and its Sentry gate\npauses the iOS phased release when crash-free sessions drop. Nothing leaves\nthis machine.\n\nWith --keep-serving a third tag (a native change) stays in Apple's phased\nrelease after the first two, and the sandbox keeps running so you can open\nthe dashboard; it prints the URL and the tokens to sign in with."); done {
			return code
		}
		dir := *dataDir
		if dir == "" {
			tmp, err := os.MkdirTemp("", "releasepilot-demo-")
			if err != nil {
				fmt.Fprintln(stderr, "releasepilot:", err)
				return 1
			}
			defer os.RemoveAll(tmp)
			dir = tmp
		}
		opts := sandbox.Options{DataDir: dir, Soak: *soak, Listen: *listen}
		if !*keep {
			if err := sandbox.Run(ctx, stdout, opts); err != nil {
				fmt.Fprintln(stderr, "releasepilot: demo:", err)
				return 1
			}
			return 0
		}
		d, err := sandbox.Start(ctx, stdout, opts)
		if err != nil {
			fmt.Fprintln(stderr, "releasepilot: demo:", err)
			return 1
		}
		defer d.Close()
		fmt.Fprintf(stdout, "\nThe sandbox keeps running. Open the dashboard: %s/\n", d.URL)
		fmt.Fprintf(stdout, "  sign in as an operator (commands): %s\n", d.OperatorToken)
		fmt.Fprintf(stdout, "  sign in as a viewer (read only):   %s\n", d.ViewerToken)
		fmt.Fprintf(stdout, "  release in flight: %s/releases/%s\n", d.URL, d.Live)
		fmt.Fprintln(stdout, "These tokens exist only in this sandbox. Press Ctrl-C to stop.")
		<-ctx.Done()
		return 0
	case "serve", "migrate":
		cmd := args[0]
		fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
		fs.SetOutput(stderr)
		cfgPath := fs.String("config", "", "config file (default "+config.DefaultPath+" if present, else built-in defaults)")
		help := "releasepilot serve [--config FILE]\n\nRun the service: HTTP API, webhooks, OTA server and background jobs,\nuntil SIGINT or SIGTERM."
		if cmd == "migrate" {
			help = "releasepilot migrate [--config FILE]\n\nApply the database migrations (releasepilot's and River's) and exit."
		}
		if code, done := parse(fs, args[1:], stdout, help); done {
			return code
		}
		cfg, err := config.Load(*cfgPath)
		if err != nil {
			fmt.Fprintln(stderr, "releasepilot: config:", err)
			return 2
		}
		log := service.NewLogger(stderr, cfg.Log)
		if cmd == "migrate" {
			err = service.Migrate(ctx, cfg, log)
		} else {
			err = service.Run(ctx, cfg, log)
		}
		if errors.Is(err, config.ErrInvalid) {
			// A value the components found wrong when they read their own
			// section: still a configuration error.
			fmt.Fprintln(stderr, "releasepilot: config:", err)
			return 2
		}
		if err != nil {
			fmt.Fprintln(stderr, "releasepilot:", err)
			return 1
		}
		if cmd == "migrate" {
			fmt.Fprintln(stdout, "migrations applied")
		}
		return 0
	}
	if args[0] == "fingerprint" {
		return runFingerprint(ctx, args[1:], stdout, stderr)
	}
	if args[0] == "ota" && len(args) > 1 && args[1] == "release" && hasExpoDist(args[2:]) {
		return runOTAExpo(ctx, args[2:], stdout, stderr)
	}
	switch args[0] {
	case "ota":
		return runOTA(ctx, args[1:], stdout, stderr)
	case "access-key":
		return runAccessKey(ctx, args[1:], stdout, stderr)
	}
	if _, ok := remoteCommands[args[0]]; ok {
		return runRemote(ctx, args[0], args[1:], stdout, stderr)
	}
	fmt.Fprintf(stderr, "releasepilot: unknown command %q\n\n", args[0])
	fmt.Fprintf(stderr, usage)
	return 2
}

// parse parses flags; done is true when the command must stop with code.
func parse(fs *flag.FlagSet, args []string, stdout io.Writer, help string) (code int, done bool) {
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), help)
		fmt.Fprintln(fs.Output(), "\nFlags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(stdout)
			fs.Usage()
			return 0, true
		}
		return 2, true
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "%s: unexpected argument %q\n", fs.Name(), fs.Arg(0))
		return 2, true
	}
	return 0, false
}
