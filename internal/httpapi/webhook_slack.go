package httpapi

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/swapjoy/releasepilot/internal/release"
)

// Slack enables POST /webhooks/slack, the endpoint of a Slack app's slash
// command (for example /release): people read a release's status and halt,
// resume, advance or roll back from the channel where they talk about it.
type Slack struct {
	// SigningSecret verifies every request (X-Slack-Signature).
	SigningSecret []byte
	// Users maps Slack user ids to roles; anyone else is refused.
	Users map[string]Role
}

// Slack's request signing (api.slack.com/authentication/verifying-requests-from-slack):
// "v0=" + hex HMAC-SHA256 of "v0:<timestamp>:<body>" under the signing
// secret, with the timestamp within five minutes of now.
const (
	slackSignatureHeader = "X-Slack-Signature"
	slackTimestampHeader = "X-Slack-Request-Timestamp"
	slackMaxSkew         = 5 * time.Minute
	slackMaxBody         = 64 << 10
)

// SignSlack returns the X-Slack-Signature of body sent at ts, as Slack
// computes it.
func SignSlack(secret []byte, ts time.Time, body []byte) string {
	m := hmac.New(sha256.New, secret)
	fmt.Fprintf(m, "v0:%d:", ts.Unix())
	m.Write(body)
	return "v0=" + hex.EncodeToString(m.Sum(nil))
}

// slackNeedsConfirm lists the commands that expose more users: from Slack
// they first answer with what they would do, and act only when repeated
// with "confirm". Halt, pause, rollback and cancel only make things safer
// and act at once.
var slackNeedsConfirm = []release.Command{release.CmdAdvance, release.CmdComplete, release.CmdResume, release.CmdApprove}

// slackReply is a slash command's answer: ephemeral answers only the
// person who typed it sees; in_channel answers the whole channel.
type slackReply struct {
	ResponseType string `json:"response_type"`
	Text         string `json:"text"`
}

func ephemeral(format string, a ...any) slackReply {
	return slackReply{ResponseType: "ephemeral", Text: fmt.Sprintf(format, a...)}
}

// slackCommand serves the slash command. A request that is not Slack's (a
// signature, timestamp or form that does not verify) gets a 4xx JSON
// error; a verified request always gets 200 with a message, because Slack
// shows the person only the body of a 200.
func (s *Server) slackCommand(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, slackMaxBody))
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		WriteError(w, http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("body is larger than %d bytes", mbe.Limit))
		return
	case err != nil:
		WriteError(w, http.StatusBadRequest, "invalid", "body could not be read")
		return
	}
	if err := s.verifySlack(r.Header, body); err != nil {
		WriteError(w, http.StatusUnauthorized, "unauthorized", err.Error())
		return
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		WriteError(w, http.StatusBadRequest, "invalid", "body is not a URL-encoded form: "+err.Error())
		return
	}
	for _, k := range []string{"user_id", "command"} {
		if form.Get(k) == "" {
			WriteError(w, http.StatusBadRequest, "invalid", k+": missing from the slash command's form")
			return
		}
	}
	WriteJSON(w, http.StatusOK, s.slackAnswer(r.Context(), form))
}

func (s *Server) verifySlack(h http.Header, body []byte) error {
	sig, tsText := h.Get(slackSignatureHeader), h.Get(slackTimestampHeader)
	if sig == "" || tsText == "" {
		return fmt.Errorf("missing %s or %s", slackSignatureHeader, slackTimestampHeader)
	}
	sec, err := strconv.ParseInt(tsText, 10, 64)
	if err != nil {
		return fmt.Errorf("%s: %q is not a Unix time", slackTimestampHeader, tsText)
	}
	ts := time.Unix(sec, 0)
	if skew := s.deps.Now().Sub(ts); skew > slackMaxSkew || skew < -slackMaxSkew {
		return fmt.Errorf("%s: %s is more than %s from now (a replayed request?)", slackTimestampHeader, tsText, slackMaxSkew)
	}
	if !hmac.Equal([]byte(sig), []byte(SignSlack(s.deps.Slack.SigningSecret, ts, body))) {
		return fmt.Errorf("%s does not match the body", slackSignatureHeader)
	}
	return nil
}

const slackHelp = "Usage:\n" +
	"• `%[1]s status <app> [tag|latest]`: a release's lanes and what comes next\n" +
	"• `%[1]s halt|pause|rollback|cancel <app> <tag|latest> [ios|android] [reason…]`: acts at once\n" +
	"• `%[1]s advance|complete|resume|approve <app> <tag|latest> [ios|android] [confirm] [reason…]`: " +
	"shows what it would do; add `confirm` to do it\n" +
	"Commands need the operator role, status the viewer role (slack.users)."

// slackAnswer carries out one verified slash command.
func (s *Server) slackAnswer(ctx context.Context, form url.Values) slackReply {
	slash, userID, userName := form.Get("command"), form.Get("user_id"), form.Get("user_name")
	role, ok := s.deps.Slack.Users[userID]
	if !ok {
		return ephemeral("You (%s) may not use releasepilot: an admin adds your Slack user id to slack.users.", slackEscape(userID))
	}
	words := strings.Fields(form.Get("text"))
	if len(words) == 0 || words[0] == "help" {
		return ephemeral(slackHelp, slackEscape(slash))
	}
	name := strings.ToLower(words[0])
	if name == "status" {
		if len(words) < 2 || len(words) > 3 {
			return ephemeral("status: expected `%s status <app> [tag|latest]`", slash)
		}
		tag := "latest"
		if len(words) == 3 {
			tag = words[2]
		}
		return s.slackStatus(ctx, words[1], tag)
	}
	cmd, err := release.ParseCommand(name)
	if err != nil {
		return ephemeral("%s. %s", slackEscape(err.Error()), fmt.Sprintf(slackHelp, slackEscape(slash)))
	}
	if role < RoleOperator {
		return ephemeral("%s needs the operator role; you (%s) are a %s.", cmd, slackEscape(userID), role)
	}
	if len(words) < 3 {
		return ephemeral("%s: expected `%s %s <app> <tag|latest> [ios|android] …`", cmd, slash, cmd)
	}
	rel, err := s.slackRelease(ctx, words[1], words[2])
	if err != nil {
		return ephemeral("%s", slackEscape(err.Error()))
	}
	rest := words[3:]
	platform := ""
	if len(rest) > 0 && (rest[0] == "ios" || rest[0] == "android") {
		platform, rest = rest[0], rest[1:]
	}
	confirmed := len(rest) > 0 && rest[0] == "confirm"
	if confirmed {
		rest = rest[1:]
	}
	reason := strings.Join(rest, " ")
	l, err := s.releaseLane(ctx, rel.ID, platform)
	if err != nil {
		return ephemeral("%s", slackEscape(s.refusalText(err)))
	}
	what := fmt.Sprintf("%s %s %s", rel.App, rel.Tag, l.Platform)
	if slices.Contains(slackNeedsConfirm, cmd) && !confirmed {
		c, err := s.checkCommand(ctx, l.ID, string(cmd), reason)
		if err != nil {
			return ephemeral("%s %s: %s", cmd, slackEscape(what), slackEscape(s.refusalText(err)))
		}
		return ephemeral("%s %s would take the lane from %d%% (%s) to %d%% (%s). Nothing has changed. To do it: `%s %s %s %s %s confirm %s`",
			cmd, slackEscape(what), l.Status.Percent, l.Status.State, c.Decision.Status.Percent, c.Decision.Status.State,
			slash, cmd, rel.App, rel.Tag, l.Platform, slackEscape(reason))
	}
	if reason == "" {
		reason = "from Slack"
	}
	actor := fmt.Sprintf("slack:%s (%s)", userName, userID)
	q, err := s.queueCommand(ctx, l.ID, string(cmd), actor, reason)
	if err != nil {
		return ephemeral("%s %s: %s", cmd, slackEscape(what), slackEscape(s.refusalText(err)))
	}
	return slackReply{ResponseType: "in_channel", Text: fmt.Sprintf("<@%s> asked to %s %s at %d%% (%s). Queued; the audit log records it (event %d).",
		slackEscape(userID), cmd, slackEscape(what), l.Status.Percent, slackEscape(reason), q.EventID)}
}

// slackRelease finds an app's release by tag, or its newest for "latest".
func (s *Server) slackRelease(ctx context.Context, app, tag string) (release.Release, error) {
	if tag != "latest" {
		rel, err := s.deps.Store.ReleaseByTag(ctx, app, tag)
		return rel, refusalOrInternal(s, err)
	}
	rs, err := s.deps.Store.ListReleases(ctx, app, 1)
	if err != nil {
		return release.Release{}, refusalOrInternal(s, err)
	}
	if len(rs) == 0 {
		return release.Release{}, fmt.Errorf("app %q has no releases", app)
	}
	return rs[0], nil
}

func (s *Server) slackStatus(ctx context.Context, app, tag string) slackReply {
	rel, err := s.slackRelease(ctx, app, tag)
	if err != nil {
		return ephemeral("%s", slackEscape(err.Error()))
	}
	lanes, err := s.deps.Store.Lanes(ctx, rel.ID)
	if err != nil {
		return ephemeral("%s", slackEscape(refusalOrInternal(s, err).Error()))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "*%s %s* (%s, commit %s): %s", slackEscape(rel.App), slackEscape(rel.Tag), rel.ID, slackEscape(short(rel.Commit)), rel.State)
	if len(lanes) == 0 {
		b.WriteString("\nno lanes yet: the release is being planned")
	}
	now := s.deps.Now()
	for _, l := range lanes {
		next := release.Next(l.Plan, l.Status, now, release.FreezesFor(s.deps.Freezes, rel.App, l)...)
		fmt.Fprintf(&b, "\n• %s %s: %s at %d%%; %s", l.Platform, l.Kind, l.Status.State, l.Status.Percent, slackEscape(next.Summary))
	}
	return ephemeral("%s", b.String())
}

// refusalText is a refusal's message; an internal error is logged and
// never shown.
func (s *Server) refusalText(err error) string {
	var cr *commandRefusal
	if errors.As(err, &cr) {
		return cr.msg
	}
	s.log.Error("slack command", "err", err)
	return "internal error; the server log has the details"
}

// refusalOrInternal keeps not-found and conflict errors as they are and
// logs anything else, returning a generic error in its place.
func refusalOrInternal(s *Server, err error) error {
	if err == nil {
		return nil
	}
	if r := storeRefusal(err); r != err {
		return r
	}
	s.log.Error("slack command: store error", "err", err)
	return errors.New("internal error; the server log has the details")
}

func short(commit string) string {
	if len(commit) > 12 {
		return commit[:12]
	}
	return commit
}

// slackEscape escapes the three characters Slack's message text reserves.
func slackEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}
