package dashboard

import (
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/swapjoy/releasepilot/internal/httpapi"
	"github.com/swapjoy/releasepilot/internal/release"
	"github.com/swapjoy/releasepilot/internal/store"
)

type confirmView struct {
	Command  string
	Label    string
	Move     httpapi.CommandMove
	Release  release.Release
	Reason   string
	Refusal  string
	CSRF     string
	Back     string
	Exposing bool
}

func commandLabel(c string) string {
	for _, o := range commandOrder {
		if string(o.cmd) == c {
			return o.label
		}
	}
	return c
}

// exposing commands put the release in front of more users; the confirm
// page says so.
func exposing(c release.Command) bool {
	return c == release.CmdAdvance || c == release.CmdComplete || c == release.CmdResume || c == release.CmdApprove
}

// confirmCommand shows what a command would do (the core's dry run, from →
// to) with a reason field and the button that does it; or why it would be
// refused. It changes nothing.
func (db *Dashboard) confirmCommand(w http.ResponseWriter, r *http.Request, v *viewer) {
	db.showConfirm(w, r, v, http.StatusOK, r.URL.Query().Get("reason"), "")
}

func (db *Dashboard) showConfirm(w http.ResponseWriter, r *http.Request, v *viewer, status int, reason, refusal string) {
	ctx := r.Context()
	name := r.PathValue("command")
	cv := confirmView{Command: name, Label: commandLabel(name), Reason: reason, CSRF: v.CSRF, Refusal: refusal, Back: "/"}
	move, err := db.d.Commands.DryRunCommand(ctx, r.PathValue("id"), name, reason)
	if err != nil {
		code, msg, ok := httpapi.Refusal(err)
		if !ok {
			db.internal(w, r, "dry run", err)
			return
		}
		cv.Refusal, status = msg, code
	} else {
		cv.Move = move
		cv.Exposing = exposing(move.Command)
	}
	if l := cv.Move.Lane; l.ReleaseID != "" {
		cv.Back = "/releases/" + url.PathEscape(l.ReleaseID)
		if rel, err := db.d.Store.GetRelease(ctx, l.ReleaseID); err == nil {
			cv.Release = rel
		}
	} else if l, err := db.d.Store.GetLane(ctx, r.PathValue("id")); err == nil {
		cv.Back = "/releases/" + url.PathEscape(l.ReleaseID)
	} else if !errors.Is(err, store.ErrNotFound) {
		db.internal(w, r, "read lane", err)
		return
	}
	db.renderLayout(w, r, status, "confirm", layoutView{Title: cv.Label + " — confirm", Viewer: v, Nav: "releases", Page: cv})
}

// runCommand queues a confirmed command through the core, as the API does,
// and returns to the release page; a refusal shows the confirm page again
// with the reason it was refused.
func (db *Dashboard) runCommand(w http.ResponseWriter, r *http.Request, v *viewer) {
	reason := strings.TrimSpace(r.PostFormValue("reason"))
	move, err := db.d.Commands.QueueCommand(r.Context(), r.PathValue("id"), r.PathValue("command"), v.Actor, reason)
	if err != nil {
		_, msg, ok := httpapi.Refusal(err)
		if !ok {
			db.internal(w, r, "queue command", err)
			return
		}
		db.showConfirm(w, r, v, http.StatusConflict, reason, msg)
		return
	}
	db.log.Info("dashboard: command queued", "actor", v.Actor, "lane", move.Lane.ID, "command", string(move.Command), "job", move.JobID)
	q := url.Values{"queued": {string(move.Command)}, "platform": {string(move.Lane.Platform)}}
	http.Redirect(w, r, "/releases/"+url.PathEscape(move.Lane.ReleaseID)+"?"+q.Encode()+"#lane-"+move.Lane.ID, http.StatusSeeOther)
}
