package dashboard_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/swapjoy/releasepilot/internal/sandbox"
)

var updateScreenshots = flag.Bool("update-screenshots", false, "write the dashboard screenshots of the browser test to docs/ (for the README)")

// chromium finds Debian's chromium. The browser test needs it; .ci/run
// installs it (apt-get install -y chromium) when it is missing, and this
// test fails rather than skips without it, so that a machine without it
// cannot pass for one that ran it.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{os.Getenv("RELEASEPILOT_CHROMIUM"), "chromium", "chromium-browser"} {
		if name == "" {
			continue
		}
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("headless Chromium is needed for the dashboard's browser test and was not found: install Debian's chromium " +
		"(apt-get install -y chromium; .ci/run does it) or point RELEASEPILOT_CHROMIUM at a Chromium binary")
	return ""
}

// pageErrors collects JavaScript exceptions and console or browser errors
// (a script blocked by the Content-Security-Policy, a failed request) of a
// tab.
type pageErrors struct {
	mu   sync.Mutex
	errs []string
}

func (p *pageErrors) listen(t *testing.T, ctx context.Context) {
	t.Helper()
	require.NoError(t, chromedp.Listen(ctx, func(ev any) {
		p.mu.Lock()
		defer p.mu.Unlock()
		switch e := ev.(type) {
		case *runtime.EventExceptionThrown:
			p.errs = append(p.errs, "exception: "+e.ExceptionDetails.Text+" "+fmt.Sprint(e.ExceptionDetails.Exception))
		case *cdplog.EventEntryAdded:
			if e.Entry.Level == cdplog.EntryLevelError {
				p.errs = append(p.errs, "console: "+e.Entry.Text+" "+e.Entry.URL)
			}
		}
	}))
	_, err := chromedp.Call(ctx, cdplog.Enable, struct{}{})
	require.NoError(t, err)
}

func (p *pageErrors) take() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := p.errs
	p.errs = nil
	return out
}

// moduleRoot finds the directory of go.mod above the package.
func moduleRoot(t *testing.T) string {
	dir, err := os.Getwd()
	require.NoError(t, err)
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		require.NotEqual(t, parent, dir, "no go.mod above the package")
		dir = parent
	}
}

// TestBrowser drives the dashboard in headless Chromium against the
// sandbox, as a release manager would: sign in as an operator, open the
// release the sandbox left in flight, read its lane timeline, halt a lane
// with a reason from the confirm dialog and watch it turn halted without a
// reload (on a viewer's page too); a viewer finds no command buttons; a
// forged POST without the CSRF token, and a cross-site form with a stolen
// one, are refused; sign out.
func TestBrowser(t *testing.T) {
	t.Parallel()
	exe := chromium(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	var out bytes.Buffer
	demo, err := sandbox.Start(ctx, &out, sandbox.Options{DataDir: t.TempDir(), Soak: time.Second, Timeout: 2 * time.Minute})
	require.NoError(t, err, out.String())
	t.Cleanup(demo.Close)
	require.Len(t, demo.Releases, 3)

	// The lane to halt: the iOS store lane in Apple's phased release.
	iosLane := laneOf(t, ctx, demo, "ios")

	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(exe),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("no-default-browser-check", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 1000),
	)
	defer cancelAlloc()
	browserCtx, cancelBrowser := chromedp.NewContext(allocCtx)
	defer cancelBrowser()
	require.NoError(t, chromedp.Do(browserCtx), "start Chromium")

	// Two people, each in a browser context of their own (own cookies).
	opCtx, cancelOp := chromedp.NewContext(browserCtx, chromedp.WithNewBrowserContext())
	defer cancelOp()
	viewCtx, cancelView := chromedp.NewContext(browserCtx, chromedp.WithNewBrowserContext())
	defer cancelView()
	var opErrs, viewErrs pageErrors
	require.NoError(t, chromedp.Do(opCtx))
	require.NoError(t, chromedp.Do(viewCtx))
	opErrs.listen(t, opCtx)
	viewErrs.listen(t, viewCtx)

	shots := t.TempDir()
	if *updateScreenshots {
		shots = filepath.Join(moduleRoot(t), "docs")
	}
	releaseURL := demo.URL + "/releases/" + demo.Live
	laneSel := "#lane-" + iosLane

	// The operator signs in and lands on the releases list.
	signIn(t, opCtx, demo.URL+"/", demo.OperatorToken)
	step(t, opCtx, chromedp.WaitVisible("table.releases"))
	rows := get(t, opCtx, chromedp.Evaluate[int](`document.querySelectorAll("table.releases tbody th[scope=row] a").length`))
	require.Equal(t, 3, rows, "the sandbox made three releases")
	screenshot(t, opCtx, filepath.Join(shots, "dashboard-releases.png"))

	// The filter form works in the browser. (Releases stay "active" once
	// planned: nothing marks one completed yet, so this filter is empty.)
	step(t, opCtx,
		chromedp.SetValue("#f-state", "completed"),
		chromedp.Click(".filters button[type=submit]"),
		chromedp.WaitReady(`select#f-state option[value="completed"][selected]`),
	)
	empty := get(t, opCtx, chromedp.Text("table.releases tbody"))
	require.Contains(t, empty, "No releases match this filter.")
	step(t, opCtx, chromedp.Click(`.filters a[href="/"]`), chromedp.WaitVisible(`a[href="/releases/`+demo.Live+`"]`))

	// Open it: one panel per lane, the iOS plan as a timeline.
	step(t, opCtx,
		chromedp.Click(`a[href="/releases/`+demo.Live+`"]`),
		chromedp.WaitVisible(laneSel+" .timeline .step-current"),
		chromedp.WaitVisible("#live-state"),
	)
	steps := get(t, opCtx, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll("`+laneSel+` .timeline .step")).map(s => s.className + ":" + s.querySelector(".step-label").textContent)`))
	require.Equal(t, "step step-done:1 %", steps[0], steps)
	require.Equal(t, "step step-current:Soak 1d 00h", steps[1], steps)
	require.Equal(t, "step step-next:2 %", steps[2], steps)
	require.Len(t, steps, 13, "Apple's seven phased-release days and the soaks between them")
	head := get(t, opCtx, chromedp.Text(laneSel+" .lane-head"))
	require.Contains(t, head, "ios")
	require.Contains(t, head, "STORE", "kind, shown in capitals by the style sheet")
	require.Contains(t, head, "1 %")
	outlook := get(t, opCtx, chromedp.Text(laneSel+" .outlook"))
	require.Contains(t, outlook, "next: 2%")
	waitText(t, opCtx, "#live-state", "(live)")
	screenshot(t, opCtx, filepath.Join(shots, "dashboard-release.png"))

	// A viewer watches the same release: no command buttons.
	signIn(t, viewCtx, releaseURL, demo.ViewerToken)
	step(t, viewCtx, chromedp.WaitVisible(laneSel+" .timeline"))
	waitText(t, viewCtx, "#live-state", "(live)")
	buttons := get(t, viewCtx, chromedp.Evaluate[int](`document.querySelectorAll("a[data-confirm], .commands").length`))
	require.Zero(t, buttons, "viewers see no command buttons")
	_ = get(t, viewCtx, chromedp.Evaluate[bool](`window.__notReloaded = true`))

	// Halt from the keyboard: the button opens the dry run in a modal
	// dialog with the focus in the reason field; Tab reaches the button
	// that acts, Enter presses it.
	step(t, opCtx,
		chromedp.Focus(laneSel+" a.cmd-halt"),
		chromedp.KeyEvent("\r"),
		chromedp.WaitVisible("#confirm-dialog[open] #reason"),
	)
	dry := get(t, opCtx, chromedp.Text("#confirm-dialog .dry-run"))
	require.Contains(t, dry, "→ halted at 1 %")
	focused := get(t, opCtx, chromedp.Evaluate[string](`document.activeElement.id`))
	require.Equal(t, "reason", focused, "the dialog puts the focus in the reason field")
	step(t, opCtx,
		chromedp.KeyEvent("Crash spike in 1.1.0"),
		chromedp.KeyEvent("\t"),
	)
	focused = get(t, opCtx, chromedp.Evaluate[string](`document.activeElement.id`))
	require.Equal(t, "confirm-submit", focused)
	step(t, opCtx,
		chromedp.KeyEvent("\r"),
		chromedp.WaitVisible(".flash"),
	)
	flash := get(t, opCtx, chromedp.Text(".flash"))
	require.Contains(t, flash, "halt queued for the ios lane")

	// Both pages turn halted as the job records it, the viewer's without
	// a reload, from the live stream.
	step(t, opCtx, chromedp.WaitVisible(laneSel+`[data-state="halted"]`))
	step(t, viewCtx, chromedp.WaitVisible(laneSel+`[data-state="halted"]`))
	same := get(t, viewCtx, chromedp.Evaluate[bool](`window.__notReloaded === true`))
	require.True(t, same, "the viewer's page changed live, not by reloading")
	reason := get(t, viewCtx, chromedp.Text(laneSel+" .reason"))
	require.Equal(t, "Crash spike in 1.1.0", reason)
	audit := get(t, viewCtx, chromedp.Text("#audit-rows"))
	require.Contains(t, audit, "command.halt")
	require.Contains(t, audit, "token:release-manager")
	require.Equal(t, "halted", laneState(t, ctx, demo, iosLane))

	noPageErrors(t, &opErrs, &viewErrs)

	// A forged POST from the page without the CSRF token is refused.
	status, err := chromedp.Run(opCtx, chromedp.Evaluate[int](
		`fetch("/lanes/`+iosLane+`/resume", {method: "POST", credentials: "same-origin", body: new URLSearchParams({reason: "forged"})}).then(r => r.status)`,
		chromedp.EvalAwaitPromise))
	require.NoError(t, err)
	require.Equal(t, http.StatusForbidden, status)

	// A page on another site that sends the session's real CSRF token is
	// refused too: the cookie is SameSite=Strict and the request is
	// cross-site (Sec-Fetch-Site), so it never counts as the operator's.
	csrf := get(t, opCtx, chromedp.Value(`form[action="/signout"] input[name=csrf]`))
	// Another loopback address is another site, with no name to resolve.
	evil := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, `<!doctype html><title>evil</title><script>
const done = (what) => { const p = document.createElement("p"); p.id = "sent"; p.textContent = what; document.body.appendChild(p); };
fetch(%q, {method: "POST", mode: "no-cors", credentials: "include", body: new URLSearchParams({csrf: %q, reason: "forged"})})
  .then(() => done("sent"), (err) => done("fetch failed: " + err));
</script>`, demo.URL+"/lanes/"+iosLane+"/resume", csrf)
	}))
	evilLn, err := net.Listen("tcp", "127.0.0.2:0")
	require.NoError(t, err)
	evil.Listener.Close()
	evil.Listener = evilLn
	evil.Start()
	defer evil.Close()
	// The operator's own tab visits the other site, cookies and all.
	step(t, opCtx,
		chromedp.Navigate(evil.URL),
		chromedp.WaitVisible("#sent"),
	)
	require.Equal(t, "sent", get(t, opCtx, chromedp.Text("#sent")), "the cross-site page's request")
	step(t, opCtx, chromedp.Navigate(releaseURL), chromedp.WaitVisible("#signout"))
	require.Equal(t, "halted", laneState(t, ctx, demo, iosLane), "no forged request resumed the lane")
	require.Equal(t, "2", metric(t, ctx, demo, `releasepilot_http_requests_total{method="POST",route="POST /lanes/{id}/{command}",status="403"}`),
		"both forged requests reached the server and were refused")

	for _, e := range opErrs.take() {
		// The browser logs the refusals it was just made to provoke.
		if !strings.Contains(e, "status of 403") || !strings.Contains(e, "/lanes/"+iosLane+"/resume") {
			t.Errorf("page error: %s", e)
		}
	}

	// Sign out: back to the sign-in page, and the dashboard asks again.
	step(t, opCtx,
		chromedp.Click("#signout"),
		chromedp.WaitVisible("#token"),
	)
	loc := get(t, opCtx, chromedp.Location())
	require.True(t, strings.HasSuffix(loc, "/signin?signed_out=1"), loc)
	step(t, opCtx, chromedp.Navigate(releaseURL), chromedp.WaitVisible("#token"))
	cookies := get(t, opCtx, chromedp.Evaluate[string](`document.cookie`))
	require.Empty(t, cookies, "the session cookie is HttpOnly: scripts cannot read it")

	noPageErrors(t, &opErrs, &viewErrs)
}

// noPageErrors fails the test for every script error, blocked script or
// failed request the pages logged so far.
func noPageErrors(t *testing.T, pes ...*pageErrors) {
	t.Helper()
	for _, pe := range pes {
		for _, e := range pe.take() {
			t.Errorf("page error: %s", e)
		}
	}
}

// step runs actions with a time limit, so a page that never shows what
// the test waits for fails in seconds, naming the step.
func step(t *testing.T, ctx context.Context, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, 45*time.Second)
	defer cancel()
	if err := chromedp.Do(c, actions...); err != nil {
		require.NoError(t, err, "the page at that moment:\n%s", pageText(ctx))
	}
}

// pageText is what the tab shows, for a failure message.
func pageText(ctx context.Context) string {
	c, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	text, err := chromedp.Run(c, chromedp.Evaluate[string](`location.href + "\n" + (document.body ? document.body.innerText : "(no body)")`))
	if err != nil {
		return "(could not read the page: " + err.Error() + ")"
	}
	return text
}

// get runs one action with a time limit and returns its result.
func get[T any](t *testing.T, ctx context.Context, a chromedp.Action[T]) T {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, 45*time.Second)
	defer cancel()
	v, err := chromedp.Run(c, a)
	require.NoError(t, err)
	return v
}

// signIn opens url, is sent to the sign-in page and signs in with token.
func signIn(t *testing.T, ctx context.Context, url, token string) {
	t.Helper()
	step(t, ctx,
		chromedp.Navigate(url),
		chromedp.WaitVisible("#token"),
		chromedp.SendKeys("#token", token),
		chromedp.Click("#signin-submit"),
		chromedp.WaitVisible("#signout"),
	)
	body := get(t, ctx, chromedp.Evaluate[string](`document.documentElement.outerHTML`))
	require.NotContains(t, body, token, "the token never reaches a page")
}

func waitText(t *testing.T, ctx context.Context, sel, want string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		got, err := chromedp.Run(ctx, chromedp.Text(sel))
		require.NoError(t, err)
		if strings.Contains(got, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s says %q, want %q", sel, got, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func screenshot(t *testing.T, ctx context.Context, path string) {
	t.Helper()
	png := get(t, ctx, chromedp.FullScreenshot(100))
	require.True(t, bytes.HasPrefix(png, []byte("\x89PNG")), "a PNG")
	require.NoError(t, os.WriteFile(path, png, 0o644))
}

func apiGet(t *testing.T, ctx context.Context, demo *sandbox.Demo, path string, v any) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, demo.URL+path, nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+demo.AdminToken)
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.NoError(t, json.NewDecoder(res.Body).Decode(v))
}

func laneOf(t *testing.T, ctx context.Context, demo *sandbox.Demo, platform string) string {
	t.Helper()
	var rel struct {
		Lanes []struct{ ID, Platform string }
	}
	apiGet(t, ctx, demo, "/v1/releases/"+demo.Live, &rel)
	for _, l := range rel.Lanes {
		if l.Platform == platform {
			return l.ID
		}
	}
	t.Fatalf("release %s has no %s lane", demo.Live, platform)
	return ""
}

// metric reads one sample of the service's /metrics.
func metric(t *testing.T, ctx context.Context, demo *sandbox.Demo, series string) string {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, demo.URL+"/metrics", nil)
	require.NoError(t, err)
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			return v
		}
	}
	return ""
}

func laneState(t *testing.T, ctx context.Context, demo *sandbox.Demo, laneID string) string {
	t.Helper()
	var l struct {
		Status struct{ State string }
	}
	apiGet(t, ctx, demo, "/v1/lanes/"+laneID, &l)
	return l.Status.State
}
