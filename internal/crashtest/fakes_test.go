package crashtest

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/swapjoy/releasepilot/internal/jobs/androidlane"
)

// TestBundleWithVersionCode: releasepilot and the Play fake read the same
// versionCode from the harness's bundles.
func TestBundleWithVersionCode(t *testing.T) {
	t.Parallel()
	b, err := BundleWithVersionCode(42)
	require.NoError(t, err)
	vc, err := androidlane.ManifestVersionCode(bytes.NewReader(b), int64(len(b)))
	require.NoError(t, err)
	require.Equal(t, int64(42), vc)
	require.True(t, strings.HasPrefix(string(b), "PK\x03\x04FAKEAAB versionCode=42\n"))
}

// TestRulesHoldAndRelease: a rule holds the matching request until it is
// released; a before-rule whose client went away drops the request; the
// control API reports the hit and a failpoint's pid.
func TestRulesHoldAndRelease(t *testing.T) {
	t.Parallel()
	f, err := Start()
	require.NoError(t, err)
	defer f.Close()
	ctx := context.Background()
	post := func(url string, body any, out any) int {
		b, _ := json.Marshal(body)
		res, err := http.Post(url, "application/json", bytes.NewReader(b))
		require.NoError(t, err)
		defer res.Body.Close()
		if out != nil {
			_ = json.NewDecoder(res.Body).Decode(out)
		}
		return res.StatusCode
	}
	var c struct{ Commit string }
	require.Equal(t, 200, post(f.Info().Control+"/releases", RepoRelease{Tag: "v1.1.0", Version: "1.1.0", Build: "2", App: "hi", VersionCode: 2, IPA: true}, &c))
	require.Len(t, c.Commit, 40)

	var rid struct{ ID int }
	require.Equal(t, 200, post(f.Info().Control+"/rules", Rule{Fake: "github", Method: "GET", Path: "/releases/tags/", Skip: 1}, &rid))
	url := f.Info().GitHub + "/repos/" + Repository + "/releases/tags/v1.1.0"
	get := func() (int, error) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		req.Header.Set("Authorization", "Bearer "+f.Info().GitHubToken)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err
		}
		res.Body.Close()
		return res.StatusCode, nil
	}
	code, err := get()
	require.NoError(t, err)
	require.Equal(t, 200, code, "skipped once")
	done := make(chan int, 1)
	go func() { c, _ := get(); done <- c }()
	res, err := http.Get(f.Info().Control + "/rules/" + itoa(rid.ID) + "/hit?wait=10s")
	require.NoError(t, err)
	require.Equal(t, 200, res.StatusCode)
	res.Body.Close()
	select {
	case <-done:
		t.Fatal("the request was not held")
	case <-time.After(100 * time.Millisecond):
	}
	require.Equal(t, 200, post(f.Info().Control+"/rules/"+itoa(rid.ID)+"/release", nil, nil))
	require.Equal(t, 200, <-done)

	// A failpoint reports its pid and waits.
	require.Equal(t, 200, post(f.Info().Control+"/rules", Rule{Fake: "hook", Method: "ota.promoted"}, &rid))
	hookDone := make(chan struct{})
	go func() {
		post(f.Info().Control+"/hit", map[string]any{"name": "ota.promoted", "pid": 4242}, nil)
		close(hookDone)
	}()
	var hit struct{ PID int }
	res, err = http.Get(f.Info().Control + "/rules/" + itoa(rid.ID) + "/hit?wait=10s")
	require.NoError(t, err)
	require.NoError(t, json.NewDecoder(res.Body).Decode(&hit))
	res.Body.Close()
	require.Equal(t, 4242, hit.PID)
	f.Release(rid.ID)
	<-hookDone
	require.Equal(t, 200, post(f.Info().Control+"/hit", map[string]any{"name": "other", "pid": 1}, nil), "an unarmed failpoint passes")
}

func itoa(i int) string { b, _ := json.Marshal(i); return string(b) }
