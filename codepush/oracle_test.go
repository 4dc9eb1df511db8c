package codepush

import (
	"encoding/json"
	"os"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestResolveAgreesWithServerOracle replays testdata/resolution-oracle.json:
// 600 random histories and update checks (labels, hashes, rollback copies,
// disabled and mandatory entries, rollouts, companion apps, "1.0"/"2"-style
// app versions, prereleases) answered by a Node transcription of
// code-push-server's acquisition.ts (normalisation, echo, rollout selection)
// and utils/acquisition.ts getUpdatePackageInfo, run with node-semver 7.8.6.
// The full run of 60,000 cases agreed before this subset was kept.
func TestResolveAgreesWithServerOracle(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("testdata/resolution-oracle.json")
	require.NoError(t, err)
	var cases []struct {
		Hist []struct {
			Label, AppVersion, PackageHash, BlobURL, Description string
			IsMandatory, IsDisabled                              bool
			Rollout                                              *int
			Size                                                 int64
		}
		Req struct {
			AppVersion, Label, PackageHash, ClientUniqueID string
			IsCompanion                                    bool
		}
		Out *struct {
			DownloadURL, Description, AppVersion, PackageHash, Label string
			IsAvailable, IsMandatory, UpdateAppVersion               bool
			ShouldRunBinaryVersion                                   bool
			PackageSize                                              int64
		}
	}
	require.NoError(t, json.Unmarshal(b, &cases))
	require.Len(t, cases, 600)
	for i, c := range cases {
		var h []Release
		for _, e := range c.Hist {
			r := Release{Label: e.Label, AppVersion: e.AppVersion, PackageHash: e.PackageHash, BlobURL: e.BlobURL,
				Description: e.Description, Mandatory: e.IsMandatory, Disabled: e.IsDisabled, Size: e.Size}
			if e.Rollout != nil {
				r.Rollout = *e.Rollout
			}
			h = append(h, r)
		}
		info, err := Resolve(h, UpdateRequest{AppVersion: c.Req.AppVersion, Label: c.Req.Label, PackageHash: c.Req.PackageHash,
			ClientUniqueID: c.Req.ClientUniqueID, IsCompanion: c.Req.IsCompanion})
		if c.Out == nil {
			require.ErrorIs(t, err, ErrInvalid, "case %d: %q is not a valid app version", i, c.Req.AppVersion)
			continue
		}
		require.NoError(t, err, "case %d", i)
		o := c.Out
		want := UpdateInfo{DownloadURL: o.DownloadURL, Description: o.Description, AppVersion: o.AppVersion, PackageHash: o.PackageHash,
			Label: o.Label, IsAvailable: o.IsAvailable, IsMandatory: o.IsMandatory, UpdateAppVersion: o.UpdateAppVersion,
			ShouldRunBinaryVersion: o.ShouldRunBinaryVersion, PackageSize: o.PackageSize}
		info.Release = nil
		require.Equal(t, want, info, "case %d: request %+v, history %+v", i, c.Req, c.Hist)
	}
}
