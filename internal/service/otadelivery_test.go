package service_test

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/swapjoy/releasepilot/codepush/s3blobs/s3test"
	"github.com/swapjoy/releasepilot/internal/apiclient"
	"github.com/swapjoy/releasepilot/internal/config"
	"github.com/swapjoy/releasepilot/internal/release"
	"github.com/swapjoy/releasepilot/internal/service"
	"github.com/swapjoy/releasepilot/internal/store/storetest"
)

func releaseZip(t *testing.T, files map[string]string) string {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, n := range []string{"CodePush/main.jsbundle", "CodePush/assets/logo.png", "CodePush/assets/old.png", "CodePush/assets/new.png"} {
		c, ok := files[n]
		if !ok {
			continue
		}
		w, err := zw.Create(n)
		require.NoError(t, err)
		_, err = w.Write([]byte(c))
		require.NoError(t, err)
	}
	require.NoError(t, zw.Close())
	return buf.String()
}

// TestOTADiffsOnS3ThroughRiver runs releasepilot with its packages in a real
// S3-compatible server: two releases through the management API, the diff
// built by the codepush_diffs River job, and an update check from a device
// on the first release answered with a presigned S3 URL of the diff.
func TestOTADiffsOnS3ThroughRiver(t *testing.T) {
	g := s3test.Start(t)
	for i, e := range storetest.Engines {
		t.Run(string(e), func(t *testing.T) {
			bucket := fmt.Sprintf("ota-%d", i)
			g.Bucket(t, bucket)
			t.Setenv("RP_S3_SECRET", s3test.SecretKey)
			yaml := fmt.Sprintf(`listen: 127.0.0.1:0
data_dir: %s
database: {url: %q}
codepush:
  storage: s3
  diff_count: 3
  s3:
    endpoint: %s
    region: %s
    bucket: %s
    access_key_id: %s
    secret_access_key: ${RP_S3_SECRET}
    presign_ttl: 15m
tokens:
  - {name: ops, role: operator, token: %q}
apps:
  - {name: acme, repository: acme/mobile, webhook_secret: s, ota: {enabled: true}}
`, t.TempDir(), storetest.URL(t, e), g.Endpoint, s3test.Region, bucket, s3test.AccessKey, operatorToken)
			cfg, err := config.Parse([]byte(yaml), "")
			require.NoError(t, err)
			ctx := context.Background()
			svc, err := service.New(ctx, cfg, nil)
			require.NoError(t, err)
			require.NoError(t, svc.Start(ctx))
			t.Cleanup(func() { _ = svc.Shutdown(context.Background()) })
			r := &replica{svc: svc, url: "http://" + svc.Addr}
			seedBinary(t, svc.Store)

			logo := incompressible(50000)
			v1 := map[string]string{"CodePush/main.jsbundle": "bundle 1", "CodePush/assets/logo.png": logo, "CodePush/assets/old.png": "old"}
			v2 := map[string]string{"CodePush/main.jsbundle": "bundle 2", "CodePush/assets/logo.png": logo, "CodePush/assets/new.png": "new"}
			// Staging: a release by hand to Production starts a staged
			// rollout, which must finish before the next release.
			path := "/v1/codepush/apps/acme-ios/deployments/Staging/release"
			var hashes []string
			for _, files := range []map[string]string{v1, v2} {
				rb, ct := releaseBody(t, map[string]any{"appVersion": "1.4.0", "commit": "c142"}, releaseZip(t, files))
				code, body := r.do(t, "POST", path, operatorToken, rb, ct)
				require.Equal(t, http.StatusCreated, code, string(body))
				var rel struct {
					Package struct {
						PackageHash string `json:"packageHash"`
					} `json:"package"`
				}
				require.NoError(t, json.Unmarshal(body, &rel), string(body))
				hashes = append(hashes, rel.Package.PackageHash)
			}
			code, body := r.do(t, "GET", "/v1/codepush/apps/acme-ios/deployments/Staging", operatorToken, nil, "")
			require.Equal(t, http.StatusOK, code)
			var dep struct {
				Deployment struct{ Key string }
			}
			require.NoError(t, json.Unmarshal(body, &dep))
			key := dep.Deployment.Key
			q := url.Values{"deployment_key": {key}, "app_version": {"1.4.0"}, "package_hash": {hashes[0]}, "label": {"v1"}}
			var info struct {
				UpdateInfo struct {
					DownloadURL string `json:"download_url"`
					PackageSize int64  `json:"package_size"`
					PackageHash string `json:"package_hash"`
				} `json:"update_info"`
			}
			// The River job builds the diff shortly after the release.
			require.Eventually(t, func() bool {
				code, body := r.do(t, "GET", "/v0.1/public/codepush/update_check?"+q.Encode(), "", nil, "")
				return code == http.StatusOK && json.Unmarshal(body, &info) == nil && info.UpdateInfo.PackageSize < 1000
			}, 20*time.Second, 50*time.Millisecond, "a diff is offered to devices on v1")
			require.Equal(t, hashes[1], info.UpdateInfo.PackageHash)
			require.True(t, strings.HasPrefix(info.UpdateInfo.DownloadURL, g.Endpoint+"/"+bucket+"/"), "served by the bucket: %s", info.UpdateInfo.DownloadURL)
			require.Contains(t, info.UpdateInfo.DownloadURL, "X-Amz-Expires=900")
			resp, err := http.Get(info.UpdateInfo.DownloadURL)
			require.NoError(t, err)
			diff, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			require.NoError(t, err)
			require.Equal(t, http.StatusOK, resp.StatusCode, string(diff))
			require.EqualValues(t, info.UpdateInfo.PackageSize, len(diff))
			zr, err := zip.NewReader(bytes.NewReader(diff), int64(len(diff)))
			require.NoError(t, err)
			var names []string
			for _, f := range zr.File {
				names = append(names, f.Name)
			}
			require.Equal(t, []string{"hotcodepush.json", "CodePush/assets/new.png", "CodePush/main.jsbundle"}, names)
			rc, err := zr.File[0].Open()
			require.NoError(t, err)
			hot, _ := io.ReadAll(rc)
			require.JSONEq(t, `{"deletedFiles":["CodePush/assets/old.png"]}`, string(hot))

			// A device without a package gets the full package from the bucket.
			q.Del("package_hash")
			q.Del("label")
			code, body = r.do(t, "GET", "/v0.1/public/codepush/update_check?"+q.Encode(), "", nil, "")
			require.Equal(t, http.StatusOK, code)
			require.NoError(t, json.Unmarshal(body, &info))
			require.Greater(t, info.UpdateInfo.PackageSize, int64(1000))
		})
	}
}

// incompressible is n deterministic bytes that deflate cannot shrink.
func incompressible(n int) string {
	out := make([]byte, 0, n+32)
	seed := sha256.Sum256([]byte("logo"))
	for len(out) < n {
		seed = sha256.Sum256(seed[:])
		out = append(out, seed[:]...)
	}
	return string(out[:n])
}

// TestExpoReleaseThroughTheService releases the committed `npx expo export`
// fixture the way `releasepilot ota release --expo-dist` does, behind the
// operator token and the native gate, with the rules of a CodePush release
// made by hand: a commit required, a staged start on Production, an OTA lane
// whose halt and resume disable and enable the update, the operator in the
// audit log. Rolled out, it is served to an expo-updates request; disabled,
// it is withdrawn from new installs.
func TestExpoReleaseThroughTheService(t *testing.T) {
	for _, e := range storetest.Engines {
		t.Run(string(e), func(t *testing.T) {
			yaml := fmt.Sprintf(`listen: 127.0.0.1:0
data_dir: %s
database: {url: %q}
tokens:
  - {name: viewer, role: viewer, token: %q}
  - {name: ops, role: operator, token: %q}
apps:
  - name: acme
    repository: acme/mobile
    webhook_secret: s
    ota: {enabled: true, protocol: expo}
`, t.TempDir(), storetest.URL(t, e), viewerToken, operatorToken)
			cfg, err := config.Parse([]byte(yaml), "")
			require.NoError(t, err)
			ctx := context.Background()
			svc, err := service.New(ctx, cfg, nil)
			require.NoError(t, err)
			require.NoError(t, svc.Start(ctx))
			t.Cleanup(func() { _ = svc.Shutdown(context.Background()) })
			r := &replica{svc: svc, url: "http://" + svc.Addr}
			seedBinary(t, svc.Store) // iOS 1.4.0 from c140; c142 is JS-only, c150 native

			upload := func(token string, fields map[string]string) (int, string) {
				body, ct := apiclient.ExpoDistBody(filepath.Join("..", "..", "codepush", "expoupdates", "testdata", "expo-export"), fields)
				code, b := r.do(t, "POST", "/v1/expo/release", token, body, ct)
				return code, string(b)
			}
			base := map[string]string{"app": "acme", "deployment": "Production", "platform": "ios", "commit": "c142"}
			code, body := upload(viewerToken, base)
			require.Equal(t, http.StatusForbidden, code, body)

			// The export's runtime version (appVersion policy: 1.0.0) has no
			// recorded binary: the gate refuses, naming it.
			code, body = upload(operatorToken, base)
			require.Equal(t, http.StatusConflict, code, body)
			require.Contains(t, body, `no recorded ios binary of acme has runtime version \"1.0.0\"`)

			with := func(k, v string) map[string]string {
				m := maps.Clone(base)
				m["runtimeVersion"] = "1.4.0"
				m[k] = v
				return m
			}
			// A native commit is refused, naming the file.
			code, body = upload(operatorToken, with("commit", "c150"))
			require.Equal(t, http.StatusConflict, code, body)
			require.Contains(t, body, "ios/Podfile")

			// No commit: refused, whatever the deployment.
			noCommit := with("deployment", "Staging")
			delete(noCommit, "commit")
			code, body = upload(operatorToken, noCommit)
			require.Equal(t, http.StatusConflict, code, body)
			require.Contains(t, body, "the update names no commit")

			// A release by hand to Production is a staged rollout, as a
			// CodePush hotfix is: the app's first stage however much it asks
			// for, an OTA lane, and the operator in the audit log.
			code, body = upload(operatorToken, with("rollout", "100"))
			require.Equal(t, http.StatusCreated, code, body)
			require.Contains(t, body, `"label":"v1"`)
			require.Contains(t, body, `"rollout":10`)
			require.Contains(t, body, `"releasedBy":"token:ops"`)
			rel, err := svc.Store.ReleaseByTag(ctx, "acme", "hotfix:acme-ios/Production/v1")
			require.NoError(t, err)
			require.Equal(t, "c142", rel.Commit)
			lanes, err := svc.Store.Lanes(ctx, rel.ID)
			require.NoError(t, err)
			require.Len(t, lanes, 1)
			l := lanes[0]
			require.Equal(t, release.KindOTA, l.Kind)
			require.Equal(t, release.StateRolling, l.Status.State)
			require.Equal(t, 10, l.Status.Percent)
			evs, err := svc.Store.Events(ctx, rel.ID, 0, 10)
			require.NoError(t, err)
			require.Len(t, evs, 1)
			require.Equal(t, "ota.promoted", evs[0].Kind)
			require.Equal(t, "token:ops", evs[0].Actor)
			require.Equal(t, "1.4.0", evs[0].Details["target_range"])

			get := func(current string) (int, http.Header, string) {
				req, _ := http.NewRequest("GET", r.url+"/expo/manifest/acme", nil)
				req.Header.Set("Expo-Platform", "ios")
				req.Header.Set("Expo-Protocol-Version", "1")
				req.Header.Set("Expo-Runtime-Version", "1.4.0")
				req.Header.Set("Expo-Current-Update-ID", current)
				req.Header.Set("Expo-Embedded-Update-ID", "e0e0e0e0-0000-4000-8000-000000000000")
				req.Header.Set("Accept", "multipart/mixed")
				resp, err := http.DefaultClient.Do(req)
				require.NoError(t, err)
				defer resp.Body.Close()
				b, _ := io.ReadAll(resp.Body)
				return resp.StatusCode, resp.Header, string(b)
			}
			disabled := func() bool {
				code, b := r.do(t, "GET", "/v1/codepush/apps/acme-ios/deployments/Production/history", operatorToken, nil, "")
				require.Equal(t, http.StatusOK, code, string(b))
				return strings.Contains(string(b), `"isDisabled":true`)
			}
			state := func() release.State {
				got, err := svc.Store.GetLane(ctx, l.ID)
				require.NoError(t, err)
				return got.Status.State
			}

			// The lane's halt disables the update; its resume enables it.
			code, cb := r.do(t, "POST", "/v1/lanes/"+l.ID+"/halt", operatorToken, strings.NewReader(`{"reason":"crash reports"}`), "application/json")
			require.Equal(t, http.StatusAccepted, code, string(cb))
			require.Eventually(t, func() bool { return state() == release.StateHalted && disabled() }, 20*time.Second, 20*time.Millisecond)
			code, cb = r.do(t, "POST", "/v1/lanes/"+l.ID+"/resume", operatorToken, strings.NewReader(`{"reason":"false alarm"}`), "application/json")
			require.Equal(t, http.StatusAccepted, code, string(cb))
			require.Eventually(t, func() bool { return state() == release.StateRolling && !disabled() }, 20*time.Second, 20*time.Millisecond)

			// Rolled out to everyone (here by the CodePush API, a command
			// to the lane), every install is offered it.
			code, pb := r.do(t, "PATCH", "/v1/codepush/apps/acme-ios/deployments/Production/release", operatorToken,
				strings.NewReader(`{"packageInfo":{"rollout":100}}`), "application/json")
			require.Equal(t, http.StatusOK, code, string(pb))
			require.Equal(t, release.StateCompleted, state())
			code, h, body := get("e0e0e0e0-0000-4000-8000-000000000000")
			require.Equal(t, http.StatusOK, code, body)
			require.Equal(t, "1", h.Get("expo-protocol-version"))
			require.Contains(t, body, `"runtimeVersion":"1.4.0"`)
			require.Contains(t, body, r.url+"/expo/assets/")

			// Disabled by hand afterwards: new installs get nothing.
			code, pb = r.do(t, "PATCH", "/v1/codepush/apps/acme-ios/deployments/Production/release", operatorToken,
				strings.NewReader(`{"packageInfo":{"isDisabled":true}}`), "application/json")
			require.Equal(t, http.StatusOK, code, string(pb))
			require.Eventually(t, func() bool {
				_, _, body := get("e0e0e0e0-0000-4000-8000-000000000000")
				return strings.Contains(body, "noUpdateAvailable")
			}, 10*time.Second, 20*time.Millisecond)
		})
	}
}
