package playstore_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/swapjoy/releasepilot/playstore/playstoretest"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/golden")

// golden compares got with testdata/golden/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name)
	if *update {
		require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
		require.NoError(t, os.WriteFile(path, got, 0o644))
		return
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "golden file missing; run go test ./playstore/ -update")
	require.Equal(t, string(want), string(got), "golden %s differs; run with -update if the change is intended", name)
}

// stepRecord is the exact PUT the client sent in its last track update and
// the track Play holds afterwards.
func stepRecord(t *testing.T, fake *playstoretest.Server, track string) []byte {
	t.Helper()
	var put []byte
	for _, x := range fake.Exchanges() {
		if x.Method == playstoretest.MethodTracksUpdate {
			put = x.RequestBody
		}
	}
	var buf bytes.Buffer
	buf.WriteString("PUT body (exact bytes):\n")
	buf.Write(bytes.TrimSpace(put))
	buf.WriteString("\n\ncommitted track:\n")
	var v any
	require.NoError(t, json.Unmarshal(fake.TrackJSON(pkg, track), &v))
	b, _ := json.MarshalIndent(v, "", "  ")
	buf.Write(b)
	buf.WriteString("\n")
	return buf.Bytes()
}
