package expoupdates

import (
	"bytes"
	"context"
	"errors"

	"github.com/swapjoy/releasepilot/codepush"
)

// ReleaseInput is one platform of an export released to a deployment.
type ReleaseInput struct {
	App, Deployment string // the CodePush app (one per platform) and deployment
	Dist            *Dist
	Platform        string // ios or android
	// RuntimeVersion is the exact runtime version the update is for; empty
	// resolves it from the export's app config (Dist.RuntimeVersion).
	RuntimeVersion string
	Description    string
	Mandatory      bool
	Rollout        int // 1..100; 0 means 100
	Commit         string
}

// Releaser appends releases to a deployment's history under the CodePush
// rules, storing packages in Blobs: a *codepush.Service, or a wrapper of
// one that adds rules of its own (releasepilot's staged rollouts and audit
// log for releases made by hand).
type Releaser interface {
	Blobs() codepush.Blobs
	Release(ctx context.Context, in codepush.ReleaseInput) (codepush.Release, error)
}

var _ Releaser = (*codepush.Service)(nil)

// Release stores an export's bundle and assets and appends the update to the
// deployment's history through cp's rules: the gate (the native
// fingerprint of the commit against the binaries of the runtime version),
// the unfinished-rollout lock, identical-content refusal, labels and
// history.
func Release(ctx context.Context, cp Releaser, in ReleaseInput) (codepush.Release, Update, error) {
	if in.Dist == nil {
		return codepush.Release{}, Update{}, errors.New("expoupdates: no export")
	}
	rv := in.RuntimeVersion
	if rv == "" {
		var err error
		if rv, err = in.Dist.RuntimeVersion(in.Platform); err != nil {
			return codepush.Release{}, Update{}, err
		}
	}
	if cp.Blobs() == nil {
		return codepush.Release{}, Update{}, errors.New("expoupdates: the CodePush service has no package storage")
	}
	u, err := in.Dist.Store(ctx, cp.Blobs(), in.Platform, rv)
	if err != nil {
		return codepush.Release{}, Update{}, err
	}
	body, err := u.Encode()
	if err != nil {
		return codepush.Release{}, Update{}, err
	}
	r, err := cp.Release(ctx, codepush.ReleaseInput{
		App: in.App, Deployment: in.Deployment, AppVersion: rv, ExactTarget: true,
		Description: in.Description, Mandatory: in.Mandatory, Rollout: in.Rollout,
		Commit: in.Commit, Package: bytes.NewReader(body),
	})
	return r, u, err
}
