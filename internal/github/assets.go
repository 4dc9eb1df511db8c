package github

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path"
	"strings"
	"sync"
	"time"
)

// MaxAssetBytes bounds a downloaded release asset (4 GiB: App Store and Play
// accept nothing larger).
const MaxAssetBytes = 4 << 30

// Polling for release assets (a lane waiting for CI to attach its build)
// backs off: a miss is not looked for again for DefaultPollBackoff, then
// twice as long after each further miss, up to MaxPollBackoff. A few hundred
// waiting lanes then spend a few thousand requests an hour, not the budget.
const (
	DefaultPollBackoff = time.Minute
	MaxPollBackoff     = 15 * time.Minute
)

// AssetNotReadyError is an asset not looked for now: the last look missed
// it and polling backs off, or the credential's budget keeps polls back.
// It matches fs.ErrNotExist, as a missing asset does: callers wait and ask
// again; a budget wait also matches ErrRateLimited.
type AssetNotReadyError struct {
	Tag, Pattern string
	Until        time.Time
	Reason       string
	budget       bool
}

func (e *AssetNotReadyError) Error() string {
	return fmt.Sprintf("release %s: asset %q not looked for until %s: %s", e.Tag, e.Pattern, e.Until.UTC().Format(time.RFC3339), e.Reason)
}

// Is matches fs.ErrNotExist, and ErrRateLimited for a budget wait.
func (e *AssetNotReadyError) Is(target error) bool {
	return target == fs.ErrNotExist || (e.budget && target == ErrRateLimited)
}

type assetPolls struct {
	mu    sync.Mutex
	first time.Duration
	m     map[string]*assetPoll
}

type assetPoll struct {
	misses int
	next   time.Time
}

func newAssetPolls(first time.Duration) *assetPolls {
	if first <= 0 {
		first = DefaultPollBackoff
	}
	return &assetPolls{first: first, m: map[string]*assetPoll{}}
}

// wait returns when key may be looked for again (zero: now).
func (p *assetPolls) wait(key string, now time.Time) time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	if st := p.m[key]; st != nil && now.Before(st.next) {
		return st.next
	}
	return time.Time{}
}

// miss records a look that found nothing and returns the next look.
func (p *assetPolls) miss(key string, now time.Time) time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	st := p.m[key]
	if st == nil {
		st = &assetPoll{}
		p.m[key] = st
	}
	d := min(p.first<<min(st.misses, 16), MaxPollBackoff)
	st.misses++
	st.next = now.Add(d)
	return st.next
}

func (p *assetPolls) found(key string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.m, key)
}

// FetchAsset downloads the first asset of the GitHub release at tag whose
// name matches the glob pattern into a new temporary file, positioned at 0.
// The caller closes and removes it. A missing release or asset matches
// fs.ErrNotExist and the error lists the assets that are there; so does an
// *AssetNotReadyError, when polling backs off or the budget holds polls
// back (no request is made then).
func (r *Repo) FetchAsset(ctx context.Context, tag, pattern string) (*os.File, string, error) {
	if _, err := path.Match(pattern, ""); err != nil {
		return nil, "", fmt.Errorf("asset pattern %q: %w", pattern, err)
	}
	key := r.String() + "\x00" + tag + "\x00" + pattern
	now := r.c.now()
	if until := r.c.polls.wait(key, now); !until.IsZero() {
		return nil, "", &AssetNotReadyError{Tag: tag, Pattern: pattern, Until: until, Reason: "it was missing at the last look; polling backs off"}
	}
	rel, resp, err := r.gh.Repositories.GetReleaseByTag(asPoll(ctx), r.owner, r.name, tag)
	var rl *RateLimitedError
	if errors.As(err, &rl) {
		return nil, "", &AssetNotReadyError{Tag: tag, Pattern: pattern, Until: rl.Until, Reason: rl.Reason, budget: true}
	}
	if err != nil {
		err = apiErr("get release "+tag, resp, err)
		if errors.Is(err, fs.ErrNotExist) {
			next := r.c.polls.miss(key, now)
			return nil, "", fmt.Errorf("%w (looked for again after %s)", err, next.UTC().Format(time.RFC3339))
		}
		return nil, "", err
	}
	var names []string
	for _, a := range rel.Assets {
		name := a.GetName()
		names = append(names, name)
		if ok, _ := path.Match(pattern, name); !ok {
			continue
		}
		r.c.polls.found(key)
		if a.GetSize() > MaxAssetBytes {
			return nil, "", fmt.Errorf("asset %s of release %s is %d bytes, over the %d-byte limit", name, tag, a.GetSize(), int64(MaxAssetBytes))
		}
		rc, _, err := r.dl.Repositories.DownloadReleaseAsset(ctx, r.owner, r.name, a.GetID(), downloadClient)
		if err != nil {
			return nil, "", apiErr("download asset "+name, nil, err)
		}
		defer rc.Close()
		f, err := os.CreateTemp("", "releasepilot-asset-*-"+path.Base(name))
		if err != nil {
			return nil, "", err
		}
		n, err := io.Copy(f, io.LimitReader(rc, MaxAssetBytes+1))
		if err == nil && n > MaxAssetBytes {
			err = fmt.Errorf("asset %s is over the %d-byte limit", name, int64(MaxAssetBytes))
		}
		if err == nil && a.GetSize() > 0 && n != int64(a.GetSize()) {
			err = fmt.Errorf("asset %s: got %d bytes, the release lists %d", name, n, a.GetSize())
		}
		if err == nil {
			_, err = f.Seek(0, io.SeekStart)
		}
		if err != nil {
			f.Close()
			os.Remove(f.Name())
			return nil, "", fmt.Errorf("download asset %s: %w", name, err)
		}
		return f, name, nil
	}
	next := r.c.polls.miss(key, now)
	return nil, "", fmt.Errorf("release %s has no asset matching %q (assets: %s; looked for again after %s): %w",
		tag, pattern, strings.Join(names, ", "), next.UTC().Format(time.RFC3339), fs.ErrNotExist)
}

// downloadClient follows the redirect to object storage; it is a plain
// client, so the API token is never sent there.
var downloadClient = &http.Client{}
