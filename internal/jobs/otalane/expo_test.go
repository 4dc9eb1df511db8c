package otalane_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/stretchr/testify/require"

	"github.com/swapjoy/releasepilot/codepush"
	"github.com/swapjoy/releasepilot/codepush/expoupdates"
	"github.com/swapjoy/releasepilot/internal/config"
	"github.com/swapjoy/releasepilot/internal/gate"
	"github.com/swapjoy/releasepilot/internal/release"
)

// exportTarGz is the committed `npx expo export` fixture as CI would attach
// it to a GitHub release: dist/ in a .tar.gz.
func exportTarGz(t *testing.T) string {
	t.Helper()
	root := filepath.Join("..", "..", "..", "codepush", "expoupdates", "testdata", "expo-export")
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	require.NoError(t, filepath.Walk(root, func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if err := tw.WriteHeader(&tar.Header{Name: "dist/" + filepath.ToSlash(rel), Mode: 0o644, Size: int64(len(b)), Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		_, err = tw.Write(b)
		return err
	}))
	require.NoError(t, tw.Close())
	require.NoError(t, gz.Close())
	return buf.String()
}

type expoLane struct {
	*otaBundle
	srv *httptest.Server
}

// setupExpoLane is setupOTA for an app whose devices speak Expo Updates:
// its iOS binary 1.0.0 (runtime version 1.0.0, the fixture's appVersion
// policy) was built from c100.
func setupExpoLane(t *testing.T) *expoLane {
	t.Helper()
	b := newOTABundle(t, gate.OTAApp{App: "acme", Platform: release.IOS, Expo: true}, config.OTA{Enabled: true, Stages: release.DefaultStages,
		AppName: "acme", Protocol: "expo", Expo: config.Expo{DistAsset: "expo-dist.tar.gz"}})
	b.commit(t, "c100", map[string]string{"ios/Podfile": "platform :ios, '15.0'\n", "src/App.tsx": "v0\n"})
	b.binary(t, "1.0.0", "1", "c100")
	srv := httptest.NewServer(expoupdates.NewServer(expoupdates.Config{CodePush: b.cp,
		Apps: map[string]expoupdates.App{"acme": {CodePushApps: map[string]string{"ios": "acme-ios"}}}}).Handler())
	t.Cleanup(srv.Close)
	return &expoLane{otaBundle: b, srv: srv}
}

func (e *expoLane) expoLane(t *testing.T, tag, commit, podfile string) release.Lane {
	t.Helper()
	e.commit(t, commit, map[string]string{"ios/Podfile": podfile, "src/App.tsx": tag})
	e.assets.Put(tag, "expo-dist.tar.gz", "expo-dist.tar.gz", []byte(exportTarGz(t)))
	r, _, err := e.st.CreateRelease(context.Background(), release.Release{App: "acme", Tag: tag, Version: tag[1:], Commit: commit, CreatedAt: e.now})
	require.NoError(t, err)
	l, err := e.st.CreateLane(context.Background(), release.Lane{ReleaseID: r.ID, Platform: release.IOS, Kind: release.KindOTA,
		Plan: release.StagedPlan(release.DefaultStages, release.Wait{Soak: release.Duration(time.Hour)}, nil)}, e.now)
	require.NoError(t, err)
	return l
}

// ask is an expo-updates manifest request; it returns the directive type
// or "manifest:<id>".
func (e *expoLane) ask(t *testing.T, clientID, current string) string {
	t.Helper()
	req, _ := http.NewRequest("GET", e.srv.URL+"/expo/manifest/acme", nil)
	for k, v := range map[string]string{"Expo-Platform": "ios", "Expo-Protocol-Version": "1", "Expo-Runtime-Version": "1.0.0",
		"Accept": "multipart/mixed", "EAS-Client-ID": clientID, "Expo-Current-Update-ID": current, "Expo-Embedded-Update-ID": "e0e0e0e0-0000-4000-8000-000000000000"} {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(b))
	s := string(b)
	switch {
	case strings.Contains(s, `"type":"noUpdateAvailable"`):
		return "noUpdateAvailable"
	case strings.Contains(s, `"type":"rollBackToEmbedded"`):
		return "rollBackToEmbedded"
	}
	i := strings.Index(s, `{"id":"`)
	require.GreaterOrEqual(t, i, 0, s)
	var m struct{ ID string }
	require.NoError(t, json.NewDecoder(strings.NewReader(s[i:])).Decode(&m))
	return "manifest:" + m.ID
}

func (e *expoLane) offered(t *testing.T) int {
	n := 0
	for i := 0; i < 100; i++ {
		if strings.HasPrefix(e.ask(t, fmt.Sprintf("c0ffee00-0000-4000-8000-%012d", i), "e0e0e0e0-0000-4000-8000-000000000000"), "manifest:") {
			n++
		}
	}
	return n
}

// TestExpoLaneStagesRollsOutHaltsAndRollsBackToEmbedded takes an Expo export
// from a GitHub release asset through the OTA lane: the runtime version from
// its app config, the native gate, Staging, Production at the first stage
// for about a tenth of the installs, the reconciler's advance, a halt, and a
// rollback past the first update that sends installs back to the embedded
// update.
func TestExpoLaneStagesRollsOutHaltsAndRollsBackToEmbedded(t *testing.T) {
	t.Parallel()
	e := setupExpoLane(t)
	ctx := context.Background()
	l := e.expoLane(t, "v1.0.1", "c101", "platform :ios, '15.0'\n")
	require.NoError(t, e.work(ctx, l))
	staging, prod := e.history(t, codepush.Staging), e.history(t, codepush.Production)
	require.Len(t, staging, 1)
	require.Equal(t, "1.0.0", staging[0].AppVersion, "the runtime version of the export")
	require.Len(t, prod, 1)
	require.Equal(t, 10, prod[0].Rollout)
	require.Equal(t, release.StateRolling, e.laneStatus(t, l).State)
	require.NoError(t, e.work(ctx, l), "a retried job changes nothing")
	require.Len(t, e.history(t, codepush.Staging), 1)
	require.Equal(t, 1, e.assets.Fetches())

	require.NoError(t, e.ro.Pass(ctx))
	require.InDelta(t, 10, e.offered(t), 9, "about a tenth of the installs (eas-client-id buckets)")
	e.now = e.now.Add(61 * time.Minute)
	require.NoError(t, e.ro.Pass(ctx))
	require.Equal(t, 25, e.history(t, codepush.Production)[0].Rollout)
	require.InDelta(t, 25, e.offered(t), 12)

	// An install that took the update.
	var taker, id string
	for i := 0; id == ""; i++ {
		c := fmt.Sprintf("c0ffee00-0000-4000-8000-%012d", i)
		if a := e.ask(t, c, "e0e0e0e0-0000-4000-8000-000000000000"); strings.HasPrefix(a, "manifest:") {
			taker, id = c, strings.TrimPrefix(a, "manifest:")
		}
	}
	require.Equal(t, "noUpdateAvailable", e.ask(t, taker, id))

	// Halt: nobody new gets it.
	_, err := e.ro.Command(ctx, l.ID, release.CmdHalt, "token:ana", "crash on launch")
	require.NoError(t, err)
	require.Zero(t, e.offered(t))

	// Rollback past the first update: the install running it goes back to
	// its embedded update.
	_, err = e.ro.Command(ctx, l.ID, release.CmdRollback, "token:ana", "crash on launch")
	require.NoError(t, err)
	require.Equal(t, "rollBackToEmbedded", e.ask(t, taker, id))
	require.Equal(t, "noUpdateAvailable", e.ask(t, taker, "e0e0e0e0-0000-4000-8000-000000000000"))
}

func TestExpoLaneRefusesANativeCommit(t *testing.T) {
	t.Parallel()
	e := setupExpoLane(t)
	ctx := context.Background()
	l := e.expoLane(t, "v1.0.2", "c102", "platform :ios, '17.0'\n")
	var cancel *river.JobCancelError
	require.ErrorAs(t, e.work(ctx, l), &cancel, "a refusal ends the job for good")
	st := e.laneStatus(t, l)
	require.Equal(t, release.StateFailed, st.State)
	require.Contains(t, st.Reason, "native gate")
	require.Contains(t, st.Reason, "runtime version")
	require.Contains(t, st.Reason, "ios/Podfile")
	require.Empty(t, e.history(t, codepush.Staging))
}
