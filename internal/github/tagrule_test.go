package github_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/swapjoy/releasepilot/internal/github"
)

func TestTagRuleMatch(t *testing.T) {
	t.Parallel()
	rule := github.TagRule{
		Repository: "swapjoy/mobile-app",
		Platforms:  map[string]string{"ios": "ios/v*", "android": "android/v*"},
	}
	require.NoError(t, rule.Validate())
	tests := []struct {
		name, repo, tag string
		rule            *github.TagRule
		version         string
		platforms       []string
		reason          string
	}{
		{name: "default pattern", tag: "v1.4.0", version: "1.4.0", platforms: []string{"android", "ios"}},
		{name: "prerelease", tag: "v2.0.0-rc.1", version: "2.0.0-rc.1", platforms: []string{"android", "ios"}},
		{name: "repository case-insensitive", repo: "SwapJoy/Mobile-App", tag: "v1.4.0", version: "1.4.0", platforms: []string{"android", "ios"}},
		{name: "ios prefix stripped", tag: "ios/v1.5.2", version: "1.5.2", platforms: []string{"ios"}},
		{name: "android prefix stripped", tag: "android/v1.5.3", version: "1.5.3", platforms: []string{"android"}},
		{name: "not a version", tag: "vnext", reason: `tag "vnext" is not a version`},
		{name: "nightly", tag: "nightly", reason: `tag "nightly" does not match "v*" or "android/v*" (android) or "ios/v*" (ios)`},
		{name: "star does not cross slash", tag: "v1/hotfix", reason: `tag "v1/hotfix" does not match "v*" or "android/v*" (android) or "ios/v*" (ios)`},
		{name: "other repository", repo: "swapjoy/web", tag: "v1.4.0", reason: `repository "swapjoy/web" is not "swapjoy/mobile-app"`},
		{
			name: "regexp", tag: "v12", rule: &github.TagRule{Repository: "swapjoy/mobile-app", Pattern: `re:^v\d+$`},
			version: "12.0.0", platforms: []string{"android", "ios"},
		},
		{
			name: "regexp non-match", tag: "v12-beta", rule: &github.TagRule{Repository: "swapjoy/mobile-app", Pattern: `re:^v\d+$`},
			reason: `tag "v12-beta" does not match "re:^v\\d+$"`,
		},
		{
			name: "regexp version group", tag: "mobile-2026.3.1-store", rule: &github.TagRule{Repository: "swapjoy/mobile-app", Pattern: `re:^mobile-(?P<version>\d+\.\d+\.\d+)-store$`},
			version: "2026.3.1", platforms: []string{"android", "ios"},
		},
		{
			name: "glob with literal prefix", tag: "release-3.1.0", rule: &github.TagRule{Repository: "swapjoy/mobile-app", Pattern: "release-*"},
			version: "3.1.0", platforms: []string{"android", "ios"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := rule
			if tc.rule != nil {
				r = *tc.rule
			}
			repo := tc.repo
			if repo == "" {
				repo = "swapjoy/mobile-app"
			}
			m := r.Match(repo, tc.tag)
			if tc.reason != "" {
				require.False(t, m.Matched)
				require.Equal(t, tc.reason, m.Reason)
				return
			}
			require.True(t, m.Matched, m.Reason)
			require.Equal(t, tc.version, m.Version.String())
			require.Equal(t, tc.platforms, m.Platforms)
		})
	}
}

func TestTagRuleValidate(t *testing.T) {
	t.Parallel()
	require.ErrorContains(t, github.TagRule{Repository: "mobile-app"}.Validate(), `repository "mobile-app" is not owner/name`)
	require.ErrorContains(t, github.TagRule{Repository: "a/b", Pattern: "re:("}.Validate(), `"re:(" is not a valid regexp`)
	require.ErrorContains(t, github.TagRule{Repository: "a/b", Pattern: "v[1"}.Validate(), `"v[1" is not a valid glob`)
	require.ErrorContains(t, github.TagRule{Repository: "a/b", Platforms: map[string]string{"web": "web/*"}}.Validate(), `unknown platform "web"`)
	require.ErrorContains(t, github.TagRule{Repository: "a/b", Platforms: map[string]string{"ios": ""}}.Validate(), "platforms.ios: empty pattern")
	m := github.TagRule{Repository: "a/b", Pattern: "v[1"}.Match("a/b", "v1")
	require.False(t, m.Matched)
	require.Equal(t, `tag pattern "v[1" is invalid`, m.Reason)
}
