package github

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	gh "github.com/google/go-github/v60/github"
)

// DeliveryKind is what a webhook delivery means to releasepilot.
type DeliveryKind string

// Delivery kinds.
const (
	// KindTagCreated: a tag was created; a release may start.
	KindTagCreated DeliveryKind = "tag_created"
	// KindTagDeleted: a tag was deleted (a push with deleted true, or a
	// delete event of a tag); a release of it may have to stop.
	KindTagDeleted DeliveryKind = "tag_deleted"
	// KindPing: GitHub's hook-created ping; answer 2xx.
	KindPing DeliveryKind = "ping"
	// KindIgnored: valid but irrelevant (branch pushes and deletions, other
	// events and actions); Reason says why. Answer 2xx.
	KindIgnored DeliveryKind = "ignored"
)

// Delivery is a webhook payload normalised across push, create, delete,
// release and ping events.
type Delivery struct {
	Kind   DeliveryKind
	Event  string // X-GitHub-Event
	Action string // release action, if any
	// Repository is the full name "owner/name".
	Repository string
	Tag        string // bare tag name, e.g. "v1.4.0"
	// Commit is the tagged commit SHA. It is empty when NeedsResolution is
	// set: the payload does not carry it (create events, releases whose
	// target_commitish is a branch), so resolve Tag with Repo.ResolveTag.
	Commit          string
	NeedsResolution bool
	// TagObject is the annotated tag object SHA a push reported as "after"
	// when it differs from the commit; empty for lightweight tags.
	TagObject string
	// Moved is set when a push re-points an existing tag (created false,
	// forced true): the same tag name now names another commit.
	Moved bool
	// Before is what a deleted or moved tag pointed to before (a push's
	// "before": the commit, or the tag object of an annotated tag).
	Before          string
	TargetCommitish string // release events only
	Prerelease      bool   // release events only
	HookID          int64  // ping only
	Reason          string // why a delivery is ignored
}

// PayloadError means the body is not a valid payload for its event. The
// handler answers 400.
type PayloadError struct {
	Event string
	Err   error
}

func (e *PayloadError) Error() string {
	return fmt.Sprintf("github webhook: malformed %q payload: %v", e.Event, e.Err)
}

func (e *PayloadError) Unwrap() error { return e.Err }

// ErrMalformedPayload matches every *PayloadError with errors.Is.
var ErrMalformedPayload = errors.New("malformed webhook payload")

// Is reports ErrMalformedPayload.
func (e *PayloadError) Is(target error) bool { return target == ErrMalformedPayload }

const zeroSHA = "0000000000000000000000000000000000000000"

// ParseDelivery normalises a delivery. eventType is the X-GitHub-Event
// header. It returns a *PayloadError for a missing event type, a body that
// is not a JSON object, or a relevant event missing its repository or ref.
// It never panics on any input.
func ParseDelivery(eventType string, body []byte) (Delivery, error) {
	d := Delivery{Event: eventType}
	bad := func(format string, args ...any) (Delivery, error) {
		return Delivery{}, &PayloadError{Event: eventType, Err: fmt.Errorf(format, args...)}
	}
	if eventType == "" {
		return bad("X-GitHub-Event header missing")
	}
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 || trimmed[0] != '{' || !json.Valid(trimmed) {
		return bad("body is not a JSON object")
	}
	var common struct {
		Repository *struct {
			FullName string `json:"full_name"`
		} `json:"repository"`
	}
	if err := json.Unmarshal(trimmed, &common); err != nil {
		return bad("%v", err)
	}
	if common.Repository != nil {
		d.Repository = common.Repository.FullName
	}
	needRepo := func() error {
		if d.Repository == "" || !strings.Contains(d.Repository, "/") {
			return &PayloadError{Event: eventType, Err: errors.New("repository.full_name missing")}
		}
		return nil
	}

	switch eventType {
	case "ping":
		var p gh.PingEvent
		if err := json.Unmarshal(trimmed, &p); err != nil {
			return bad("%v", err)
		}
		d.Kind, d.HookID = KindPing, p.GetHookID()
		return d, nil

	case "push":
		var p gh.PushEvent
		if err := json.Unmarshal(trimmed, &p); err != nil {
			return bad("%v", err)
		}
		ref := p.GetRef()
		if ref == "" {
			return bad("ref missing")
		}
		if err := needRepo(); err != nil {
			return Delivery{}, err
		}
		tag, isTag := strings.CutPrefix(ref, "refs/tags/")
		if !isTag {
			return ignored(d, fmt.Sprintf("push to %s is not a tag", ref)), nil
		}
		d.Tag = tag
		if b := p.GetBefore(); isSHA(b) && b != zeroSHA {
			d.Before = b
		}
		if p.GetDeleted() || p.GetAfter() == zeroSHA {
			d.Kind = KindTagDeleted
			return d, nil
		}
		d.Kind = KindTagCreated
		d.Moved = !p.GetCreated() && d.Before != ""
		// For an annotated tag "after" is the tag object, not the commit;
		// head_commit.id is the commit.
		if id := p.GetHeadCommit().GetID(); isSHA(id) {
			d.Commit = id
			if after := p.GetAfter(); isSHA(after) && after != id {
				d.TagObject = after
			}
		} else {
			d.NeedsResolution = true
		}
		return d, nil

	case "create":
		var p gh.CreateEvent
		if err := json.Unmarshal(trimmed, &p); err != nil {
			return bad("%v", err)
		}
		if p.GetRefType() != "tag" {
			return ignored(d, fmt.Sprintf("create of a %s, not a tag", orUnknown(p.GetRefType()))), nil
		}
		if p.GetRef() == "" {
			return bad("ref missing")
		}
		if err := needRepo(); err != nil {
			return Delivery{}, err
		}
		d.Kind, d.Tag, d.NeedsResolution = KindTagCreated, p.GetRef(), true
		return d, nil

	case "delete":
		var p gh.DeleteEvent
		if err := json.Unmarshal(trimmed, &p); err != nil {
			return bad("%v", err)
		}
		if p.GetRefType() != "tag" {
			return ignored(d, fmt.Sprintf("deletion of a %s, not a tag", orUnknown(p.GetRefType()))), nil
		}
		if p.GetRef() == "" {
			return bad("ref missing")
		}
		if err := needRepo(); err != nil {
			return Delivery{}, err
		}
		d.Kind, d.Tag = KindTagDeleted, p.GetRef()
		return d, nil

	case "release":
		var p gh.ReleaseEvent
		if err := json.Unmarshal(trimmed, &p); err != nil {
			return bad("%v", err)
		}
		d.Action = p.GetAction()
		if d.Action != "published" {
			return ignored(d, fmt.Sprintf("release action %q is not \"published\"", d.Action)), nil
		}
		tag := p.GetRelease().GetTagName()
		if tag == "" {
			return bad("release.tag_name missing")
		}
		if err := needRepo(); err != nil {
			return Delivery{}, err
		}
		d.Kind, d.Tag = KindTagCreated, tag
		d.TargetCommitish = p.GetRelease().GetTargetCommitish()
		d.Prerelease = p.GetRelease().GetPrerelease()
		// target_commitish is usually a branch; it names the commit only
		// when it is a full SHA, and even then the tag may point elsewhere
		// if it existed before the release, so resolve the tag.
		d.NeedsResolution = true
		return d, nil
	}
	return ignored(d, fmt.Sprintf("event %q is not handled", eventType)), nil
}

func ignored(d Delivery, reason string) Delivery {
	d.Kind, d.Reason, d.Commit, d.NeedsResolution = KindIgnored, reason, "", false
	return d
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown ref type"
	}
	return s
}

// isSHA reports a full SHA-1 or SHA-256 object id in lower-case hex.
func isSHA(s string) bool {
	if len(s) != 40 && len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
