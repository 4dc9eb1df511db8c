package ioslane

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/swapjoy/releasepilot/internal/jobs/lane"
	"github.com/swapjoy/releasepilot/internal/store"
)

// Waker wakes ios_lane jobs that wait on an App Store Connect resource,
// so an event pushed by App Store Connect's webhook need not wait for the
// next poll.
type Waker struct {
	Store *store.Store
	// Client returns the River client; it is read at call time because the
	// client is built after the routes are set up.
	Client func() *river.Client[*sql.Tx]
	Log    *slog.Logger
}

// Wake makes every snoozed or retrying ios_lane job whose lane references
// one of ids (build upload, build, beta detail, version or review
// submission) available now; for BUILD_UPLOAD_STATE_UPDATED also the lanes
// waiting for CI's build to appear, which know no id yet. It returns the
// lanes woken.
func (w *Waker) Wake(ctx context.Context, eventType string, ids ...string) ([]string, error) {
	var client *river.Client[*sql.Tx]
	if w.Client != nil {
		client = w.Client()
	}
	if client == nil {
		return nil, errors.New("jobs are not running")
	}
	params := river.NewJobListParams().Kinds(lane.IOSArgs{}.Kind()).
		States(rivertype.JobStateScheduled, rivertype.JobStateRetryable).First(1000)
	res, err := client.JobList(ctx, params)
	if err != nil {
		return nil, fmt.Errorf("list ios_lane jobs: %w", err)
	}
	var woken []string
	for _, j := range res.Jobs {
		var a lane.IOSArgs
		if json.Unmarshal(j.EncodedArgs, &a) != nil || a.LaneID == "" {
			continue
		}
		var data iosLaneData
		if err := w.Store.LaneData(ctx, a.LaneID, &data); err != nil {
			continue
		}
		pickup := eventType == "BUILD_UPLOAD_STATE_UPDATED" && data.Waiting == "pickup"
		if !pickup && !slices.ContainsFunc(ids, data.references) {
			continue
		}
		if _, err := client.JobRetry(ctx, j.ID); err != nil {
			return woken, fmt.Errorf("wake job %d of lane %s: %w", j.ID, a.LaneID, err)
		}
		woken = append(woken, a.LaneID)
		if w.Log != nil {
			w.Log.Info("woke ios lane job", "lane", a.LaneID, "job", j.ID)
		}
	}
	return woken, nil
}
