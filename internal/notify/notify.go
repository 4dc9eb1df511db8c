// Package notify sends releasepilot's audit events that people care about —
// a lane halted, failed, completed, refused or cancelled, a release's tag
// moved or deleted — to Slack incoming webhooks and generic JSON webhooks.
//
// Delivery is a pass over the audit log from a per-target cursor kept in the
// database, run by the leader with the reconciler: each event goes out once
// across replicas (at least once if the process dies mid-pass), and a target
// that is down is retried on the next pass without losing events.
package notify

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/swapjoy/releasepilot/internal/release"
	"github.com/swapjoy/releasepilot/internal/store"
)

// Topics people subscribe to.
const (
	TopicStarted   = "started"   // a tag started a release
	TopicPlanned   = "planned"   // a lane was planned (store or OTA)
	TopicRefused   = "refused"   // a lane was refused (native change on an OTA-only tag…)
	TopicAdvanced  = "advanced"  // a rollout moved to a higher percentage
	TopicHalted    = "halted"    // a rollout was halted, paused or rolled back
	TopicResumed   = "resumed"   // a halted rollout was resumed
	TopicCompleted = "completed" // a lane reached 100 %
	TopicFailed    = "failed"    // a lane failed
	// TopicCancelled: a lane was cancelled — by a person, because its tag
	// moved or was deleted before its point of no return, or because a
	// newer hand-made release superseded it.
	TopicCancelled  = "cancelled"
	TopicTagMoved   = "tag_moved"   // a release's tag now names another commit (or names its own again)
	TopicTagDeleted = "tag_deleted" // a release's tag was deleted
)

// Topics lists every topic.
var Topics = []string{TopicStarted, TopicPlanned, TopicRefused, TopicAdvanced, TopicHalted, TopicResumed, TopicCompleted, TopicFailed,
	TopicCancelled, TopicTagMoved, TopicTagDeleted}

// DefaultTopics are sent when a target names none.
var DefaultTopics = []string{TopicRefused, TopicHalted, TopicCompleted, TopicFailed, TopicCancelled, TopicTagMoved, TopicTagDeleted}

// Target is one destination.
type Target struct {
	Kind   string // slack or webhook
	URL    string // a secret: never logged
	Topics []string
}

// ID names the target in the cursor table without revealing its URL.
func (t Target) ID() string {
	sum := sha256.Sum256([]byte(t.Kind + " " + t.URL))
	return t.Kind + ":" + hex.EncodeToString(sum[:8])
}

// Topic maps an audit event to a topic, or "" for events nobody is told of.
func Topic(e release.Event) string {
	switch e.Kind {
	case "release.created":
		return TopicStarted
	case "lane.planned":
		if e.Details["kind"] == string(release.KindRefused) {
			return TopicRefused
		}
		return TopicPlanned
	case "rollout.advance", "command.advance":
		return TopicAdvanced
	case "rollout.halt", "command.halt", "command.pause", "command.rollback":
		return TopicHalted
	case "command.cancel", "lane.cancelled":
		return TopicCancelled
	case "tag.moved":
		return TopicTagMoved
	case "tag.deleted":
		return TopicTagDeleted
	case "command.resume":
		return TopicResumed
	case "rollout.complete", "command.complete":
		return TopicCompleted
	case "lane.failed":
		return TopicFailed
	}
	return ""
}

// Text is the one-line human message for an event.
func Text(e release.Event, rel release.Release) string {
	p := fmt.Sprint(e.Details["platform"])
	name := fmt.Sprintf("%s %s", rel.App, rel.Tag)
	reason := fmt.Sprint(e.Details["reason"])
	switch Topic(e) {
	case TopicStarted:
		return fmt.Sprintf("🚀 %s: release started", name)
	case TopicPlanned:
		return fmt.Sprintf("🗺️ %s [%s]: %v lane — %s", name, p, e.Details["kind"], reason)
	case TopicRefused:
		return fmt.Sprintf("⛔ %s [%s]: refused — %s", name, p, reason)
	case TopicAdvanced:
		return fmt.Sprintf("📈 %s [%s]: rolled out to %v%%", name, p, e.Details["percent"])
	case TopicHalted:
		return fmt.Sprintf("🛑 %s [%s]: %s by %s — %s", name, p, strings.TrimPrefix(strings.TrimPrefix(e.Kind, "rollout."), "command."), e.Actor, reason)
	case TopicResumed:
		return fmt.Sprintf("▶️ %s [%s]: resumed by %s — %s", name, p, e.Actor, reason)
	case TopicCompleted:
		return fmt.Sprintf("✅ %s [%s]: at 100%%", name, p)
	case TopicFailed:
		return fmt.Sprintf("❌ %s [%s]: failed — %s", name, p, reason)
	case TopicCancelled:
		return fmt.Sprintf("🚫 %s [%s]: cancelled by %s — %s", name, p, e.Actor, reason)
	case TopicTagMoved:
		return fmt.Sprintf("🏷️ %s: tag moved from %s to %s — %v", name, release.ShortSHA(fmt.Sprint(e.Details["from"])), release.ShortSHA(fmt.Sprint(e.Details["to"])), e.Details["outcome"])
	case TopicTagDeleted:
		return fmt.Sprintf("🏷️ %s: tag deleted — %v", name, e.Details["outcome"])
	}
	return fmt.Sprintf("%s: %s", name, e.Kind)
}

// Notifier delivers events to its targets.
type Notifier struct {
	Store   *store.Store
	Targets []Target
	HTTP    *http.Client
	Log     *slog.Logger
	Now     func() time.Time
	// Freezes are shown in what comes next after an advance.
	Freezes []release.Freeze
}

func (n *Notifier) now() time.Time {
	if n.Now == nil {
		return time.Now()
	}
	return n.Now()
}

// Pass sends every new event each target subscribes to, in order, and moves
// the target's cursor past what was delivered. A target that fails keeps its
// cursor at the failed event; the other targets carry on.
func (n *Notifier) Pass(ctx context.Context) error {
	var errs []error
	for _, t := range n.Targets {
		if err := n.passTarget(ctx, t); err != nil {
			errs = append(errs, fmt.Errorf("notify %s: %w", t.ID(), err))
		}
	}
	return errors.Join(errs...)
}

func (n *Notifier) passTarget(ctx context.Context, t Target) error {
	cursor, err := n.Store.NotifyCursor(ctx, t.ID())
	if err != nil {
		return err
	}
	topics := t.Topics
	if len(topics) == 0 {
		topics = DefaultTopics
	}
	evs, err := n.Store.LogEvents(ctx, cursor, 200)
	if err != nil {
		return err
	}
	releases := map[string]release.Release{}
	for _, e := range evs {
		topic := Topic(e.Event)
		if topic != "" && slices.Contains(topics, topic) {
			rel, ok := releases[e.ReleaseID]
			if !ok && e.ReleaseID != "" {
				if rel, err = n.Store.GetRelease(ctx, e.ReleaseID); err != nil && !errors.Is(err, store.ErrNotFound) {
					return err
				}
				releases[e.ReleaseID] = rel
			}
			if err := n.send(ctx, t, e.Event, topic, rel); err != nil {
				return err
			}
		}
		if err := n.Store.SetNotifyCursor(ctx, t.ID(), e.Cursor, n.now()); err != nil {
			return err
		}
	}
	return nil
}

func (n *Notifier) send(ctx context.Context, t Target, e release.Event, topic string, rel release.Release) error {
	text := Text(e, rel)
	if topic == TopicAdvanced {
		next, err := n.next(ctx, e, rel.App)
		if err != nil {
			return err
		}
		if next != "" {
			text += " — " + next
		}
	}
	var body any
	switch t.Kind {
	case "slack":
		body = map[string]string{"text": text}
	default:
		body = map[string]any{"topic": topic, "text": text, "event": map[string]any{
			"id": e.ID, "at": e.At, "actor": e.Actor, "kind": e.Kind, "release_id": e.ReleaseID, "lane_id": e.LaneID, "details": e.Details},
			"release": map[string]any{"app": rel.App, "tag": rel.Tag, "version": rel.Version}}
	}
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.URL, bytes.NewReader(b))
	if err != nil {
		return errors.New("invalid target URL")
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "releasepilot")
	hc := n.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 10 * time.Second}
	}
	res, err := hc.Do(req)
	if err != nil {
		// The URL is a secret (and a redirect may name another): report the
		// failure without any URL.
		return fmt.Errorf("event %d: delivery failed: %s", e.ID, describeErr(err))
	}
	defer res.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 64<<10))
	if res.StatusCode/100 != 2 {
		return fmt.Errorf("event %d: target answered %s", e.ID, res.Status)
	}
	if n.Log != nil {
		n.Log.Debug("notification sent", "target", t.ID(), "event", e.ID, "topic", topic)
	}
	return nil
}

func describeErr(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		switch {
		case ue.Timeout():
			return ue.Op + ": timed out"
		case errors.Is(ue.Err, context.Canceled):
			return ue.Op + ": cancelled"
		}
		var ne *net.OpError
		if errors.As(ue.Err, &ne) {
			return ue.Op + ": " + ne.Op + " failed"
		}
		return ue.Op + ": request failed"
	}
	return "request failed"
}

// next is what comes after an advance, while the lane still stands where
// the event left it (a notification sent late says nothing stale).
func (n *Notifier) next(ctx context.Context, e release.Event, app string) (string, error) {
	if e.LaneID == "" {
		return "", nil
	}
	l, err := n.Store.GetLane(ctx, e.LaneID)
	if errors.Is(err, store.ErrNotFound) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	var pct int
	switch v := e.Details["percent"].(type) {
	case float64:
		pct = int(v)
	case int:
		pct = v
	}
	if l.Status.Percent != pct || l.Status.Percent >= 100 || (l.Status.State != release.StateRolling && l.Status.State != release.StateWaiting) {
		return "", nil
	}
	return release.Next(l.Plan, l.Status, n.now(), release.FreezesFor(n.Freezes, app, l)...).Summary, nil
}
