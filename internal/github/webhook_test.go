package github_test

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/hex"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/swapjoy/releasepilot/internal/github"
	"github.com/swapjoy/releasepilot/internal/github/githubtest"
)

var secret = []byte("It's a Secret to Everybody")

const (
	repoName  = "swapjoy/mobile-app"
	commitSHA = "6113728f27ae82c7b1a177c8d03f9e96e0adf246"
	tagObjSHA = "c9a4ecb0e4f9d3b6c1f0a2b3c4d5e6f708192a3b"
)

func TestVerifySignature(t *testing.T) {
	t.Parallel()
	// GitHub's documented example: secret "It's a Secret to Everybody",
	// payload "Hello, World!".
	body := []byte("Hello, World!")
	const good = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
	tests := []struct {
		name   string
		secret []byte
		header string
		want   error
	}{
		{name: "valid", secret: secret, header: good},
		{name: "valid with surrounding space", secret: secret, header: " " + good + " "},
		{name: "upper-case hex of the right MAC", secret: secret, header: "sha256=" + strings.ToUpper(good[7:])},
		{name: "missing", secret: secret, header: "", want: github.ErrSignatureMissing},
		{name: "sha1 only", secret: secret, header: "sha1=01dc10d0c83e72ed246219cdd91669667fe2ca59", want: github.ErrSignatureSHA1Only},
		{name: "no prefix", secret: secret, header: strings.TrimPrefix(good, "sha256="), want: github.ErrSignatureMalformed},
		{name: "short", secret: secret, header: good[:len(good)-2], want: github.ErrSignatureMalformed},
		{name: "not hex", secret: secret, header: "sha256=" + strings.Repeat("zz", 32), want: github.ErrSignatureMalformed},
		{name: "upper-case prefix", secret: secret, header: "SHA256=" + good[7:], want: github.ErrSignatureMalformed},
		{name: "wrong secret", secret: []byte("other"), header: good, want: github.ErrSignatureMismatch},
		{name: "one bit off", secret: secret, header: good[:len(good)-1] + "6", want: github.ErrSignatureMismatch},
		{name: "empty secret", secret: nil, header: good, want: github.ErrNoSecret},
		{name: "empty secret, unsigned", secret: nil, header: "", want: github.ErrNoSecret},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := github.VerifySignature(tc.secret, body, tc.header)
			if tc.want == nil {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, tc.want)
			var se *github.SignatureError
			require.ErrorAs(t, err, &se) // the handler maps every one to 401
			require.NotContains(t, err.Error(), string(secret))
			require.NotContains(t, err.Error(), good[7:])
		})
	}
	require.Equal(t, good, github.Sign(secret, body))
}

func TestDeliveriesFromFake(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		event string
		body  []byte
		want  github.Delivery
	}{
		{
			name: "lightweight tag push", event: "push",
			body: githubtest.TagPushPayload(repoName, "v1.4.0", commitSHA),
			want: github.Delivery{Kind: github.KindTagCreated, Event: "push", Repository: repoName, Tag: "v1.4.0", Commit: commitSHA},
		},
		{
			name: "annotated tag push uses head_commit, not after", event: "push",
			body: githubtest.AnnotatedTagPushPayload(repoName, "v1.4.0", tagObjSHA, commitSHA),
			want: github.Delivery{Kind: github.KindTagCreated, Event: "push", Repository: repoName, Tag: "v1.4.0", Commit: commitSHA, TagObject: tagObjSHA},
		},
		{
			name: "create of a tag needs resolution", event: "create",
			body: githubtest.TagCreatePayload(repoName, "v1.4.0"),
			want: github.Delivery{Kind: github.KindTagCreated, Event: "create", Repository: repoName, Tag: "v1.4.0", NeedsResolution: true},
		},
		{
			name: "release published", event: "release",
			body: githubtest.ReleasePublishedPayload(repoName, "v1.4.0", "main"),
			want: github.Delivery{Kind: github.KindTagCreated, Event: "release", Action: "published", Repository: repoName, Tag: "v1.4.0", TargetCommitish: "main", NeedsResolution: true},
		},
		{
			name: "ping", event: "ping",
			body: githubtest.PingPayload(repoName, 4242),
			want: github.Delivery{Kind: github.KindPing, Event: "ping", Repository: repoName, HookID: 4242},
		},
		{
			name: "branch push ignored", event: "push",
			body: githubtest.BranchPushPayload(repoName, "main", tagObjSHA, commitSHA),
			want: github.Delivery{Kind: github.KindIgnored, Event: "push", Repository: repoName, Reason: "push to refs/heads/main is not a tag"},
		},
		{
			name: "tag deletion by push", event: "push",
			body: githubtest.TagDeletePayload(repoName, "v1.4.0", commitSHA),
			want: github.Delivery{Kind: github.KindTagDeleted, Event: "push", Repository: repoName, Tag: "v1.4.0", Before: commitSHA},
		},
		{
			name: "tag deletion by delete event", event: "delete",
			body: []byte(`{"ref":"v1.4.0","ref_type":"tag","pusher_type":"user","repository":{"full_name":"swapjoy/mobile-app"}}`),
			want: github.Delivery{Kind: github.KindTagDeleted, Event: "delete", Repository: repoName, Tag: "v1.4.0"},
		},
		{
			name: "branch deletion ignored", event: "delete",
			body: []byte(`{"ref":"feature/x","ref_type":"branch","pusher_type":"user","repository":{"full_name":"swapjoy/mobile-app"}}`),
			want: github.Delivery{Kind: github.KindIgnored, Event: "delete", Repository: repoName, Reason: "deletion of a branch, not a tag"},
		},
		{
			name: "branch create ignored", event: "create",
			body: []byte(`{"ref":"feature/x","ref_type":"branch","repository":{"full_name":"swapjoy/mobile-app"}}`),
			want: github.Delivery{Kind: github.KindIgnored, Event: "create", Repository: repoName, Reason: "create of a branch, not a tag"},
		},
		{
			name: "release edited ignored", event: "release",
			body: []byte(`{"action":"edited","release":{"tag_name":"v1"},"repository":{"full_name":"swapjoy/mobile-app"}}`),
			want: github.Delivery{Kind: github.KindIgnored, Event: "release", Action: "edited", Repository: repoName, Reason: `release action "edited" is not "published"`},
		},
		{
			name: "other event ignored", event: "issues",
			body: []byte(`{"action":"opened","repository":{"full_name":"swapjoy/mobile-app"}}`),
			want: github.Delivery{Kind: github.KindIgnored, Event: "issues", Repository: repoName, Reason: `event "issues" is not handled`},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d := githubtest.NewDelivery(tc.event, tc.body, secret)
			require.NoError(t, github.VerifyRequest(secret, d.Body, d.Header))
			got, err := github.ParseDelivery(d.Header.Get(github.HeaderEvent), d.Body)
			require.NoError(t, err)
			require.Equal(t, tc.want, got)

			require.ErrorIs(t, github.VerifyRequest(secret, d.Body, d.SHA1Only().Header), github.ErrSignatureSHA1Only)
			require.ErrorIs(t, github.VerifyRequest(secret, d.Body, d.Unsigned().Header), github.ErrSignatureMissing)
			require.ErrorIs(t, github.VerifyRequest([]byte("rotated"), d.Body, d.Header), github.ErrSignatureMismatch)
			tampered := append([]byte(nil), d.Body...)
			tampered[len(tampered)-2] ^= 1
			require.ErrorIs(t, github.VerifyRequest(secret, tampered, d.Header), github.ErrSignatureMismatch)
		})
	}
}

func TestDeliveryHeadersLikeGitHub(t *testing.T) {
	t.Parallel()
	body := githubtest.TagPushPayload(repoName, "v2.0.0", commitSHA)
	d := githubtest.NewDelivery("push", body, secret)
	require.Equal(t, "push", d.Header.Get("X-GitHub-Event"))
	require.Regexp(t, regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`), d.Header.Get("X-GitHub-Delivery"))
	require.Equal(t, d.ID, d.Header.Get("X-GitHub-Delivery"))
	require.True(t, strings.HasPrefix(d.Header.Get("User-Agent"), "GitHub-Hookshot/"))
	require.Equal(t, "application/json", d.Header.Get("Content-Type"))
	mac := hmac.New(sha1.New, secret)
	mac.Write(body)
	require.Equal(t, "sha1="+hex.EncodeToString(mac.Sum(nil)), d.Header.Get("X-Hub-Signature"))
	require.Equal(t, github.Sign(secret, body), d.Header.Get("X-Hub-Signature-256"))
	require.NotEqual(t, d.ID, githubtest.NewDelivery("push", body, secret).ID)

	req, err := d.Request(t.Context(), "http://127.0.0.1/webhooks/github")
	require.NoError(t, err)
	require.Equal(t, "POST", req.Method)
	require.Equal(t, d.Header.Get("X-Hub-Signature-256"), req.Header.Get("X-Hub-Signature-256"))
}

func TestParseDeliveryErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, event, body, want string
	}{
		{"no event header", "", `{}`, "X-GitHub-Event header missing"},
		{"not JSON", "push", `ref=refs/tags/v1`, "not a JSON object"},
		{"truncated JSON", "push", `{"ref":"refs/tags/v1"`, "not a JSON object"},
		{"JSON array", "push", `[1,2]`, "not a JSON object"},
		{"empty body", "ping", ``, "not a JSON object"},
		{"wrong field type", "push", `{"ref":7,"repository":{"full_name":"a/b"}}`, "cannot unmarshal"},
		{"push without ref", "push", `{"repository":{"full_name":"a/b"}}`, "ref missing"},
		{"tag push without repository", "push", `{"ref":"refs/tags/v1","after":"` + commitSHA + `"}`, "repository.full_name missing"},
		{"release without tag", "release", `{"action":"published","release":{},"repository":{"full_name":"a/b"}}`, "release.tag_name missing"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := github.ParseDelivery(tc.event, []byte(tc.body))
			require.ErrorIs(t, err, github.ErrMalformedPayload)
			var pe *github.PayloadError
			require.ErrorAs(t, err, &pe)
			require.ErrorContains(t, err, tc.want)
		})
	}
}

func TestParseMovedTag(t *testing.T) {
	t.Parallel()
	d, err := github.ParseDelivery("push", []byte(`{"ref":"refs/tags/v1.0.0","before":"`+tagObjSHA+`","after":"`+commitSHA+`","created":false,"forced":true,"head_commit":{"id":"`+commitSHA+`"},"repository":{"full_name":"a/b"}}`))
	require.NoError(t, err)
	require.Equal(t, github.KindTagCreated, d.Kind)
	require.True(t, d.Moved)
	require.Equal(t, commitSHA, d.Commit)
}

func TestParseTagPushWithoutHeadCommit(t *testing.T) {
	t.Parallel()
	d, err := github.ParseDelivery("push", []byte(`{"ref":"refs/tags/v1.0.0","before":"0000000000000000000000000000000000000000","after":"`+tagObjSHA+`","created":true,"head_commit":null,"repository":{"full_name":"a/b"}}`))
	require.NoError(t, err)
	require.Equal(t, github.KindTagCreated, d.Kind)
	require.Empty(t, d.Commit) // after may be a tag object: never trust it as the commit
	require.True(t, d.NeedsResolution)
}

func FuzzDelivery(f *testing.F) {
	for _, b := range [][]byte{
		githubtest.TagPushPayload(repoName, "v1.4.0", commitSHA),
		githubtest.AnnotatedTagPushPayload(repoName, "v1.4.0", tagObjSHA, commitSHA),
		githubtest.TagCreatePayload(repoName, "v1.4.0"),
		githubtest.ReleasePublishedPayload(repoName, "v1.4.0", commitSHA),
		githubtest.PingPayload(repoName, 1),
		githubtest.BranchPushPayload(repoName, "main", tagObjSHA, commitSHA),
		githubtest.TagDeletePayload(repoName, "v1.4.0", commitSHA),
		[]byte(`{"ref":null,"head_commit":{"id":7}}`),
	} {
		for _, ev := range []string{"push", "create", "delete", "release", "ping"} {
			f.Add(ev, b, github.Sign(secret, b))
		}
	}
	f.Fuzz(func(t *testing.T, event string, body []byte, header string) {
		err := github.VerifySignature(secret, body, header)
		// Upper-case hex of the right MAC is the same MAC (found by the
		// fuzzer; kept in testdata), so compare case-insensitively.
		if err == nil && !strings.EqualFold(strings.TrimSpace(header), github.Sign(secret, body)) {
			t.Fatalf("accepted a signature that is not the HMAC: %q", header)
		}
		d, err := github.ParseDelivery(event, body)
		if err != nil {
			var pe *github.PayloadError
			if !errorsAs(err, &pe) {
				t.Fatalf("error is not a *PayloadError: %v", err)
			}
			return
		}
		switch d.Kind {
		case github.KindTagCreated:
			if d.Tag == "" || d.Repository == "" {
				t.Fatalf("tag delivery without tag or repository: %+v", d)
			}
			if (d.Commit == "") != d.NeedsResolution {
				t.Fatalf("commit and NeedsResolution disagree: %+v", d)
			}
		case github.KindTagDeleted:
			if d.Tag == "" || d.Repository == "" || d.Commit != "" {
				t.Fatalf("tag deletion without tag or repository, or with a commit: %+v", d)
			}
		case github.KindIgnored:
			if d.Reason == "" {
				t.Fatalf("ignored without reason: %+v", d)
			}
		case github.KindPing:
		default:
			t.Fatalf("unknown kind %q", d.Kind)
		}
	})
}
