package codepush

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

var updateQuerySeeds = []string{
	"",
	"deployment_key=abcdefghij1234&app_version=1.4.0&client_unique_id=device-1",
	"deploymentKey=abcdefghij1234&appVersion=1.4.0&packageHash=ff00&label=v3&clientUniqueId=d&isCompanion=TRUE",
	"deployment_key=&deploymentKey=camel&app_version=1.4.0",   // empty snake falls back to camel
	"deployment_key=first&deployment_key=second",              // the first value counts
	"deployment_key=bad%zz&deployment_key=good",               // a bad escape drops its pair
	"deployment%5Fkey=escaped+key&app_version=1.4.0%2Bbuild",  // escaped keys and values, + is a space
	"label=v1;label=v2&label=v3",                              // a semicolon drops the pair
	"&&=x&label&label=v2&is_companion=true&isCompanion=false", // empty pairs, a key without =
	"package_hash=%E2%80%A8%3C%26&label=%ff",
	"app_version=1.4.0&app_version",
	"is_companion=&isCompanion=true",
	"a=%&label=%41",
	strings.Repeat("x=1&", 3000) + "label=v9",
	strings.Repeat("&", 10000) + "label=too-many",
}

// TestUpdateQueryAsParseQuery: the update check reads its query exactly as
// url.ParseQuery and ParseUpdateQuery did, edge cases included.
func TestUpdateQueryAsParseQuery(t *testing.T) {
	t.Parallel()
	for _, raw := range updateQuerySeeds {
		q, _ := url.ParseQuery(raw)
		require.Equal(t, ParseUpdateQuery(q), parseUpdateQuery(raw), "query %.80q", raw)
	}
	// The label of the 10,001st parameter is not read, as net/url reads none.
	require.Empty(t, parseUpdateQuery(updateQuerySeeds[len(updateQuerySeeds)-1]).Label)
	require.Equal(t, "v9", parseUpdateQuery(updateQuerySeeds[len(updateQuerySeeds)-2]).Label)
}

func FuzzUpdateQuery(f *testing.F) {
	for _, s := range updateQuerySeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		q, _ := url.ParseQuery(raw)
		require.Equal(t, ParseUpdateQuery(q), parseUpdateQuery(raw))
	})
}

// marshalUpdateCheck is what the update check answered through
// encoding/json; appendUpdateCheck must give the same bytes.
func marshalUpdateCheck(t testing.TB, snake bool, i updateInfoCamel) []byte {
	var b []byte
	var err error
	if snake {
		b, err = json.Marshal(struct {
			UpdateInfo updateInfoSnake `json:"update_info"`
		}{updateInfoSnake(i)})
	} else {
		b, err = json.Marshal(struct {
			UpdateInfo updateInfoCamel `json:"updateInfo"`
		}{i})
	}
	require.NoError(t, err)
	return b
}

func TestUpdateCheckBodyAsEncodingJSON(t *testing.T) {
	t.Parallel()
	for _, i := range []updateInfoCamel{
		{},
		{DownloadURL: "https://ota.example.com/v0.1/public/codepush/packages/ab12", Description: "Fix the login typo", IsAvailable: true,
			IsMandatory: true, AppVersion: "1.4.0", PackageHash: "ab12", Label: "v3", PackageSize: 48012, TargetBinaryRange: "1.4.0"},
		{Description: "quotes \" and \\ backslashes, <b>tags</b> & ampersands", Label: "tab\there\nnewline\r\x00\x1f\b\f"},
		{Description: "ünïcödé ✓ and U+2028 \u2028 U+2029 \u2029 and bad UTF-8 \xff\xfe", AppVersion: "~1.4", UpdateAppVersion: true},
		{ShouldRunBinaryVersion: true, PackageSize: -1, TargetBinaryRange: ">=1.0.0 <2.0.0"},
		{DownloadURL: "https://bucket.s3.example.com/ota/ab?X-Amz-Signature=ff&X-Amz-Date=20261205T000000Z", IsAvailable: true},
	} {
		for _, snake := range []bool{true, false} {
			require.Equal(t, string(marshalUpdateCheck(t, snake, i)), string(appendUpdateCheck(nil, snake, i)))
		}
	}
}

func FuzzUpdateCheckBody(f *testing.F) {
	f.Add("https://ota.example.com/p/1", "Fix <b> & \u2028", "1.4.0", "ab12", "v3", int64(48012), true, false)
	f.Add("", "\xff\x00\"\\", "", "", "", int64(0), false, true)
	f.Fuzz(func(t *testing.T, download, desc, version, hash, label string, size int64, available, mandatory bool) {
		i := updateInfoCamel{DownloadURL: download, Description: desc, IsAvailable: available, IsMandatory: mandatory,
			AppVersion: version, PackageHash: hash, Label: label, PackageSize: size,
			UpdateAppVersion: mandatory, ShouldRunBinaryVersion: !available, TargetBinaryRange: version}
		for _, snake := range []bool{true, false} {
			require.Equal(t, string(marshalUpdateCheck(t, snake, i)), string(appendUpdateCheck(nil, snake, i)))
		}
	})
}
