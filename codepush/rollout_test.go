package codepush

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

type rolloutVector struct {
	ClientID string `json:"c"`
	Tag      string `json:"t"`
	Hash     int64  `json:"h"` // int64: many values exceed int32
	Bucket   int64  `json:"b"`
}

func TestRolloutVectors(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile(filepath.Join("testdata", "codepush-rollout-vectors.json"))
	require.NoError(t, err, "codepush-rollout-vectors.json is required")
	var vs []rolloutVector
	require.NoError(t, json.Unmarshal(b, &vs))
	require.Len(t, vs, 2006)
	for _, v := range vs {
		require.Equal(t, v.Hash, rolloutHash(v.ClientID+"-"+v.Tag), "hash of %q/%q", v.ClientID, v.Tag)
		for r := 0; r <= 100; r++ {
			require.Equal(t, v.Bucket < int64(r), InRollout(v.ClientID, r, v.Tag), "%q/%q at %d%%", v.ClientID, v.Tag, r)
		}
	}
	// The reference's worked example.
	require.Equal(t, int64(-9494393789), rolloutHash("D8A5C3E2-1B2C-4D5E-8F90-123456789ABC-v7"))
}
