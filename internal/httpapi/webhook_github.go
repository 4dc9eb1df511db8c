package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/riverqueue/river"

	"github.com/swapjoy/releasepilot/internal/github"
	"github.com/swapjoy/releasepilot/internal/jobs"
	"github.com/swapjoy/releasepilot/internal/release"
	"github.com/swapjoy/releasepilot/internal/store"
)

// MaxGitHubPayload is GitHub's cap on a webhook payload (25 MB).
const MaxGitHubPayload = 25 << 20

// GitHubApp is what the webhook needs to know of one configured app.
type GitHubApp struct {
	Name   string
	Secret []byte
	Rule   github.TagRule
	// OTARule, when its pattern is set, matches tags that ask for an
	// over-the-air release only.
	OTARule github.TagRule
}

// Enqueuer inserts jobs inside a store transaction.
type Enqueuer interface {
	EnqueueTx(ctx context.Context, tx *store.Store, args river.JobArgs, opts *river.InsertOpts) (int64, bool, error)
}

// GitHubWebhook serves POST /webhooks/github: it verifies the delivery,
// records it once, starts one release per app and tag, and hands moved and
// deleted tags of known releases to a tag_change job. A delivery no app
// takes (another repository, a tag no rule matches, not a tag event)
// touches no table: it is answered and counted, nothing more.
type GitHubWebhook struct {
	Store *store.Store
	Jobs  Enqueuer
	Apps  []GitHubApp
	Now   func() time.Time
	Log   *slog.Logger
	// Metrics counts deliveries by outcome (nil: not counted).
	Metrics *Metrics
	// PlanPerRepository: past this many plans waiting for a repository's
	// releases, a new one is queued behind other repositories' plans
	// (jobs.PlanInsertOpts; 0: never).
	PlanPerRepository int
	// Read bounds what a delivery nobody has authenticated yet may hold:
	// at most Read.InMemory bytes in memory (github.DefaultInMemory when
	// 0), the rest spooled to disk while its signature is computed.
	Read github.ReadOptions
}

// DefaultSpool is how many long deliveries (over the in-memory bound) may be
// verified at once; more answer 503.
const DefaultSpool = 4

var defaultSpool = make(chan struct{}, DefaultSpool)

type startedRelease struct {
	App       string `json:"app"`
	Tag       string `json:"tag"`
	ReleaseID string `json:"release_id"`
	Version   string `json:"version"`
	New       bool   `json:"new"`
	// TagChange is what this delivery reported of a released tag: moved,
	// deleted, or check (no commit in the payload: the tag is resolved).
	TagChange string `json:"tag_change,omitempty"`
}

func (h *GitHubWebhook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	now := time.Now
	if h.Now != nil {
		now = h.Now
	}
	log := h.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	outcome := DeliveryRejected
	defer func() { h.Metrics.ObserveDelivery("github", outcome) }()
	// Everything that can be refused from the headers alone is refused
	// before a byte of the body is read.
	mediaType, err := github.CheckContentType(r.Header.Get("Content-Type"))
	if err != nil {
		WriteError(w, http.StatusUnsupportedMediaType, "unsupported_media_type", err.Error())
		return
	}
	if len(h.Apps) == 0 {
		WriteError(w, http.StatusUnauthorized, "unauthorized", "no app is configured to receive GitHub webhooks")
		return
	}
	sig, err := github.CheckSignatureHeader(r.Header)
	if err != nil {
		WriteError(w, http.StatusUnauthorized, "unauthorized", err.Error())
		return
	}
	// One HMAC per distinct secret, computed as the body streams in.
	var secrets [][]byte
	appSecret := make([]int, len(h.Apps))
	for i, a := range h.Apps {
		appSecret[i] = -1
		for j, s := range secrets {
			if string(s) == string(a.Secret) {
				appSecret[i] = j
			}
		}
		if appSecret[i] < 0 && len(a.Secret) > 0 {
			appSecret[i] = len(secrets)
			secrets = append(secrets, a.Secret)
		}
	}
	opts := h.Read
	if opts.Spool == nil {
		opts.Spool = defaultSpool
	}
	body, matched, err := github.ReadSigned(http.MaxBytesReader(w, r.Body, MaxGitHubPayload), sig, secrets, opts)
	if err != nil {
		var mbe *http.MaxBytesError
		var se *github.SignatureError
		switch {
		case errors.As(err, &mbe):
			WriteError(w, http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("payload is over GitHub's %d-byte limit", MaxGitHubPayload))
		case errors.As(err, &se):
			WriteError(w, http.StatusUnauthorized, "unauthorized", err.Error())
		case errors.Is(err, github.ErrBusy):
			outcome = DeliveryBusy
			w.Header().Set("Retry-After", "60")
			WriteError(w, http.StatusServiceUnavailable, "busy", err.Error())
		default:
			WriteError(w, http.StatusBadRequest, "invalid", "cannot read body")
		}
		return
	}
	var signed []GitHubApp
	for i, a := range h.Apps {
		if slices.Contains(matched, appSecret[i]) {
			signed = append(signed, a)
		}
	}
	event := r.Header.Get(github.HeaderEvent)
	deliveryID := strings.TrimSpace(r.Header.Get(github.HeaderDelivery))
	if deliveryID == "" || len(deliveryID) > 100 {
		WriteError(w, http.StatusBadRequest, "invalid", "X-GitHub-Delivery: missing or longer than 100 characters")
		return
	}
	payload, err := github.Payload(mediaType, body)
	if err != nil {
		WriteError(w, http.StatusBadRequest, "invalid", err.Error())
		return
	}
	d, err := github.ParseDelivery(event, payload)
	if err != nil {
		WriteError(w, http.StatusBadRequest, "invalid", err.Error())
		return
	}
	ctx := r.Context()
	if d.Kind == github.KindPing {
		outcome = DeliveryPing
		WriteJSON(w, http.StatusOK, map[string]any{"ok": true, "event": "ping", "hook_id": d.HookID})
		return
	}

	var matches []tagMatch
	reason := d.Reason
	if d.Kind == github.KindTagCreated || d.Kind == github.KindTagDeleted {
		for _, a := range signed {
			if a.OTARule.Pattern != "" {
				if m := a.OTARule.Match(d.Repository, d.Tag); m.Matched {
					matches = append(matches, tagMatch{a, m, true})
					continue
				}
			}
			m := a.Rule.Match(d.Repository, d.Tag)
			if m.Matched {
				matches = append(matches, tagMatch{a, m, false})
			} else if reason == "" {
				reason = m.Reason
			}
		}
		if len(matches) == 0 && reason == "" {
			reason = fmt.Sprintf("repository %s is not configured for any app", d.Repository)
		}
	}
	if len(matches) == 0 {
		// Nobody's tag: answered from memory, so a flood of other
		// repositories' or branches' deliveries costs the database nothing.
		outcome = ignoredOutcome(d, signed)
		log.Debug("github delivery ignored", "delivery", deliveryID, "event", event, "outcome", outcome, "reason", reason)
		w.WriteHeader(http.StatusNoContent)
		return
	}

	var started []startedRelease
	redelivery := false
	// The delivery is recorded with the outcome it most likely has, a new
	// release with this id, so the common case needs no second write.
	newID := store.NewID("rel")
	err = h.Store.Tx(ctx, func(tx *store.Store) error {
		started = nil
		isNew, err := tx.RecordDelivery(ctx, store.Delivery{Source: "github", ID: deliveryID, Event: event, ReceivedAt: now(), Outcome: "release", ReleaseID: newID})
		if err != nil {
			return err
		}
		if !isNew {
			redelivery = true
			return nil
		}
		for i, m := range matches {
			id := newID
			if i > 0 {
				id = store.NewID("rel")
			}
			sr, why, err := h.apply(ctx, tx, m, d, deliveryID, id, now())
			if err != nil {
				return err
			}
			if sr != nil {
				started = append(started, *sr)
			} else if reason == "" {
				reason = why
			}
		}
		if len(started) == 0 {
			if reason == "" {
				reason = fmt.Sprintf("tag %q has no release", d.Tag)
			}
			if err := tx.SetDeliveryOutcome(ctx, "github", deliveryID, "ignored: "+reason, ""); err != nil {
				return err
			}
			_, err := tx.AppendEvent(ctx, release.Event{At: now(), Actor: "github", Kind: "webhook.ignored",
				Details: map[string]any{"delivery": deliveryID, "event": event, "repository": d.Repository, "tag": d.Tag, "reason": reason}})
			return err
		}
		recorded := "release"
		if tc := started[0].TagChange; tc != "" {
			recorded = "tag " + tc
		}
		if recorded == "release" && started[0].ReleaseID == newID {
			return nil
		}
		return tx.SetDeliveryOutcome(ctx, "github", deliveryID, recorded, started[0].ReleaseID)
	})
	if err != nil {
		outcome = DeliveryError
		log.Error("github webhook", "delivery", deliveryID, "err", err)
		WriteError(w, http.StatusInternalServerError, "internal", "could not record the delivery")
		return
	}
	switch {
	case redelivery:
		outcome = DeliveryRedelivery
		WriteJSON(w, http.StatusOK, map[string]any{"delivery": deliveryID, "status": "already processed"})
	case len(started) == 0:
		outcome = DeliveryIgnored
		log.Info("github delivery ignored", "delivery", deliveryID, "event", event, "reason", reason)
		w.WriteHeader(http.StatusNoContent)
	default:
		outcome = DeliveryUnchanged
		for _, sr := range started {
			switch {
			case sr.New:
				outcome = DeliveryCreated
			case sr.TagChange != "" && outcome != DeliveryCreated:
				outcome = DeliveryTagChange
			}
		}
		out := map[string]any{"delivery": deliveryID, "release_id": started[0].ReleaseID, "releases": started}
		b, _ := json.Marshal(out)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusAccepted)
		_, _ = w.Write(append(b, '\n'))
	}
}

// ignoredOutcome says why no app takes a delivery: not a tag event, a
// repository no signed app takes tags from, or a tag none of its rules
// match.
func ignoredOutcome(d github.Delivery, signed []GitHubApp) string {
	if d.Kind != github.KindTagCreated && d.Kind != github.KindTagDeleted {
		return DeliveryIgnoredEvent
	}
	for _, a := range signed {
		if strings.EqualFold(d.Repository, a.Rule.Repository) || a.OTARule.Pattern != "" && strings.EqualFold(d.Repository, a.OTARule.Repository) {
			return DeliveryIgnoredTag
		}
	}
	return DeliveryIgnoredRepo
}

// sameRepository names the apps whose releases come from a's repository.
func (h *GitHubWebhook) sameRepository(a GitHubApp) []string {
	var out []string
	for _, b := range h.Apps {
		if strings.EqualFold(b.Rule.Repository, a.Rule.Repository) {
			out = append(out, b.Name)
		}
	}
	return out
}

type tagMatch struct {
	app     GitHubApp
	m       github.TagMatch
	otaOnly bool
}

// apply records what one matching app does with a tag delivery, inside the
// delivery's transaction: a new tag starts a release; a known tag that
// moved, was deleted, or came without a commit gets a tag_change job. It
// returns nil and a reason when the delivery changes nothing for the app.
func (h *GitHubWebhook) apply(ctx context.Context, tx *store.Store, m tagMatch, d github.Delivery, deliveryID, newID string, now time.Time) (*startedRelease, string, error) {
	change := func(rel release.Release, kind, commit string) (*startedRelease, string, error) {
		args := jobs.TagChangeArgs{ReleaseID: rel.ID, Change: kind, Commit: commit, Delivery: deliveryID, Event: d.Event,
			Platforms: m.m.Platforms, OTAOnly: m.otaOnly}
		if _, _, err := h.Jobs.EnqueueTx(ctx, tx, args, nil); err != nil {
			return nil, "", err
		}
		return &startedRelease{App: m.app.Name, Tag: d.Tag, ReleaseID: rel.ID, Version: rel.Version, TagChange: kind}, "", nil
	}
	if d.Kind == github.KindTagDeleted {
		rel, err := tx.ReleaseByTag(ctx, m.app.Name, d.Tag)
		if errors.Is(err, store.ErrNotFound) {
			return nil, fmt.Sprintf("tag %q was deleted; it has no release", d.Tag), nil
		}
		if err != nil {
			return nil, "", err
		}
		// The push and the delete event of one deletion act once.
		changed, err := tx.SetTagState(ctx, rel.ID, release.TagDeleted, "", now)
		if err != nil || !changed {
			return nil, fmt.Sprintf("tag %q was deleted; already recorded", d.Tag), err
		}
		return change(rel, jobs.TagChangeDeleted, "")
	}

	rel, created, err := tx.CreateRelease(ctx, release.Release{ID: newID, App: m.app.Name, Tag: d.Tag, Version: m.m.Version.String(), Commit: d.Commit, CreatedAt: now, UpdatedAt: now})
	if err != nil {
		return nil, "", err
	}
	sr := &startedRelease{App: m.app.Name, Tag: d.Tag, ReleaseID: rel.ID, Version: rel.Version, New: created}
	if created {
		if _, err := tx.AppendEvent(ctx, release.Event{At: now, Actor: "github", ReleaseID: rel.ID, Kind: "release.created",
			Details: map[string]any{"delivery": deliveryID, "event": d.Event, "tag": d.Tag, "commit": d.Commit, "platforms": m.m.Platforms, "ota_only": m.otaOnly}}); err != nil {
			return nil, "", err
		}
		args := jobs.PlanReleaseArgs{App: m.app.Name, Tag: d.Tag, Commit: d.Commit, ReleaseID: rel.ID, Platforms: m.m.Platforms, OTAOnly: m.otaOnly}
		var opts *river.InsertOpts
		if h.PlanPerRepository > 0 {
			waiting, err := tx.PlansWaiting(ctx, h.sameRepository(m.app), now.Add(-jobs.PlanLookback), h.PlanPerRepository+1)
			if err != nil {
				return nil, "", err
			}
			opts = jobs.PlanInsertOpts(waiting, h.PlanPerRepository)
		}
		if _, _, err := h.Jobs.EnqueueTx(ctx, tx, args, opts); err != nil {
			return nil, "", err
		}
		return sr, "", nil
	}
	switch {
	case d.Commit == "":
		// A create or release event names the tag but not its commit:
		// the job resolves it, so a tag re-created elsewhere is seen.
		return change(rel, jobs.TagChangeCheck, "")
	case rel.Commit == "":
		// A create event came first; the push knows the commit.
		rel.Commit, rel.UpdatedAt = d.Commit, now
		return sr, "", tx.UpdateRelease(ctx, rel)
	case rel.TagState == release.TagDeleted || d.Commit != rel.Commit:
		if rel.TagState == release.TagMoved && rel.TagCommit == d.Commit {
			return sr, "", nil // the same move, delivered again as another event
		}
		if _, err := tx.SetTagState(ctx, rel.ID, release.TagMoved, d.Commit, now); err != nil {
			return nil, "", err
		}
		return change(rel, jobs.TagChangeMoved, d.Commit)
	case rel.TagState == release.TagMoved:
		// Moved back to the release's commit.
		if _, err := tx.SetTagState(ctx, rel.ID, "", "", now); err != nil {
			return nil, "", err
		}
		_, err := tx.AppendEvent(ctx, release.Event{At: now, Actor: "github", ReleaseID: rel.ID, Kind: "tag.moved",
			Details: map[string]any{"delivery": deliveryID, "event": d.Event, "tag": d.Tag, "from": rel.TagCommit, "to": d.Commit,
				"outcome": "the tag names this release's commit again"}})
		return sr, "", err
	}
	return sr, "", nil
}
