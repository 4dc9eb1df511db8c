package dashboard

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/swapjoy/releasepilot/internal/release"
	"github.com/swapjoy/releasepilot/internal/store"
)

// hub reads the audit log once per interval for all of a replica's live
// pages and wakes the streams of the releases that changed. Every replica
// reads the same table, so a change made through any replica (or by any
// job leader) reaches every page. It runs only while someone watches.
type hub struct {
	st       *store.Store
	interval time.Duration
	log      *slog.Logger

	mu      sync.Mutex
	subs    map[*subscriber]struct{}
	running bool
	closed  bool
	done    chan struct{}
}

type subscriber struct {
	releaseID string
	wake      chan struct{}
}

func newHub(st *store.Store, interval time.Duration, log *slog.Logger) *hub {
	return &hub{st: st, interval: interval, log: log, subs: map[*subscriber]struct{}{}, done: make(chan struct{})}
}

// subscribe registers a stream for a release; nil after close.
func (h *hub) subscribe(releaseID string) *subscriber {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil
	}
	s := &subscriber{releaseID: releaseID, wake: make(chan struct{}, 1)}
	h.subs[s] = struct{}{}
	if !h.running {
		h.running = true
		go h.run()
	}
	return s
}

func (h *hub) unsubscribe(s *subscriber) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.subs, s)
}

func (h *hub) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.closed {
		h.closed = true
		close(h.done)
	}
}

func (h *hub) run() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-h.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	// Streams catch up from their own position when they subscribe, so
	// the hub starts at the newest event.
	last, err := h.st.LastEventCursor(ctx)
	if err != nil {
		h.log.Warn("dashboard live: read the audit log", "err", err)
	}
	t := time.NewTicker(h.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		h.mu.Lock()
		if len(h.subs) == 0 {
			h.running = false
			h.mu.Unlock()
			return
		}
		h.mu.Unlock()
		heads, err := h.st.EventHeads(ctx, last, 5000)
		if err != nil {
			if ctx.Err() == nil {
				h.log.Warn("dashboard live: read the audit log", "err", err)
			}
			continue
		}
		if len(heads) == 0 {
			continue
		}
		last = heads[len(heads)-1].Cursor
		changed := map[string]bool{}
		for _, e := range heads {
			changed[e.ReleaseID] = true
		}
		h.mu.Lock()
		for s := range h.subs {
			if changed[s.releaseID] {
				select {
				case s.wake <- struct{}{}:
				default: // a wake is pending already
				}
			}
		}
		h.mu.Unlock()
	}
}

// liveUpdate is one server-sent event: the lanes that changed, rendered,
// and the new audit rows, newest first.
type liveUpdate struct {
	LastEventID int64             `json:"last_event_id"`
	Lanes       map[string]string `json:"lanes"`
	Audit       string            `json:"audit"`
	// Said is a short line for screen readers about what changed.
	Said []string `json:"said,omitempty"`
}

// live streams a release's changes as server-sent events, starting after
// ?after= (or the Last-Event-ID of a reconnecting browser). Each event
// carries the re-rendered panels of the lanes that changed and the new
// audit rows, from the audit log the page itself shows.
func (db *Dashboard) live(w http.ResponseWriter, r *http.Request, v *viewer) {
	ctx := r.Context()
	id := r.PathValue("id")
	after := int64(-1)
	for _, s := range []string{r.Header.Get("Last-Event-ID"), r.URL.Query().Get("after")} {
		if s == "" {
			continue
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 {
			db.errorPage(w, r, http.StatusBadRequest, "Bad request", fmt.Sprintf("after: %q is not an event id", s))
			return
		}
		after = n
		break
	}
	if after < 0 {
		db.errorPage(w, r, http.StatusBadRequest, "Bad request", "after: missing; say which event the page shows last")
		return
	}
	rel, err := db.d.Store.GetRelease(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		db.errorPage(w, r, http.StatusNotFound, "Not found", fmt.Sprintf("There is no release %q.", id))
		return
	}
	if err != nil {
		db.internal(w, r, "load release", err)
		return
	}
	rc := http.NewResponseController(w)
	// The stream outlives the server's read timeout; it ends when the
	// page goes, the session ends or the server shuts down.
	_ = rc.SetReadDeadline(time.Time{})
	_ = rc.SetWriteDeadline(time.Time{})
	sub := db.hub.subscribe(id)
	if sub == nil {
		db.errorPage(w, r, http.StatusServiceUnavailable, "Unavailable", "The server is shutting down.")
		return
	}
	defer db.hub.unsubscribe(sub)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	// Tell the browser how soon to reconnect, and catch up at once.
	if _, err := fmt.Fprintf(w, "retry: 3000\n\n"); err != nil {
		return
	}
	_ = rc.Flush()
	recheck := time.NewTicker(time.Minute)
	defer recheck.Stop()
	keepalive := time.NewTicker(25 * time.Second)
	defer keepalive.Stop()
	wake := make(chan struct{}, 1)
	wake <- struct{}{}
	for {
		select {
		case <-ctx.Done():
			return
		case <-db.hub.done:
			return
		case <-sub.wake:
		case <-wake:
		case <-keepalive.C:
			if _, err := fmt.Fprint(w, ": keepalive\n\n"); err != nil {
				return
			}
			_ = rc.Flush()
			continue
		case <-recheck.C:
			// A session that ended (sign-out elsewhere, expiry, a removed
			// token) stops its streams too.
			if nv, err := db.session(r); err == nil && nv == nil {
				fmt.Fprint(w, "event: signedout\ndata: {}\n\n")
				_ = rc.Flush()
				return
			}
			continue
		}
		up, err := db.liveSince(ctx, rel, v, after)
		if err != nil {
			if ctx.Err() == nil {
				db.log.Warn("dashboard live: render", "release", id, "err", err)
			}
			continue
		}
		if up == nil {
			continue
		}
		b, err := json.Marshal(up)
		if err != nil {
			return
		}
		if _, err := fmt.Fprintf(w, "id: %d\nevent: update\ndata: %s\n\n", up.LastEventID, b); err != nil {
			return
		}
		if err := rc.Flush(); err != nil {
			return
		}
		after = up.LastEventID
	}
}

// liveSince reads the release's audit events after an id and renders what
// they changed; nil when nothing did.
func (db *Dashboard) liveSince(ctx context.Context, rel release.Release, v *viewer, after int64) (*liveUpdate, error) {
	evs, err := db.d.Store.Events(ctx, rel.ID, after, 500)
	if err != nil || len(evs) == 0 {
		return nil, err
	}
	lanes, err := db.d.Store.Lanes(ctx, rel.ID)
	if err != nil {
		return nil, err
	}
	now := db.d.Now()
	names := map[string]string{}
	for _, l := range lanes {
		names[l.ID] = string(l.Platform)
	}
	touched := map[string]bool{}
	all := false
	for _, e := range evs {
		if e.LaneID == "" {
			all = true // a release event (planned, say) may add lanes
		}
		touched[e.LaneID] = true
	}
	up := &liveUpdate{LastEventID: evs[len(evs)-1].ID, Lanes: map[string]string{}}
	for _, l := range lanes {
		if !all && !touched[l.ID] {
			continue
		}
		p := db.panel(ctx, rel, l, v, now)
		html, err := db.renderBlock("release", "lane", p)
		if err != nil {
			return nil, err
		}
		up.Lanes[l.ID] = html
		up.Said = append(up.Said, fmt.Sprintf("%s lane: %s at %d %%", l.Platform, l.Status.State, l.Status.Percent))
	}
	var rows strings.Builder
	for i := len(evs) - 1; i >= 0; i-- {
		html, err := db.renderBlock("release", "event", rowOf(evs[i], names))
		if err != nil {
			return nil, err
		}
		rows.WriteString(html)
	}
	up.Audit = rows.String()
	return up, nil
}
