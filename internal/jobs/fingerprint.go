package jobs

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/swapjoy/releasepilot/internal/config"
	"github.com/swapjoy/releasepilot/internal/nativecheck"
	"github.com/swapjoy/releasepilot/internal/release"
	"github.com/swapjoy/releasepilot/internal/store"
)

// fingerprinter applies an app's native rules.
func (p *Planner) fingerprinter(app config.App) *nativecheck.Fingerprinter {
	return &nativecheck.Fingerprinter{Rules: nativecheck.Rules{Root: app.Root, NativeGlobs: app.Native.ExtraGlobs,
		IgnoredGlobs: app.Native.IgnoreGlobs, ForceNative: app.Native.ForceNative, ForceJSOnly: app.Native.ForceJS}, Packages: p.Packages}
}

// FingerprintCommit computes the native fingerprints of one commit of a
// configured app, by the app's rules, reading its repository. It records
// nothing. An error (including a truncated tree) means the commit's
// nativeness is unknown: callers must treat it as native.
func (p *Planner) FingerprintCommit(ctx context.Context, appName, commit string) (map[nativecheck.Platform]nativecheck.Fingerprint, error) {
	app, ok := p.Apps[appName]
	if !ok {
		return nil, fmt.Errorf("app %q is not configured", appName)
	}
	repo, err := p.Repo(app.Repository)
	if err != nil {
		return nil, err
	}
	return p.fingerprinter(app).Fingerprint(ctx, repo, commit)
}

// liveFingerprint is the live binary's fingerprint by the current
// algorithm. A binary recorded before the algorithm changed carries a hash
// no new fingerprint can equal; its commit is fingerprinted again (and
// recorded) so that an upgrade does not make every release native. When
// that fails, the recorded hash stands: fail closed.
func (p *Planner) liveFingerprint(ctx context.Context, repo RepoReader, fper *nativecheck.Fingerprinter, app string, plat release.Platform, live release.Binary) string {
	if live.Commit == "" {
		return live.Fingerprint
	}
	if stored, err := p.Store.GetFingerprint(ctx, app, plat, live.Commit, nativecheck.Algorithm); err == nil {
		var fp nativecheck.Fingerprint
		if json.Unmarshal(stored.Data, &fp) == nil && fp.Verify() && fp.Hash == stored.Hash {
			return stored.Hash
		}
		return live.Fingerprint
	}
	all, err := fper.Fingerprint(ctx, repo, live.Commit)
	if err != nil {
		return live.Fingerprint
	}
	fp, ok := all[nativecheck.Platform(plat)]
	if !ok {
		return live.Fingerprint
	}
	if data, err := json.Marshal(fp); err == nil {
		_ = p.Store.SaveFingerprint(ctx, store.Fingerprint{App: app, Platform: plat, Commit: live.Commit, Algorithm: fp.Algorithm,
			Hash: fp.Hash, Data: data, CreatedAt: p.now()})
	}
	return fp.Hash
}
