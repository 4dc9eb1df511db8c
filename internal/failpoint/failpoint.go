// Package failpoint marks points in releasepilot's work where the crash
// tests stop a process: a point that no external fake can see (a change
// in releasepilot's own CodePush server, say) reports itself to the test
// harness and waits for its answer, and the harness kills the process
// there.
//
// Failpoints are off unless the environment variable
// RELEASEPILOT_FAILPOINTS_URL is set when the process starts; then Hit
// posts {"name": …, "pid": …} to that URL and blocks until the answer
// comes (or ctx ends). Off, Hit costs one comparison.
package failpoint

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
)

// EnvURL names the variable that turns failpoints on.
const EnvURL = "RELEASEPILOT_FAILPOINTS_URL"

var url = os.Getenv(EnvURL)

// Hit reports that the process reached the point name. It never fails: an
// unreachable harness is ignored.
func Hit(ctx context.Context, name string) {
	if url == "" {
		return
	}
	body, _ := json.Marshal(map[string]any{"name": name, "pid": os.Getpid()})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return
	}
	req.Header.Set("Content-Type", "application/json")
	if res, err := http.DefaultClient.Do(req); err == nil {
		res.Body.Close()
	}
}
