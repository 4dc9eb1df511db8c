package hotfix

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"time"

	"github.com/swapjoy/releasepilot/codepush"
	"github.com/swapjoy/releasepilot/internal/config"
	"github.com/swapjoy/releasepilot/internal/gate"
	"github.com/swapjoy/releasepilot/internal/nativecheck"
	"github.com/swapjoy/releasepilot/internal/release"
	"github.com/swapjoy/releasepilot/internal/store"
)

// Input is a hotfix released through releasepilot's API or CLI.
type Input struct {
	App        string // releasepilot app name
	Platform   release.Platform
	Deployment string // default Staging
	// Commit is the commit the bundle was built from (full SHA).
	Commit string
	// TargetRange is the binaries to target; default: exactly the recorded
	// store binaries whose native fingerprint equals the commit's.
	TargetRange string
	Description string
	Mandatory   bool
	Rollout     int // 1..100; 0: the plan's first stage on Production, else 100
	Package     io.Reader
}

// Hotfix releases a bundle by hand under the same rules as a CodePush
// release: see Release. It picks the CodePush app of in.App on in.Platform
// and, without a target range, the binaries the commit can run on; when
// none can, the release targets the newest binary so that the refusal names
// the files and packages that differ.
func (h *Releaser) Hotfix(ctx context.Context, in Input) (codepush.Release, error) {
	var app string
	var t Target
	for name, tt := range h.Targets {
		if tt.App.Name == in.App && tt.Platform == in.Platform {
			app, t = name, tt
		}
	}
	if app == "" {
		return codepush.Release{}, &codepush.Error{Kind: codepush.KindInvalid, Field: "app", Value: in.App + " " + string(in.Platform),
			Message: "no configured app ships over the air on this platform (apps[].ota.enabled)"}
	}
	if in.Deployment == "" {
		in.Deployment = codepush.Staging
	}
	in.Commit = strings.ToLower(strings.TrimSpace(in.Commit))
	if in.TargetRange == "" {
		if in.Commit == "" {
			if in.Deployment == codepush.Staging && t.App.OTA.AllowUnverifiedStaging {
				return codepush.Release{}, &codepush.Error{Kind: codepush.KindInvalid, Field: "target_binary", Message: "without a commit, say which binaries to target (--target-binary 1.4.0)"}
			}
			return h.Release(ctx, codepush.ReleaseInput{App: app, Deployment: in.Deployment, AppVersion: "*", Package: in.Package}) // the gate explains
		}
		rng, err := h.defaultRange(ctx, t, in.Commit)
		if err != nil {
			return codepush.Release{}, err
		}
		in.TargetRange = rng
	}
	return h.Release(ctx, codepush.ReleaseInput{App: app, Deployment: in.Deployment, AppVersion: in.TargetRange, Description: in.Description,
		Mandatory: in.Mandatory, Rollout: in.Rollout, Commit: in.Commit, Package: in.Package})
}

func (h *Releaser) defaultRange(ctx context.Context, t Target, commit string) (string, error) {
	if err := h.prepare(ctx, t, commit, ""); err != nil {
		return "", err
	}
	fp, err := h.Store.GetFingerprint(ctx, t.App.Name, t.Platform, commit, nativecheck.Algorithm)
	if err != nil {
		return "", err
	}
	bins, err := h.Store.Binaries(ctx, t.App.Name, t.Platform)
	if err != nil {
		return "", err
	}
	// Under the current rules, as the gate judges them (prepare has
	// fingerprinted the binaries' commits again where it could).
	if bins, err = gate.CurrentFingerprints(ctx, h.Store, t.App.Name, t.Platform, bins); err != nil {
		return "", err
	}
	if len(bins) == 0 {
		return "", &codepush.Error{Kind: codepush.KindConflict, Field: "target_binary",
			Message: fmt.Sprintf("no %s store binary of %s is recorded, so none can be targeted (releasepilot records the binaries its store lanes ship)", t.Platform, t.App.Name)}
	}
	if rng, _ := gate.MatchingRange(bins, fp.Hash); rng != "" {
		return rng, nil
	}
	newest := bins[0]
	for _, b := range bins[1:] {
		if b.CreatedAt.After(newest.CreatedAt) {
			newest = b
		}
	}
	return newest.Version, nil
}

// RepoFingerprints computes the native fingerprints of a commit from the
// app's repository with the app's native rules, and records them, as
// planning a tagged release does.
type RepoFingerprints struct {
	Store *store.Store
	// Repo opens a reader of a repository ("owner/name").
	Repo func(fullName string) (nativecheck.Source, error)
	// Packages tells native npm packages (nil: every package counts as native).
	Packages nativecheck.Inspector
	Now      func() time.Time
}

// Ensure implements Fingerprinter. The error is a *codepush.Error saying
// what to do: a commit GitHub does not have is invalid, an incomplete tree
// a conflict, GitHub not answering unavailable.
func (f *RepoFingerprints) Ensure(ctx context.Context, app config.App, commit string) error {
	src, err := f.Repo(app.Repository)
	if err != nil {
		return err
	}
	fper := &nativecheck.Fingerprinter{Rules: nativecheck.Rules{Root: app.Root, NativeGlobs: app.Native.ExtraGlobs,
		IgnoredGlobs: app.Native.IgnoreGlobs, ForceNative: app.Native.ForceNative, ForceJSOnly: app.Native.ForceJS}, Packages: f.Packages}
	fps, err := fper.Fingerprint(ctx, src, commit)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return &codepush.Error{Kind: codepush.KindInvalid, Field: "commit", Value: commit,
			Message: fmt.Sprintf("%s has no such commit (push it first: releasepilot reads the commit from GitHub to fingerprint it)", app.Repository)}
	case errors.Is(err, nativecheck.ErrIncomplete):
		return &codepush.Error{Kind: codepush.KindConflict, Field: "commit", Value: commit,
			Message: fmt.Sprintf("the native fingerprint of this commit cannot be computed with certainty (%v), so it cannot be released over the air", err)}
	case err != nil:
		return &codepush.Error{Kind: codepush.KindUnavailable, Field: "commit", Value: commit,
			Message: fmt.Sprintf("could not fingerprint the commit from %s: %v; try again", app.Repository, err)}
	}
	now := time.Now().UTC()
	if f.Now != nil {
		now = f.Now().UTC()
	}
	for p, fp := range fps {
		data, err := jsonMarshal(fp)
		if err != nil {
			return err
		}
		if err := f.Store.SaveFingerprint(ctx, store.Fingerprint{App: app.Name, Platform: release.Platform(p), Commit: commit,
			Algorithm: fp.Algorithm, Hash: fp.Hash, Data: data, CreatedAt: now}); err != nil {
			return err
		}
	}
	return nil
}
