package github_test

import (
	"bytes"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/swapjoy/releasepilot/internal/github"
	"github.com/swapjoy/releasepilot/internal/github/githubtest"
)

// read runs a delivery through what the webhook handler does before it
// touches the database: content type, signature header, signed read,
// payload extraction, parsing.
func read(t *testing.T, d githubtest.Delivery, secrets ...[]byte) (github.Delivery, []int, error) {
	t.Helper()
	mt, err := github.CheckContentType(d.Header.Get("Content-Type"))
	if err != nil {
		return github.Delivery{}, nil, err
	}
	sig, err := github.CheckSignatureHeader(d.Header)
	if err != nil {
		return github.Delivery{}, nil, err
	}
	body, matched, err := github.ReadSigned(bytes.NewReader(d.Body), sig, secrets, github.ReadOptions{})
	if err != nil {
		return github.Delivery{}, nil, err
	}
	require.Equal(t, d.Body, body, "the body comes back exactly as sent")
	payload, err := github.Payload(mt, body)
	if err != nil {
		return github.Delivery{}, nil, err
	}
	got, err := github.ParseDelivery(d.Header.Get(github.HeaderEvent), payload)
	return got, matched, err
}

// TestOctokitExamples sends GitHub's own example deliveries (npm
// @octokit/webhooks-examples) in both content types a hook can use,
// signed and unsigned.
func TestOctokitExamples(t *testing.T) {
	t.Parallel()
	const repo = "Codertocat/Hello-World"
	const commit = "6113728f27ae82c7b1a177c8d03f9e96e0adf246"
	want := map[string]github.Delivery{
		"push.0":    {Kind: github.KindTagCreated, Event: "push", Repository: repo, Tag: "simple-tag", Commit: commit},
		"push.1":    {Kind: github.KindTagDeleted, Event: "push", Repository: repo, Tag: "simple-tag", Before: commit},
		"push.3":    {Kind: github.KindTagDeleted, Event: "push", Repository: repo, Tag: "simple-tag", Before: commit},
		"push.4":    {Kind: github.KindIgnored, Event: "push", Repository: repo, Reason: "push to refs/heads/master is not a tag"},
		"create.0":  {Kind: github.KindTagCreated, Event: "create", Repository: repo, Tag: "simple-tag", NeedsResolution: true},
		"create.3":  {Kind: github.KindTagCreated, Event: "create", Repository: repo, Tag: "simple-tag", NeedsResolution: true},
		"delete.0":  {Kind: github.KindTagDeleted, Event: "delete", Repository: repo, Tag: "simple-tag"},
		"delete.2":  {Kind: github.KindTagDeleted, Event: "delete", Repository: repo, Tag: "simple-tag"},
		"ping.0":    {Kind: github.KindPing, Event: "ping", Repository: "Octocoders/Hello-World", HookID: 109948940},
		"ping.3":    {Kind: github.KindPing, Event: "ping", HookID: 109948940},
		"release.0": {Kind: github.KindTagCreated, Event: "release", Action: "published", Repository: repo, Tag: "0.0.1", TargetCommitish: "master", NeedsResolution: true},
		"release.6": {Kind: github.KindIgnored, Event: "release", Action: "edited", Repository: repo, Reason: `release action "edited" is not "published"`},
		"release.8": {Kind: github.KindIgnored, Event: "release", Action: "prereleased", Repository: repo, Reason: `release action "prereleased" is not "published"`},
	}
	require.ElementsMatch(t, githubtest.Examples(), keys(want), "every committed example is checked")
	secret := []byte("It's a Secret to Everybody")
	other := []byte("another app's secret")
	for name, w := range want {
		event, _, _ := strings.Cut(name, ".")
		payload := githubtest.Example(name)
		for _, form := range []bool{false, true} {
			ct := "json"
			mk := githubtest.NewDelivery
			if form {
				ct, mk = "form", githubtest.NewFormDelivery
			}
			t.Run(name+"/"+ct, func(t *testing.T) {
				t.Parallel()
				d := mk(event, payload, secret)
				got, matched, err := read(t, d, other, secret)
				require.NoError(t, err)
				require.Equal(t, []int{1}, matched, "only the secret that signed it matches")
				require.Equal(t, w, got)

				_, _, err = read(t, d.Unsigned(), secret)
				require.ErrorIs(t, err, github.ErrSignatureMissing)
				_, _, err = read(t, d.SHA1Only(), secret)
				require.ErrorIs(t, err, github.ErrSignatureSHA1Only)
				_, _, err = read(t, d, other)
				require.ErrorIs(t, err, github.ErrSignatureMismatch)
			})
		}
	}
}

func keys(m map[string]github.Delivery) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestContentTypes(t *testing.T) {
	t.Parallel()
	for _, ok := range []string{"application/json", "application/json; charset=utf-8", "application/x-www-form-urlencoded", "Application/JSON"} {
		_, err := github.CheckContentType(ok)
		require.NoError(t, err, ok)
	}
	for _, bad := range []string{"", "text/plain", "multipart/form-data; boundary=x", "application/jsonx", ";;"} {
		_, err := github.CheckContentType(bad)
		var ce *github.ContentTypeError
		require.ErrorAs(t, err, &ce, bad)
		require.ErrorContains(t, err, "application/json")
		require.ErrorContains(t, err, "application/x-www-form-urlencoded")
	}
	_, err := github.Payload(github.ContentTypeForm, []byte("zen=x"))
	require.ErrorIs(t, err, github.ErrMalformedPayload)
	_, err = github.Payload(github.ContentTypeForm, []byte("payload=a&payload=b"))
	require.ErrorIs(t, err, github.ErrMalformedPayload)
	_, err = github.Payload(github.ContentTypeForm, []byte("payload=%zz"))
	require.ErrorIs(t, err, github.ErrMalformedPayload)
}

// A body longer than what is held in memory is spooled, verified and read
// back whole; a spool that is full refuses the body instead of writing it.
func TestReadSignedSpools(t *testing.T) {
	t.Parallel()
	secret := []byte("s3cret")
	body := bytes.Repeat([]byte("0123456789abcdef"), 4096) // 64 KiB
	sig, err := github.CheckSignatureHeader(http.Header{github.HeaderSignature256: {github.Sign(secret, body)}})
	require.NoError(t, err)
	got, matched, err := github.ReadSigned(bytes.NewReader(body), sig, [][]byte{secret}, github.ReadOptions{InMemory: 1024, TempDir: t.TempDir()})
	require.NoError(t, err)
	require.Equal(t, []int{0}, matched)
	require.Equal(t, body, got)

	_, _, err = github.ReadSigned(bytes.NewReader(body), sig, [][]byte{[]byte("wrong")}, github.ReadOptions{InMemory: 1024, TempDir: t.TempDir()})
	require.ErrorIs(t, err, github.ErrSignatureMismatch)

	full := make(chan struct{}, 1)
	full <- struct{}{}
	_, _, err = github.ReadSigned(bytes.NewReader(body), sig, [][]byte{secret}, github.ReadOptions{InMemory: 1024, Spool: full})
	require.ErrorIs(t, err, github.ErrBusy)
	// A short body never needs the spool.
	short := []byte(`{"zen":"x"}`)
	sig2, _ := github.CheckSignatureHeader(http.Header{github.HeaderSignature256: {github.Sign(secret, short)}})
	got, _, err = github.ReadSigned(bytes.NewReader(short), sig2, [][]byte{secret}, github.ReadOptions{InMemory: 1024, Spool: full})
	require.NoError(t, err)
	require.Equal(t, short, got)

	_, _, err = github.ReadSigned(bytes.NewReader(short), sig2, nil, github.ReadOptions{})
	require.ErrorIs(t, err, github.ErrNoSecret)
	_, _, err = github.ReadSigned(errReader{}, sig2, [][]byte{secret}, github.ReadOptions{})
	require.ErrorIs(t, err, errBroken)
}

var errBroken = errors.New("connection reset")

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errBroken }

func TestCheckSignatureHeader(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		h    http.Header
		want error
	}{
		{http.Header{}, github.ErrSignatureMissing},
		{http.Header{github.HeaderSignature1: {"sha1=abc"}}, github.ErrSignatureSHA1Only},
		{http.Header{github.HeaderSignature256: {"sha1=abc"}}, github.ErrSignatureSHA1Only},
		{http.Header{github.HeaderSignature256: {"sha256=xyz"}}, github.ErrSignatureMalformed},
		{http.Header{github.HeaderSignature256: {"sha256=" + strings.Repeat("g", 64)}}, github.ErrSignatureMalformed},
		{http.Header{github.HeaderSignature256: {strings.Repeat("a", 64)}}, github.ErrSignatureMalformed},
	} {
		_, err := github.CheckSignatureHeader(tc.h)
		require.ErrorIs(t, err, tc.want, "%v", tc.h)
	}
}
