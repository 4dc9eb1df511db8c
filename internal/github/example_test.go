package github_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/swapjoy/releasepilot/internal/github"
	"github.com/swapjoy/releasepilot/internal/github/githubtest"
	"github.com/swapjoy/releasepilot/internal/nativecheck"
)

// The webhook handler: verify, parse, match the tag, then (not shown)
// record the delivery id and enqueue plan_release in one transaction.
func Example_webhookHandler() {
	secret := []byte("s3cret")
	rule := github.TagRule{Repository: "swapjoy/mobile-app", Platforms: map[string]string{"ios": "ios/v*"}}
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 25<<20))
		if err != nil {
			http.Error(w, "read body", http.StatusBadRequest)
			return
		}
		if err := github.VerifyRequest(secret, body, r.Header); err != nil {
			http.Error(w, "bad signature", http.StatusUnauthorized) // every *SignatureError
			return
		}
		d, err := github.ParseDelivery(r.Header.Get(github.HeaderEvent), body)
		if errors.Is(err, github.ErrMalformedPayload) {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if d.Kind != github.KindTagCreated {
			fmt.Fprintf(w, "%s %s", d.Kind, d.Reason)
			return
		}
		m := rule.Match(d.Repository, d.Tag)
		if !m.Matched {
			fmt.Fprint(w, m.Reason)
			return
		}
		w.WriteHeader(http.StatusAccepted)
		fmt.Fprintf(w, "plan %s %v commit=%s resolve=%v", m.Version, m.Platforms, d.Commit, d.NeedsResolution)
	})
	srv := httptest.NewServer(handler)
	defer srv.Close()

	send := func(d githubtest.Delivery) {
		req, _ := d.Request(context.Background(), srv.URL)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			fmt.Println(err)
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		fmt.Println(resp.StatusCode, strings.TrimSpace(string(b)))
	}
	commit := "6113728f27ae82c7b1a177c8d03f9e96e0adf246"
	send(githubtest.NewDelivery("push", githubtest.TagPushPayload("swapjoy/mobile-app", "ios/v1.4.0", commit), secret))
	send(githubtest.NewDelivery("create", githubtest.TagCreatePayload("swapjoy/mobile-app", "v1.5.0"), secret))
	send(githubtest.NewDelivery("push", githubtest.TagPushPayload("swapjoy/mobile-app", "nightly", commit), secret))
	send(githubtest.NewDelivery("push", githubtest.BranchPushPayload("swapjoy/mobile-app", "main", commit, commit), secret))
	send(githubtest.NewDelivery("push", githubtest.TagPushPayload("swapjoy/mobile-app", "v1.4.0", commit), secret).SHA1Only())
	// Output:
	// 202 plan 1.4.0 [ios] commit=6113728f27ae82c7b1a177c8d03f9e96e0adf246 resolve=false
	// 202 plan 1.5.0 [android ios] commit= resolve=true
	// 200 tag "nightly" does not match "v*" or "ios/v*" (ios)
	// 200 ignored push to refs/heads/main is not a tag
	// 401 bad signature
}

// The plan_release job: resolve the commit, fingerprint it per platform,
// and compare with the fingerprint stored for the live binary.
func Example_planRelease() {
	fake := githubtest.New()
	fake.Token = "ghs_installation_token"
	srv := httptest.NewServer(fake)
	defer srv.Close()
	repo := fake.Repo("swapjoy/mobile-app")
	live := repo.Commit("1.4.0", githubtest.Files{
		"package.json":        `{"name":"app"}`,
		"src/App.tsx":         "v1",
		"ios/App/Info.plist":  "<key>CFBundleVersion</key><string>41</string>",
		"android/app/Main.kt": "class Main",
	})
	next := repo.Commit("1.4.1", repo.Files(live).With(githubtest.Files{
		"src/App.tsx":        "v2",
		"ios/App/Info.plist": "<key>CFBundleVersion</key><string>42</string>",
	}), live)
	repo.AnnotatedTag("v1.4.1", next, "Release 1.4.1")

	client, _ := github.NewClient(github.ClientOptions{BaseURL: srv.URL, Token: "ghs_installation_token"})
	gh, _ := client.Repo("swapjoy/mobile-app")
	ctx := context.Background()
	d, _ := github.ParseDelivery("create", githubtest.TagCreatePayload("swapjoy/mobile-app", "v1.4.1"))
	commit, err := gh.CommitOf(ctx, d)
	if err != nil {
		fmt.Println(err)
		return
	}
	fp := &nativecheck.Fingerprinter{}         // production: Packages: &nativecheck.Registry{}
	liveFP, _ := fp.Fingerprint(ctx, gh, live) // in production: read from the store
	newFP, err := fp.Fingerprint(ctx, gh, commit)
	if err != nil {
		fmt.Println("store lane (fail closed):", err)
		return
	}
	for _, pl := range nativecheck.Platforms {
		fmt.Println(nativecheck.Explain(liveFP[pl], newFP[pl]))
	}
	notes, _ := gh.Compare(ctx, live, commit)
	fmt.Println(len(notes.Commits), notes.Commits[0].Message)
	// Output:
	// android: no native change
	// ios: no native change
	// 1 1.4.1
}
