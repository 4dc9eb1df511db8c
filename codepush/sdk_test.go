package codepush

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// sdkVersion is the code-push SDK that react-native-code-push@9.0.1 pins
// (and the last published version).
const sdkVersion = "4.2.3"

// installSDK installs the code-push npm package into testdata/sdk once; later
// runs reuse it. Node and npm are required: CI has them.
func installSDK(t *testing.T) (node, dir string) {
	t.Helper()
	node, err := exec.LookPath("node")
	require.NoError(t, err, "node (Node.js >= 18) is required to run the real code-push SDK against the server")
	dir, err = filepath.Abs(filepath.Join("testdata", "sdk"))
	require.NoError(t, err)
	if b, err := os.ReadFile(filepath.Join(dir, "node_modules", "code-push", "package.json")); err == nil {
		var p struct{ Version string }
		if json.Unmarshal(b, &p) == nil && p.Version == sdkVersion {
			return node, dir
		}
	}
	npm, err := exec.LookPath("npm")
	require.NoError(t, err, "npm is required to install code-push@%s for the SDK test", sdkVersion)
	cmd := exec.Command(npm, "install", "--no-audit", "--no-fund", "--no-save", "--no-package-lock", "code-push@"+sdkVersion)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "npm install code-push@%s failed:\n%s", sdkVersion, out)
	return node, dir
}

type sdkResult struct {
	Op    string          `json:"op"`
	Error *string         `json:"error"`
	Value json.RawMessage `json:"value"`
}

func runSDK(t *testing.T, node, dir string, cfg map[string]any) []sdkResult {
	t.Helper()
	arg, err := json.Marshal(cfg)
	require.NoError(t, err)
	cmd := exec.Command(node, filepath.Join(dir, "drive.js"), string(arg))
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "node drive.js: %s", stderr.String())
	var res []sdkResult
	require.NoError(t, json.Unmarshal(out, &res), string(out))
	for _, r := range res {
		require.Nil(t, r.Error, "SDK op %s failed", r.Op)
	}
	return res
}

type remotePackage struct {
	DeploymentKey    string `json:"deploymentKey"`
	Description      string `json:"description"`
	Label            string `json:"label"`
	AppVersion       string `json:"appVersion"`
	IsMandatory      bool   `json:"isMandatory"`
	PackageHash      string `json:"packageHash"`
	PackageSize      int64  `json:"packageSize"`
	DownloadURL      string `json:"downloadUrl"`
	UpdateAppVersion bool   `json:"updateAppVersion"`
}

// TestRealSDK drives code-push's AcquisitionManager with Node.js against the
// server: check, download, report download and install, then a failed
// install of the next release.
func TestRealSDK(t *testing.T) {
	t.Parallel()
	node, dir := installSDK(t)
	tb := setup(t)
	tb.svc.cfg.PublicURL = "" // download URLs must point at the test server
	mux := http.NewServeMux()
	tb.svc.RegisterAcquisition(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	key := tb.key(t, Production)
	v1 := tb.release(t, Production, "^1.4.0", "bundle one", func(in *ReleaseInput) { in.Description = "first"; in.Mandatory = true })

	base := map[string]any{"serverUrl": srv.URL, "deploymentKey": key, "appVersion": "1.4.0", "clientUniqueId": "D8A5C3E2-1B2C-4D5E-8F90-123456789ABC"}
	with := func(ops ...map[string]any) map[string]any {
		m := map[string]any{}
		for k, v := range base {
			m[k] = v
		}
		m["ops"] = ops
		return m
	}
	res := runSDK(t, node, dir, with(map[string]any{"op": "check", "current": map[string]any{"appVersion": "1.4.0"}}))
	var pkg remotePackage
	require.NoError(t, json.Unmarshal(res[0].Value, &pkg))
	require.Equal(t, remotePackage{DeploymentKey: key, Description: "first", Label: "v1", AppVersion: "1.4.0", IsMandatory: true,
		PackageHash: v1.PackageHash, PackageSize: v1.Size, DownloadURL: srv.URL + PathPackages + v1.BlobKey}, pkg)

	res = runSDK(t, node, dir, with(
		map[string]any{"op": "download", "url": pkg.DownloadURL},
		map[string]any{"op": "reportDownload", "package": pkg},
		map[string]any{"op": "reportDeploy", "package": pkg, "status": "DeploymentSucceeded", "previousLabelOrAppVersion": "1.4.0"},
		map[string]any{"op": "check", "current": map[string]any{"appVersion": "1.4.0", "label": "v1", "packageHash": v1.PackageHash}},
		map[string]any{"op": "check", "current": map[string]any{"appVersion": "0.9.0"}},
	))
	require.JSONEq(t, `{"status":200,"sha256":"`+v1.PackageHash+`"}`, string(res[0].Value), "the downloaded bytes hash to packageHash")
	require.Equal(t, "null", string(res[3].Value), "a device on the latest release gets no update")
	require.JSONEq(t, `{"updateAppVersion":true,"appVersion":"^1.4.0"}`, string(res[4].Value))

	v2 := tb.release(t, Production, "^1.4.0", "bundle two")
	res = runSDK(t, node, dir, with(
		map[string]any{"op": "check", "current": map[string]any{"appVersion": "1.4.0", "label": "v1", "packageHash": v1.PackageHash}},
	))
	require.NoError(t, json.Unmarshal(res[0].Value, &pkg))
	require.Equal(t, "v2", pkg.Label)
	require.Equal(t, v2.PackageHash, pkg.PackageHash)
	require.False(t, pkg.IsMandatory)
	runSDK(t, node, dir, with(
		map[string]any{"op": "reportDownload", "package": pkg},
		map[string]any{"op": "reportDeploy", "package": pkg, "status": "DeploymentFailed", "previousLabelOrAppVersion": "v1"},
	))

	m, err := tb.svc.Metrics(tb.ctx, "Swap-iOS", Production)
	require.NoError(t, err)
	require.Equal(t, map[string]Counts{
		"v1": {Active: 1, Downloaded: 1, Installed: 1, Clients: 1},
		"v2": {Downloaded: 1, Failed: 1, Clients: 1},
		// The binary 1.4.0 the device left was never counted active, so
		// it is not counted down either: no negative counts.
	}, m)
}
