package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
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
// records it once, and starts one release per app and tag.
type GitHubWebhook struct {
	Store *store.Store
	Jobs  Enqueuer
	Apps  []GitHubApp
	Now   func() time.Time
	Log   *slog.Logger
}

type startedRelease struct {
	App       string `json:"app"`
	Tag       string `json:"tag"`
	ReleaseID string `json:"release_id"`
	Version   string `json:"version"`
	New       bool   `json:"new"`
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
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxGitHubPayload))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			WriteError(w, http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("payload is over GitHub's %d-byte limit", MaxGitHubPayload))
			return
		}
		WriteError(w, http.StatusBadRequest, "invalid", "cannot read body")
		return
	}
	// Authenticate before anything else: which apps' secrets signed this body?
	var signed []GitHubApp
	var sigErr error
	for _, a := range h.Apps {
		err := github.VerifyRequest(a.Secret, body, r.Header)
		if err == nil {
			signed = append(signed, a)
		} else if sigErr == nil {
			sigErr = err
		}
	}
	if len(signed) == 0 {
		msg := "signature check failed"
		if sigErr != nil {
			msg = sigErr.Error()
		} else if len(h.Apps) == 0 {
			msg = "no app is configured to receive GitHub webhooks"
		}
		WriteError(w, http.StatusUnauthorized, "unauthorized", msg)
		return
	}
	event := r.Header.Get(github.HeaderEvent)
	deliveryID := strings.TrimSpace(r.Header.Get("X-GitHub-Delivery"))
	if deliveryID == "" || len(deliveryID) > 100 {
		WriteError(w, http.StatusBadRequest, "invalid", "X-GitHub-Delivery: missing or longer than 100 characters")
		return
	}
	d, err := github.ParseDelivery(event, body)
	if err != nil {
		WriteError(w, http.StatusBadRequest, "invalid", err.Error())
		return
	}
	ctx := r.Context()
	if d.Kind == github.KindPing {
		WriteJSON(w, http.StatusOK, map[string]any{"ok": true, "event": "ping", "hook_id": d.HookID})
		return
	}

	type match struct {
		app     GitHubApp
		m       github.TagMatch
		otaOnly bool
	}
	var matches []match
	reason := d.Reason
	if d.Kind == github.KindTagCreated {
		for _, a := range signed {
			if a.OTARule.Pattern != "" {
				if m := a.OTARule.Match(d.Repository, d.Tag); m.Matched {
					matches = append(matches, match{a, m, true})
					continue
				}
			}
			m := a.Rule.Match(d.Repository, d.Tag)
			if m.Matched {
				matches = append(matches, match{a, m, false})
			} else if reason == "" {
				reason = m.Reason
			}
		}
		if len(matches) == 0 && reason == "" {
			reason = fmt.Sprintf("repository %s is not configured for any app", d.Repository)
		}
	}

	var started []startedRelease
	redelivery := false
	err = h.Store.Tx(ctx, func(tx *store.Store) error {
		outcome := "ignored: " + reason
		if len(matches) > 0 {
			outcome = "release"
		}
		isNew, err := tx.RecordDelivery(ctx, store.Delivery{Source: "github", ID: deliveryID, Event: event, ReceivedAt: now(), Outcome: outcome})
		if err != nil {
			return err
		}
		if !isNew {
			redelivery = true
			return nil
		}
		if len(matches) == 0 {
			_, err := tx.AppendEvent(ctx, release.Event{At: now(), Actor: "github", Kind: "webhook.ignored",
				Details: map[string]any{"delivery": deliveryID, "event": event, "repository": d.Repository, "tag": d.Tag, "reason": reason}})
			return err
		}
		for _, m := range matches {
			rel, created, err := tx.CreateRelease(ctx, release.Release{App: m.app.Name, Tag: d.Tag, Version: m.m.Version.String(), Commit: d.Commit, CreatedAt: now(), UpdatedAt: now()})
			if err != nil {
				return err
			}
			if !created && rel.Commit == "" && d.Commit != "" {
				// A create event (no commit) came first; the push knows it.
				rel.Commit, rel.UpdatedAt = d.Commit, now()
				if err := tx.UpdateRelease(ctx, rel); err != nil {
					return err
				}
			}
			started = append(started, startedRelease{App: m.app.Name, Tag: d.Tag, ReleaseID: rel.ID, Version: rel.Version, New: created})
			if !created {
				continue
			}
			if _, err := tx.AppendEvent(ctx, release.Event{At: now(), Actor: "github", ReleaseID: rel.ID, Kind: "release.created",
				Details: map[string]any{"delivery": deliveryID, "event": event, "tag": d.Tag, "commit": d.Commit, "platforms": m.m.Platforms, "ota_only": m.otaOnly}}); err != nil {
				return err
			}
			args := jobs.PlanReleaseArgs{App: m.app.Name, Tag: d.Tag, Commit: d.Commit, ReleaseID: rel.ID, Platforms: m.m.Platforms, OTAOnly: m.otaOnly}
			if _, _, err := h.Jobs.EnqueueTx(ctx, tx, args, nil); err != nil {
				return err
			}
		}
		if len(started) > 0 {
			return tx.SetDeliveryOutcome(ctx, "github", deliveryID, "release", started[0].ReleaseID)
		}
		return nil
	})
	if err != nil {
		log.Error("github webhook", "delivery", deliveryID, "err", err)
		WriteError(w, http.StatusInternalServerError, "internal", "could not record the delivery")
		return
	}
	switch {
	case redelivery:
		WriteJSON(w, http.StatusOK, map[string]any{"delivery": deliveryID, "status": "already processed"})
	case len(started) == 0:
		log.Info("github delivery ignored", "delivery", deliveryID, "event", event, "reason", reason)
		w.WriteHeader(http.StatusNoContent)
	default:
		out := map[string]any{"delivery": deliveryID, "release_id": started[0].ReleaseID, "releases": started}
		b, _ := json.Marshal(out)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusAccepted)
		_, _ = w.Write(append(b, '\n'))
	}
}
