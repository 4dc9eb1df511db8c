package codepush

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

func rel(label, rng string, mods ...func(*Release)) Release {
	r := Release{Label: label, AppVersion: rng, PackageHash: "hash-" + label, Size: 100, BlobURL: "https://cdn.example/" + label}
	for _, m := range mods {
		m(&r)
	}
	return r
}

func mandatory(r *Release) { r.Mandatory = true }
func disabled(r *Release)  { r.Disabled = true }
func rollout(p int) func(*Release) {
	return func(r *Release) { r.Rollout = p }
}

// clientIDs returns a device id inside and one outside a rollout of label.
func clientIDs(t *testing.T, percent int, label string) (in, out string) {
	t.Helper()
	for i := 0; in == "" || out == ""; i++ {
		id := fmt.Sprintf("device-%d", i)
		if InRollout(id, percent, label) {
			if in == "" {
				in = id
			}
		} else if out == "" {
			out = id
		}
	}
	return in, out
}

type want struct {
	available        bool
	label            string
	mandatory        bool
	appVersion       string
	updateAppVersion bool
	runBinary        bool
}

func check(t *testing.T, h []Release, req UpdateRequest, w want) {
	t.Helper()
	info, err := Resolve(h, req)
	require.NoError(t, err)
	got := want{info.IsAvailable, info.Label, info.IsMandatory, info.AppVersion, info.UpdateAppVersion, info.ShouldRunBinaryVersion}
	require.Equal(t, w, got, "request %+v", req)
	if info.IsAvailable {
		for _, r := range h {
			if r.Label == info.Label {
				require.Equal(t, r.PackageHash, info.PackageHash)
			}
		}
		require.Equal(t, "https://cdn.example/"+info.Label, info.DownloadURL)
		require.Equal(t, int64(100), info.PackageSize)
	}
}

// TestResolveReferenceTable is the table of reference §1.5 (history v1 1.0.0
// mandatory, v2 1.0.0, v3 ^1.0.0, v4 2.0.0, v5 ^1.0.0 at 25 %).
func TestResolveReferenceTable(t *testing.T) {
	t.Parallel()
	h := []Release{rel("v1", "1.0.0", mandatory), rel("v2", "1.0.0"), rel("v3", "^1.0.0"), rel("v4", "2.0.0"), rel("v5", "^1.0.0", rollout(25))}
	in, out := clientIDs(t, 25, "v5")
	tests := []struct {
		name string
		req  UpdateRequest
		want want
	}{
		{"on v2 outside rollout", UpdateRequest{AppVersion: "1.0.0", Label: "v2", PackageHash: "hash-v2", ClientUniqueID: out},
			want{available: true, label: "v3", appVersion: "1.0.0"}},
		{"on v2 inside rollout", UpdateRequest{AppVersion: "1.0.0", Label: "v2", PackageHash: "hash-v2", ClientUniqueID: in},
			want{available: true, label: "v5", appVersion: "1.0.0"}},
		{"on v2 without client id gets the non-rollout answer", UpdateRequest{AppVersion: "1.0.0", Label: "v2", PackageHash: "hash-v2"},
			want{available: true, label: "v3", appVersion: "1.0.0"}},
		{"bare binary, absent label and hash, outside", UpdateRequest{AppVersion: "1.0.0", ClientUniqueID: out},
			want{available: true, label: "v3", appVersion: "1.0.0"}},
		{"bare binary, absent label and hash, inside", UpdateRequest{AppVersion: "1.0.0", ClientUniqueID: in},
			want{available: true, label: "v5", appVersion: "1.0.0"}},
		{"on v3 with app 1.5.0: a newer binary exists", UpdateRequest{AppVersion: "1.5.0", Label: "v3", PackageHash: "hash-v3"},
			want{appVersion: "2.0.0", updateAppVersion: true}},
		{"on v4 with app 2.0.0", UpdateRequest{AppVersion: "2.0.0", Label: "v4", PackageHash: "hash-v4"},
			want{appVersion: "^1.0.0"}},
		{"binary newer than every release", UpdateRequest{AppVersion: "3.0.0"},
			want{appVersion: "^1.0.0", runBinary: true}},
		{"binary older than every release", UpdateRequest{AppVersion: "0.9.0"},
			want{appVersion: "^1.0.0", runBinary: true, updateAppVersion: true}},
		{"app version spelled 1.0 is echoed as sent", UpdateRequest{AppVersion: "1.0", Label: "v2", PackageHash: "hash-v2"},
			want{available: true, label: "v3", appVersion: "1.0"}},
		{"prerelease binary matches no range", UpdateRequest{AppVersion: "1.0.0-beta"},
			want{appVersion: "^1.0.0", runBinary: true, updateAppVersion: true}},
		{"companion ignores the binary version", UpdateRequest{AppVersion: "9.9.9", IsCompanion: true, Label: "v4", PackageHash: "hash-v4"},
			want{appVersion: "2.0.0"}}, // the non-rollout answer: v4 is the latest enabled release
		{"companion on v3 gets v4", UpdateRequest{AppVersion: "9.9.9", IsCompanion: true, Label: "v3", PackageHash: "hash-v3"},
			want{available: true, label: "v4", appVersion: "9.9.9"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			check(t, h, tc.req, tc.want)
		})
	}
}

func TestResolveRules(t *testing.T) {
	t.Parallel()
	mand := []Release{rel("v1", "1.0.0"), rel("v2", "1.0.0", mandatory), rel("v3", "1.0.0")}
	tests := []struct {
		name string
		h    []Release
		req  UpdateRequest
		want want
	}{
		{"empty history", nil, UpdateRequest{AppVersion: "1.0.0"}, want{runBinary: true}},
		{"mandatory propagates to a client that skipped it", mand, UpdateRequest{AppVersion: "1.0.0", Label: "v1", PackageHash: "hash-v1"},
			want{available: true, label: "v3", mandatory: true, appVersion: "1.0.0"}},
		{"a client past the mandatory release gets an optional update", mand, UpdateRequest{AppVersion: "1.0.0", Label: "v2", PackageHash: "hash-v2"},
			want{available: true, label: "v3", appVersion: "1.0.0"}},
		{"hash identifies the release when the label is absent", mand, UpdateRequest{AppVersion: "1.0.0", PackageHash: "hash-v2"},
			want{available: true, label: "v3", appVersion: "1.0.0"}},
		{"a mandatory release for another binary does not propagate",
			[]Release{rel("v1", "1.0.0"), rel("v2", "2.0.0", mandatory), rel("v3", "^1.0.0")},
			UpdateRequest{AppVersion: "1.0.0", Label: "v1", PackageHash: "hash-v1"},
			want{available: true, label: "v3", appVersion: "1.0.0"}},
		{"a disabled mandatory release does not propagate",
			[]Release{rel("v1", "1.0.0"), rel("v2", "1.0.0", mandatory, disabled), rel("v3", "1.0.0")},
			UpdateRequest{AppVersion: "1.0.0", Label: "v1", PackageHash: "hash-v1"},
			want{available: true, label: "v3", appVersion: "1.0.0"}},
		{"binary mismatch: release targets another version", []Release{rel("v1", "2.0.0")}, UpdateRequest{AppVersion: "1.0.0"},
			want{runBinary: true, updateAppVersion: true, appVersion: "2.0.0"}},
		{"rollback by disabling: a device on the disabled release is offered the previous one",
			[]Release{rel("v1", "1.0.0"), rel("v2", "1.0.0", disabled)},
			UpdateRequest{AppVersion: "1.0.0", Label: "v2", PackageHash: "hash-v2"},
			want{available: true, label: "v1", appVersion: "1.0.0"}},
		{"a device on v1 with v2 disabled stays", []Release{rel("v1", "1.0.0"), rel("v2", "1.0.0", disabled)},
			UpdateRequest{AppVersion: "1.0.0", Label: "v1", PackageHash: "hash-v1"}, want{}},
		{"every release disabled", []Release{rel("v1", "1.0.0", disabled)}, UpdateRequest{AppVersion: "1.0.0"},
			want{runBinary: true}},
		{"rollback release: a device on the bad release gets the copy of v1",
			[]Release{rel("v1", "1.0.0"), rel("v2", "1.0.0"), func() Release {
				r := rel("v3", "1.0.0")
				r.PackageHash = "hash-v1"
				r.BlobURL = "https://cdn.example/v3"
				return r
			}()},
			UpdateRequest{AppVersion: "1.0.0", Label: "v2", PackageHash: "hash-v2"},
			want{available: true, label: "v3", appVersion: "1.0.0"}},
		{"rollback release: a device still on v1 content gets nothing",
			[]Release{rel("v1", "1.0.0"), rel("v2", "1.0.0"), func() Release { r := rel("v3", "1.0.0"); r.PackageHash = "hash-v1"; return r }()},
			UpdateRequest{AppVersion: "1.0.0", Label: "v1", PackageHash: "hash-v1"}, want{}},
		{"range 1.2.x matches 1.2.9", []Release{rel("v1", "1.2.x")}, UpdateRequest{AppVersion: "1.2.9"},
			want{available: true, label: "v1", appVersion: "1.2.9"}},
		{"hyphen range upper bound is inclusive", []Release{rel("v1", "1.2.3 - 1.2.7")}, UpdateRequest{AppVersion: "1.2.7"},
			want{available: true, label: "v1", appVersion: "1.2.7"}},
		{"tilde excludes the next minor", []Release{rel("v1", "~1.2.3")}, UpdateRequest{AppVersion: "1.3.0"},
			want{runBinary: true, appVersion: "~1.2.3"}},
		{"a rollout at 100 is finished", []Release{rel("v1", "1.0.0"), rel("v2", "1.0.0", rollout(100))},
			UpdateRequest{AppVersion: "1.0.0", Label: "v1", PackageHash: "hash-v1"},
			want{available: true, label: "v2", appVersion: "1.0.0"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			check(t, tc.h, tc.req, tc.want)
		})
	}
}

func TestResolveRolloutWithoutLabelUsesHash(t *testing.T) {
	t.Parallel()
	r := rel("", "1.0.0", rollout(50))
	h := []Release{r}
	in, out := clientIDs(t, 50, r.PackageHash)
	info, err := Resolve(h, UpdateRequest{AppVersion: "1.0.0", ClientUniqueID: in})
	require.NoError(t, err)
	require.True(t, info.IsAvailable)
	info, err = Resolve(h, UpdateRequest{AppVersion: "1.0.0", ClientUniqueID: out})
	require.NoError(t, err)
	require.False(t, info.IsAvailable)
}

func TestResolveInvalidAppVersion(t *testing.T) {
	t.Parallel()
	_, err := Resolve(nil, UpdateRequest{AppVersion: "banana"})
	require.ErrorIs(t, err, ErrInvalid)
	require.Contains(t, err.Error(), `app_version "banana"`)
}
