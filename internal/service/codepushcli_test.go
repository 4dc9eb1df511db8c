package service_test

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/swapjoy/releasepilot/codepush"
	"github.com/swapjoy/releasepilot/internal/apiclient"
	"github.com/swapjoy/releasepilot/internal/config"
	"github.com/swapjoy/releasepilot/internal/github"
	"github.com/swapjoy/releasepilot/internal/github/githubtest"
	"github.com/swapjoy/releasepilot/internal/nativecheck"
	"github.com/swapjoy/releasepilot/internal/release"
	"github.com/swapjoy/releasepilot/internal/service"
)

// cliVersion is the legacy CodePush CLI that teams still script against;
// it pins the management SDK code-push 2.0.6.
const cliVersion = "2.1.9"

const adminToken = "admin-token-0123456789"

var (
	cliOnce sync.Once
	cliJS   string
	cliErr  error
)

// installCLI installs code-push-cli into testdata/codepush-cli once per
// checkout (node_modules is ignored by git) and returns the path of its
// entry script. Node and npm are required: CI has them.
func installCLI(t *testing.T) (node, script string) {
	t.Helper()
	node, err := exec.LookPath("node")
	require.NoError(t, err, "node is required to run the real code-push-cli against releasepilot")
	cliOnce.Do(func() {
		dir, err := filepath.Abs(filepath.Join("testdata", "codepush-cli"))
		if err != nil {
			cliErr = err
			return
		}
		script = filepath.Join(dir, "node_modules", "code-push-cli", "script", "cli.js")
		if b, err := os.ReadFile(filepath.Join(dir, "node_modules", "code-push-cli", "package.json")); err == nil {
			var p struct{ Version string }
			if json.Unmarshal(b, &p) == nil && p.Version == cliVersion {
				cliJS = script
				return
			}
		}
		npm, err := exec.LookPath("npm")
		if err != nil {
			cliErr = fmt.Errorf("npm is required to install code-push-cli@%s: %w", cliVersion, err)
			return
		}
		cmd := exec.Command(npm, "install", "--no-audit", "--no-fund", "--no-save", "--no-package-lock", "code-push-cli@"+cliVersion)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			cliErr = fmt.Errorf("npm install code-push-cli@%s: %v\n%s", cliVersion, err, out)
			return
		}
		cliJS = script
	})
	require.NoError(t, cliErr)
	return node, cliJS
}

// codePushCLI runs the CLI with its own HOME (where it keeps its session).
type codePushCLI struct {
	node, script, home string
}

func newCLI(t *testing.T) *codePushCLI {
	node, script := installCLI(t)
	return &codePushCLI{node: node, script: script, home: t.TempDir()}
}

// run runs one command with stdin; it returns the output and whether the
// CLI exited 0.
func (c *codePushCLI) run(t *testing.T, stdin string, args ...string) (string, bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.node, append([]string{c.script}, args...)...)
	cmd.Env = []string{"HOME=" + c.home, "PATH=" + os.Getenv("PATH"), "NO_COLOR=1", "FORCE_COLOR=0", "TMPDIR=" + c.home}
	cmd.Stdin = strings.NewReader(stdin)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	require.NoError(t, ctx.Err(), "code-push %s timed out:\n%s", strings.Join(args, " "), out.String())
	t.Logf("$ code-push %s\n%s", strings.Join(args, " "), out.String())
	return out.String(), err == nil
}

func (c *codePushCLI) ok(t *testing.T, args ...string) string {
	t.Helper()
	out, ok := c.run(t, "", args...)
	require.True(t, ok, "code-push %s failed:\n%s", strings.Join(args, " "), out)
	return out
}

func (c *codePushCLI) fails(t *testing.T, args ...string) string {
	t.Helper()
	out, ok := c.run(t, "", args...)
	require.False(t, ok, "code-push %s succeeded:\n%s", strings.Join(args, " "), out)
	return out
}

// cliBundle writes a release directory named CodePush (where devices look
// for a signature) holding an iOS bundle and an asset.
func cliBundle(t *testing.T, js string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "CodePush")
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "assets"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "main.jsbundle"), []byte(js), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "assets", "logo.png"), []byte("png"), 0o644))
	return dir
}

// cliWorld is a releasepilot with a GitHub fake holding the app's history:
// the 1.4.0 binary's commit, a JS-only fix and a native change.
type cliWorld struct {
	svc                 *service.Service
	url                 string
	base, fix, fix2, nt string
}

func newCLIWorld(t *testing.T, appYAML string) *cliWorld {
	t.Helper()
	ctx := context.Background()
	fake := githubtest.New()
	gh := httptest.NewServer(fake)
	t.Cleanup(gh.Close)
	repo := fake.Repo("acme/mobile")
	files := githubtest.Files{"ios/Podfile": "platform :ios, '15.0'\n", "src/App.tsx": "v1\n", "package.json": `{"name":"acme"}`}
	w := &cliWorld{}
	w.base = repo.Commit("1.4.0", files)
	w.fix = repo.Commit("Fix the typo on the login screen", files.With(githubtest.Files{"src/App.tsx": "v2\n"}), w.base)
	w.fix2 = repo.Commit("Fix the date format", files.With(githubtest.Files{"src/App.tsx": "v3\n"}), w.fix)
	w.nt = repo.Commit("Require iOS 17", files.With(githubtest.Files{"ios/Podfile": "platform :ios, '17.0'\n"}), w.fix2)

	yaml := fmt.Sprintf(`listen: 127.0.0.1:0
data_dir: %s
github: {api_url: %q}
tokens:
  - {name: admin, role: admin, token: %q}
apps:
%s`, t.TempDir(), gh.URL, adminToken, appYAML)
	cfg, err := config.Parse([]byte(yaml), "")
	require.NoError(t, err)
	svc, err := service.New(ctx, cfg, nil)
	require.NoError(t, err)
	srv := httptest.NewServer(svc.HTTP.Handler())
	t.Cleanup(func() {
		srv.Close()
		_ = svc.Shutdown(context.Background())
	})
	w.svc, w.url = svc, srv.URL

	// The iOS 1.4.0 binary in the store was built from base. Only its
	// fingerprint hash is recorded, as a store lane records it; releasepilot
	// fingerprints the commits it is asked to release on demand.
	client, err := github.NewClient(github.ClientOptions{BaseURL: gh.URL})
	require.NoError(t, err)
	src, err := client.Repo("acme/mobile")
	require.NoError(t, err)
	fps, err := (&nativecheck.Fingerprinter{}).Fingerprint(ctx, src, w.base)
	require.NoError(t, err)
	for _, a := range cfg.Apps {
		_, err = svc.Store.RecordBinary(ctx, release.Binary{App: a.Name, Platform: release.IOS, Version: "1.4.0", BuildNumber: "40",
			Commit: w.base, Fingerprint: fps[nativecheck.IOS].Hash, CreatedAt: time.Now()})
		require.NoError(t, err)
	}
	return w
}

// accessKey makes an access key through the admin API.
func (w *cliWorld) accessKey(t *testing.T, name, role string) string {
	t.Helper()
	r := &replica{svc: w.svc, url: w.url}
	code, body := r.do(t, "POST", "/v1/access-keys", adminToken, strings.NewReader(fmt.Sprintf(`{"name":%q,"role":%q}`, name, role)), "application/json")
	require.Equal(t, http.StatusCreated, code, string(body))
	var k struct{ Key string }
	require.NoError(t, json.Unmarshal(body, &k))
	require.True(t, strings.HasPrefix(k.Key, "rpk_"), string(body))
	return k.Key
}

func (w *cliWorld) otaLane(t *testing.T, tag string) release.Lane {
	t.Helper()
	rel, err := w.svc.Store.ReleaseByTag(context.Background(), "acme", tag)
	require.NoError(t, err)
	lanes, err := w.svc.Store.Lanes(context.Background(), rel.ID)
	require.NoError(t, err)
	require.Len(t, lanes, 1)
	return lanes[0]
}

func (w *cliWorld) events(t *testing.T, tag string) []release.Event {
	t.Helper()
	rel, err := w.svc.Store.ReleaseByTag(context.Background(), "acme", tag)
	require.NoError(t, err)
	evs, err := w.svc.Store.Events(context.Background(), rel.ID, 0, 100)
	require.NoError(t, err)
	return evs
}

// TestCodePushCLI drives the real code-push-cli 2.1.9 through a whole flow
// against releasepilot: login with an access key, app ls, deployment ls,
// release (gated on the commit named in the description), promote (which
// starts the staged rollout at the plan's first stage), patch --rollout,
// rollback, deployment history and logout. Every change is releasepilot's:
// a lane, moved as commands would, audited with the access key's name.
func TestCodePushCLI(t *testing.T) {
	t.Parallel()
	w := newCLIWorld(t, `  - {name: acme, repository: acme/mobile, webhook_secret: s, ota: {enabled: true},
     rollout: {gates: [{metric: ota_failure_rate, max: 0.05, min_samples: 50}]}}
`)
	cli := newCLI(t)
	key := w.accessKey(t, "release-bot", "operator")

	// Not logged in, and a wrong key: the CLI shows the server's sentence.
	out := cli.fails(t, "login", w.url, "--accessKey", "rpk_not-a-key-at-all")
	require.Contains(t, out, "Invalid access key.") // the CLI's own words for a 401 at login
	out = cli.ok(t, "login", w.url, "--accessKey", key)
	require.Contains(t, out, "Successfully logged-in")
	require.FileExists(t, filepath.Join(cli.home, ".code-push.config"))

	out = cli.ok(t, "whoami")
	require.Contains(t, out, "accesskey:release-bot")
	out = cli.ok(t, "app", "ls")
	require.Contains(t, out, "acme-ios")
	require.Contains(t, out, "acme-android")
	require.Contains(t, out, "Production, Staging")

	out = cli.ok(t, "deployment", "ls", "acme-ios", "-k")
	var deps struct {
		Deployments []struct{ Name, Key string } `json:"deployments"`
	}
	r := &replica{svc: w.svc, url: w.url}
	code, body := r.do(t, "GET", "/apps/acme-ios/deployments/", key, nil, "")
	require.Equal(t, http.StatusOK, code, string(body))
	require.NoError(t, json.Unmarshal(body, &deps))
	require.Len(t, deps.Deployments, 2)
	for _, d := range deps.Deployments {
		require.Contains(t, out, d.Name)
		require.Contains(t, out, d.Key, "-k shows the deployment keys")
	}

	// A release must name its commit; a native one is refused naming the
	// file that differs from the 1.4.0 binary.
	bundle := cliBundle(t, "js fix 1")
	out = cli.fails(t, "release", "acme-ios", bundle, "1.4.0", "--description", "Fix the typo")
	require.Contains(t, out, "names no commit")
	require.Contains(t, out, `a line "Commit: SHA" in the CodePush CLI's --description`)
	out = cli.fails(t, "release", "acme-ios", cliBundle(t, "js needing iOS 17"), "1.4.0", "--description", "Require iOS 17\nCommit: "+w.nt)
	require.Contains(t, out, "ios/Podfile")
	out = cli.ok(t, "release", "acme-ios", bundle, "1.4.0", "--description", "Fix the typo\nCommit: "+w.fix)
	require.Contains(t, out, `Successfully released an update containing the "`)
	staged := w.otaLane(t, "hotfix:acme-ios/Staging/v1")
	require.Equal(t, release.StatePending, staged.Status.State)

	// Promote: Production starts at the plan's first stage, 10 %, however
	// much the CLI asks for (it sends 100 by default).
	out = cli.ok(t, "promote", "acme-ios", "Staging", "Production")
	require.Contains(t, out, `Successfully promoted the "Staging" deployment of the "acme-ios" app to the "Production" deployment`)
	lane := w.otaLane(t, "hotfix:acme-ios/Staging/v1")
	require.Equal(t, staged.ID, lane.ID, "the staged lane is the one rolling out")
	require.Equal(t, release.StateRolling, lane.Status.State)
	require.Equal(t, 10, lane.Status.Percent)

	// patch --rollout is the operator's advance, past the plan's waits and
	// gates up to that percentage; then to 100 % completes the lane.
	cli.ok(t, "patch", "acme-ios", "Production", "-r", "50%")
	lane = w.otaLane(t, "hotfix:acme-ios/Staging/v1")
	require.Equal(t, 50, lane.Status.Percent)
	require.Equal(t, release.StateRolling, lane.Status.State)
	out = cli.fails(t, "patch", "acme-ios", "Production", "-r", "40%")
	require.Contains(t, out, `Rollout value must be greater than "50", the existing value.`)
	cli.ok(t, "patch", "acme-ios", "Production", "-r", "100%")
	require.Equal(t, release.StateCompleted, w.otaLane(t, "hotfix:acme-ios/Staging/v1").Status.State)

	// The next fix, promoted at 20 %, then rolled back to v1.
	cli.ok(t, "release", "acme-ios", cliBundle(t, "js fix 2"), "1.4.0", "--description", "Fix the date format\nCommit: "+w.fix2)
	cli.ok(t, "promote", "acme-ios", "Staging", "Production", "-r", "5%")
	second := w.otaLane(t, "hotfix:acme-ios/Staging/v2")
	require.Equal(t, 5, second.Status.Percent, "a lower start than the plan's first stage is kept, as a stage of its own")
	out, ok := cli.run(t, "y\n", "rollback", "acme-ios", "Production")
	require.True(t, ok, out)
	require.Contains(t, out, `Successfully performed a rollback on the "Production" deployment of the "acme-ios" app`)
	second = w.otaLane(t, "hotfix:acme-ios/Staging/v2")
	require.Equal(t, release.StateHalted, second.Status.State)
	require.Contains(t, second.Status.Reason, "rolled back to v1 by accesskey:release-bot")

	out = cli.ok(t, "deployment", "history", "acme-ios", "Production")
	for _, want := range []string{"v1", "v2", "v3", "Promoted v1 from \"Staging\"", "Promoted v2 from \"Staging\"", "Rolled back v2 to v1"} {
		require.Contains(t, out, want)
	}

	// The audit log names the access key.
	var kinds []string
	for _, e := range w.events(t, "hotfix:acme-ios/Staging/v2") {
		require.Equal(t, "accesskey:release-bot", e.Actor, e.Kind)
		kinds = append(kinds, e.Kind)
	}
	require.Equal(t, []string{"ota.released", "ota.promoted", "command.rollback"}, kinds)
	kinds = nil
	for _, e := range w.events(t, "hotfix:acme-ios/Staging/v1") {
		kinds = append(kinds, e.Kind)
	}
	require.Equal(t, []string{"ota.released", "ota.promoted", "command.advance", "command.complete"}, kinds)

	out = cli.ok(t, "logout")
	require.Contains(t, out, "Successfully logged-out")
	require.NoFileExists(t, filepath.Join(cli.home, ".code-push.config"))
	out = cli.fails(t, "app", "ls")
	require.Contains(t, out, "You are not currently logged in")
}

// TestCodePushCLISignedPackages: an app with a signing key takes packages
// signed by code-push-cli's --privateKeyPath and by releasepilot ota
// release --private-key, and refuses unsigned ones and ones changed after
// signing, with the reason.
func TestCodePushCLISignedPackages(t *testing.T) {
	t.Parallel()
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	require.NoError(t, err)
	pubDER, err := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	require.NoError(t, err)
	dir := t.TempDir()
	keyPath := filepath.Join(dir, "private.pem")
	require.NoError(t, os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600))
	pubPath := filepath.Join(dir, "public.pem")
	require.NoError(t, os.WriteFile(pubPath, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), 0o644))

	w := newCLIWorld(t, fmt.Sprintf("  - {name: acme, repository: acme/mobile, webhook_secret: s, ota: {enabled: true, signing_public_key_file: %q}}\n", pubPath))
	cli := newCLI(t)
	cli.ok(t, "login", w.url, "--accessKey", w.accessKey(t, "ci", "operator"))

	out := cli.fails(t, "release", "acme-ios", cliBundle(t, "unsigned"), "1.4.0", "--description", "Commit: "+w.fix)
	require.Contains(t, out, "the package is not signed")
	out = cli.ok(t, "release", "acme-ios", cliBundle(t, "signed by the CLI"), "1.4.0", "-k", keyPath, "--description", "Commit: "+w.fix)
	require.Contains(t, out, "Successfully released")

	// Signed with another key.
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	otherDER, err := x509.MarshalPKCS8PrivateKey(other)
	require.NoError(t, err)
	otherPath := filepath.Join(dir, "other.pem")
	require.NoError(t, os.WriteFile(otherPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: otherDER}), 0o600))
	out = cli.fails(t, "release", "acme-ios", cliBundle(t, "signed by someone else"), "1.4.0", "-k", otherPath, "--description", "Commit: "+w.fix2)
	require.Contains(t, out, "does not verify with this app's public key")

	// releasepilot ota release signs with --private-key: what it sends.
	c := &apiclient.Client{BaseURL: w.url, Token: adminToken}
	var zip bytes.Buffer
	_, err = codepush.WritePackage(&zip, cliBundle(t, "signed by releasepilot"), priv, time.Now())
	require.NoError(t, err)
	res, err := c.OTARelease(context.Background(), map[string]any{"app": "acme", "platform": "ios", "commit": w.fix2}, bytes.NewReader(zip.Bytes()))
	require.NoError(t, err)
	require.Equal(t, "v2", res["label"])
	require.Equal(t, "1.4.0", res["target_binary"], "the binaries that share the commit's fingerprint")

	// The same package with a file changed after signing is refused.
	tampered := rezip(t, zip.Bytes(), "CodePush/main.jsbundle", "signed by releasepilot, then changed")
	_, err = c.OTARelease(context.Background(), map[string]any{"app": "acme", "platform": "ios", "commit": w.fix2, "deployment": "Production"}, bytes.NewReader(tampered))
	var ae *apiclient.Error
	require.ErrorAs(t, err, &ae)
	require.Equal(t, http.StatusBadRequest, ae.Status)
	require.Contains(t, ae.Message, "the files changed after signing")

	// Unsigned through the API too.
	zip.Reset()
	_, err = codepush.WritePackage(&zip, cliBundle(t, "unsigned by releasepilot"), nil, time.Now())
	require.NoError(t, err)
	_, err = c.OTARelease(context.Background(), map[string]any{"app": "acme", "platform": "ios", "commit": w.fix2}, bytes.NewReader(zip.Bytes()))
	require.ErrorAs(t, err, &ae)
	require.Contains(t, ae.Message, "not signed")

	code, body := (&replica{svc: w.svc, url: w.url}).do(t, "GET", "/v1/codepush/apps/acme-ios/deployments/Staging/history", adminToken, nil, "")
	require.Equal(t, http.StatusOK, code)
	var hist struct{ History []struct{ Label string } }
	require.NoError(t, json.Unmarshal(body, &hist))
	require.Len(t, hist.History, 2, "only the two correctly signed packages were released: %s", body)
}

// rezip copies a zip, replacing the content of one entry.
func rezip(t *testing.T, src []byte, name, content string) []byte {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(src), int64(len(src)))
	require.NoError(t, err)
	var out bytes.Buffer
	zw := zip.NewWriter(&out)
	for _, f := range zr.File {
		fw, err := zw.Create(f.Name)
		require.NoError(t, err)
		if f.Name == name {
			_, err = fw.Write([]byte(content))
			require.NoError(t, err)
			continue
		}
		rc, err := f.Open()
		require.NoError(t, err)
		_, err = io.Copy(fw, rc)
		rc.Close()
		require.NoError(t, err)
	}
	require.NoError(t, zw.Close())
	return out.Bytes()
}
