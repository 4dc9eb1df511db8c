package main

import (
	"archive/tar"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestOTAReleaseExpoDist(t *testing.T) {
	dist := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dist, "assets"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dist, "metadata.json"), []byte(`{"version":0}`), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dist, "assets", "abc"), []byte("png"), 0o644))

	code, _, errs := runCmd("ota", "release", "--expo-dist", dist)
	require.Equal(t, 2, code)
	require.Contains(t, errs, "--app is required")
	code, _, errs = runCmd("ota", "release", "--expo-dist", t.TempDir(), "--app", "acme")
	require.Equal(t, 2, code)
	require.Contains(t, errs, "no metadata.json")
	code, _, errs = runCmd("ota", "release", "--expo-dist", dist, "--app", "acme", "--rollout", "120")
	require.Equal(t, 2, code)
	require.Contains(t, errs, "--rollout 120")

	var fields map[string]string
	var files []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		require.Equal(t, "/v1/expo/release", r.URL.Path)
		require.Equal(t, "Bearer cli-token-0123456789", r.Header.Get("Authorization"))
		mr, err := r.MultipartReader()
		require.NoError(t, err)
		fields = map[string]string{}
		for {
			p, err := mr.NextPart()
			if err == io.EOF {
				break
			}
			require.NoError(t, err)
			if p.FormName() != "dist" {
				b, _ := io.ReadAll(p)
				fields[p.FormName()] = string(b)
				continue
			}
			gz, err := gzip.NewReader(p)
			require.NoError(t, err)
			tr := tar.NewReader(gz)
			for {
				h, err := tr.Next()
				if err == io.EOF {
					break
				}
				require.NoError(t, err)
				files = append(files, h.Name)
			}
		}
		w.WriteHeader(http.StatusCreated)
		w.Write([]byte(`{"releases":[{"app":"acme-ios","label":"v3","deployment":"Staging","runtimeVersion":"1.4.0","rollout":25,"assets":2}]}`))
	}))
	defer srv.Close()
	t.Setenv("RELEASEPILOT_TOKEN", "cli-token-0123456789")
	code, out, errs := runCmd("ota", "release", "--server", srv.URL, "--expo-dist", dist, "--app", "acme", "--platform", "ios",
		"--commit", "c142", "--runtime-version", "1.4.0", "--rollout", "25")
	require.Equal(t, 0, code, errs)
	require.Equal(t, "acme-ios v3 on Staging: runtime version 1.4.0, rollout 25%, 2 assets\n", out)
	require.Equal(t, map[string]string{"app": "acme", "deployment": "Staging", "platform": "ios", "commit": "c142",
		"runtimeVersion": "1.4.0", "rollout": "25", "mandatory": "false"}, fields)
	sort.Strings(files)
	require.Equal(t, []string{"assets/abc", "metadata.json"}, files)

	// A refusal is reported with the server's words, exit 2.
	refuse := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusConflict)
		w.Write([]byte(`{"error":"native gate: commit c150 changes native code"}`))
	}))
	defer refuse.Close()
	code, _, errs = runCmd("ota", "release", "--server", refuse.URL, "--expo-dist", dist, "--app", "acme")
	require.Equal(t, 2, code)
	require.Contains(t, errs, "409")
	require.Contains(t, errs, "native gate: commit c150 changes native code")
}
