package service_test

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/swapjoy/releasepilot/codepush/s3blobs/s3test"
	"github.com/swapjoy/releasepilot/internal/config"
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
			path := "/v1/codepush/apps/acme-ios/deployments/Production/release"
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
			code, body := r.do(t, "GET", "/v1/codepush/apps", operatorToken, nil, "")
			require.Equal(t, http.StatusOK, code)
			var apps struct {
				Apps []struct {
					Name        string
					Deployments []struct{ Name, Key string }
				}
			}
			require.NoError(t, json.Unmarshal(body, &apps))
			var key string
			for _, a := range apps.Apps {
				for _, d := range a.Deployments {
					if a.Name == "acme-ios" && d.Name == "Production" {
						key = d.Key
					}
				}
			}
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
