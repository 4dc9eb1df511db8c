package httpapi_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"

	"github.com/swapjoy/releasepilot/internal/httpapi"
	"github.com/swapjoy/releasepilot/internal/jobs"
	"github.com/swapjoy/releasepilot/internal/jobs/ioslane"
	"github.com/swapjoy/releasepilot/internal/jobs/lane"
	"github.com/swapjoy/releasepilot/internal/release"
	"github.com/swapjoy/releasepilot/internal/store"
	"github.com/swapjoy/releasepilot/internal/store/storetest"
)

const ascSecret = "asc-webhook-secret-7f3a"

// recordingWaker remembers what it was asked to wake.
type recordingWaker struct {
	mu   sync.Mutex
	ids  []string
	lane string // woken when asked for "upload-1"
	err  error
}

func (w *recordingWaker) Wake(_ context.Context, _ string, ids ...string) ([]string, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.ids = append(w.ids, ids...)
	if w.err != nil {
		return nil, w.err
	}
	for _, id := range ids {
		if id == "upload-1" {
			return []string{w.lane}, nil
		}
	}
	return nil, nil
}

func (w *recordingWaker) asked() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.ids...)
}

func ascHandler(h *httpapi.AppStoreWebhook) http.Handler {
	s := httpapi.New(httpapi.Deps{})
	s.Handle("POST /webhooks/appstoreconnect", httpapi.RoleNone, h)
	return s.Handler()
}

func sendASC(t *testing.T, h http.Handler, body, signature string) (int, string) {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/webhooks/appstoreconnect", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if signature != "" {
		req.Header.Set("X-Apple-Signature", signature)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Code, rec.Body.String()
}

const buildUploadEvent = `{"data":{"type":"buildUploadStateUpdated","id":"evt-1","version":1,` +
	`"attributes":{"oldState":"PROCESSING","newState":"COMPLETE"},` +
	`"relationships":{"instance":{"data":{"type":"buildUploads","id":"upload-1"},` +
	`"links":{"self":"https://api.appstoreconnect.apple.com/v1/buildUploads/upload-1"}}}}}`

func TestAppStoreWebhookSignature(t *testing.T) {
	t.Parallel()
	good := httpapi.SignAppStore([]byte(ascSecret), []byte(buildUploadEvent))
	tests := []struct {
		name      string
		body      string
		signature string
		code      int
		woken     bool
	}{
		{"good", buildUploadEvent, good, http.StatusOK, true},
		{"upper case algorithm", buildUploadEvent, "HMACSHA256=" + strings.TrimPrefix(good, "hmacsha256="), http.StatusOK, true},
		{"missing", buildUploadEvent, "", http.StatusUnauthorized, false},
		{"wrong secret", buildUploadEvent, httpapi.SignAppStore([]byte("other"), []byte(buildUploadEvent)), http.StatusUnauthorized, false},
		{"other body", buildUploadEvent + " ", good, http.StatusUnauthorized, false},
		{"bare hex", buildUploadEvent, strings.TrimPrefix(good, "hmacsha256="), http.StatusUnauthorized, false},
		{"sha1", buildUploadEvent, "sha1=" + strings.Repeat("a", 40), http.StatusUnauthorized, false},
		{"not hex", buildUploadEvent, "hmacsha256=" + strings.Repeat("z", 64), http.StatusUnauthorized, false},
		{"short", buildUploadEvent, good[:len(good)-2], http.StatusUnauthorized, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			wk := &recordingWaker{lane: "lane-1"}
			code, body := sendASC(t, ascHandler(&httpapi.AppStoreWebhook{Secret: []byte(ascSecret), Lanes: wk}), tt.body, tt.signature)
			require.Equal(t, tt.code, code, body)
			require.NotContains(t, body, ascSecret)
			if tt.woken {
				require.Equal(t, []string{"upload-1"}, wk.asked())
				require.JSONEq(t, `{"event":"BUILD_UPLOAD_STATE_UPDATED","instance":"upload-1","lanes":["lane-1"]}`, body)
			} else {
				require.Empty(t, wk.asked(), "nothing happens without a valid signature")
			}
		})
	}
}

func TestAppStoreWebhookEvents(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		body  string
		code  int
		asked []string
	}{
		{"beta state", `{"data":{"type":"buildBetaDetailExternalBuildStateUpdated","id":"e","version":1,"attributes":{"newExternalBuildState":"BETA_APPROVED"},"relationships":{"instance":{"data":{"type":"buildBetaDetails","id":"build-9"}}}}}`,
			http.StatusNoContent, []string{"build-9"}},
		{"version state", `{"data":{"type":"appStoreVersionAppVersionStateUpdated","id":"e","version":1,"attributes":{"oldValue":"IN_REVIEW","newValue":"PENDING_DEVELOPER_RELEASE"},"relationships":{"instance":{"data":{"type":"appStoreVersions","id":"ver-3"}}}}}`,
			http.StatusNoContent, []string{"ver-3"}},
		{"enum spelling", `{"data":{"type":"BUILD_UPLOAD_STATE_UPDATED","id":"e","relationships":{"instance":{"data":{"type":"buildUploads","id":"upload-1"}}}}}`,
			http.StatusOK, []string{"upload-1"}},
		{"ping", `{"data":{"type":"webhookPingCreated","id":"ping-1","version":1}}`, http.StatusNoContent, nil},
		{"irrelevant", `{"data":{"type":"betaFeedbackCrashSubmissionCreated","id":"e","version":1,"relationships":{"instance":{"data":{"type":"betaFeedbackCrashSubmissions","id":"c1"}}}}}`,
			http.StatusNoContent, nil},
		{"unknown", `{"data":{"type":"somethingNew","id":"e"}}`, http.StatusNoContent, nil},
		{"no instance", `{"data":{"type":"buildUploadStateUpdated","id":"e","version":1}}`, http.StatusNoContent, nil},
		{"wrong instance type", `{"data":{"type":"buildUploadStateUpdated","id":"e","relationships":{"instance":{"data":{"type":"apps","id":"x"}}}}}`,
			http.StatusBadRequest, nil},
		{"not json", `{"data":`, http.StatusBadRequest, nil},
		{"no data", `{"meta":{}}`, http.StatusBadRequest, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			wk := &recordingWaker{lane: "lane-1"}
			h := ascHandler(&httpapi.AppStoreWebhook{Secret: []byte(ascSecret), Lanes: wk})
			code, body := sendASC(t, h, tt.body, httpapi.SignAppStore([]byte(ascSecret), []byte(tt.body)))
			require.Equal(t, tt.code, code, body)
			require.Equal(t, tt.asked, wk.asked())
		})
	}
}

func TestAppStoreWebhookLimitsAndFailures(t *testing.T) {
	t.Parallel()
	big := `{"data":{"type":"buildUploadStateUpdated","pad":"` + strings.Repeat("x", httpapi.MaxAppStorePayload) + `"}}`
	wk := &recordingWaker{}
	h := ascHandler(&httpapi.AppStoreWebhook{Secret: []byte(ascSecret), Lanes: wk})
	code, _ := sendASC(t, h, big, httpapi.SignAppStore([]byte(ascSecret), []byte(big)))
	require.Equal(t, http.StatusRequestEntityTooLarge, code)

	// No secret: as if the route did not exist.
	code, _ = sendASC(t, ascHandler(&httpapi.AppStoreWebhook{Lanes: wk}), buildUploadEvent, httpapi.SignAppStore(nil, []byte(buildUploadEvent)))
	require.Equal(t, http.StatusNotFound, code)
	require.Empty(t, wk.asked())

	// The jobs cannot be reached: 503, so App Store Connect may redeliver.
	failing := &recordingWaker{err: errors.New("database is locked")}
	code, body := sendASC(t, ascHandler(&httpapi.AppStoreWebhook{Secret: []byte(ascSecret), Lanes: failing}), buildUploadEvent,
		httpapi.SignAppStore([]byte(ascSecret), []byte(buildUploadEvent)))
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.NotContains(t, body, "database is locked")
}

// TestAppStoreWebhookWakesLaneJob: a signed build upload event makes the
// snoozed ios_lane job of the lane waiting on that upload available now; a
// badly signed one leaves it scheduled.
func TestAppStoreWebhookWakesLaneJob(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := storetest.Open(t, store.SQLite)
	st := store.New(db)
	now := time.Date(2026, 11, 25, 18, 0, 0, 0, time.UTC)
	require.NoError(t, st.UpsertApp(ctx, release.App{Name: "acme", Repository: repoName}, now))
	rel, _, err := st.CreateRelease(ctx, release.Release{App: "acme", Tag: "v1.4.0", Version: "1.4.0", CreatedAt: now})
	require.NoError(t, err)
	ln, err := st.CreateLane(ctx, release.Lane{ReleaseID: rel.ID, Platform: release.IOS, Kind: release.KindStore,
		Plan: release.Plan{Steps: []release.Step{{SetPercent: release.Pct(100)}}}}, now)
	require.NoError(t, err)
	require.NoError(t, st.SetLaneData(ctx, ln.ID, map[string]any{"bundle_id": "com.acme.mobile", "version": "1.4.0", "upload_id": "upload-1",
		"step": "app", "waiting": "processing"}, now))

	runner, err := jobs.New(jobs.Config{DB: db, Register: []func(*river.Workers){func(w *river.Workers) {
		river.AddWorker(w, &ioslane.Worker{})
	}}})
	require.NoError(t, err)
	res, err := runner.Client.Insert(ctx, lane.IOSArgs{LaneID: ln.ID}, &river.InsertOpts{ScheduledAt: time.Now().Add(time.Hour)})
	require.NoError(t, err)
	h := ascHandler(&httpapi.AppStoreWebhook{Secret: []byte(ascSecret),
		Lanes: &ioslane.Waker{Store: st, Client: func() *river.Client[*sql.Tx] { return runner.Client }}})
	state := func() rivertype.JobState {
		j, err := runner.Client.JobGet(ctx, res.Job.ID)
		require.NoError(t, err)
		return j.State
	}

	code, _ := sendASC(t, h, buildUploadEvent, httpapi.SignAppStore([]byte("guess"), []byte(buildUploadEvent)))
	require.Equal(t, http.StatusUnauthorized, code)
	require.Equal(t, rivertype.JobStateScheduled, state())

	code, body := sendASC(t, h, buildUploadEvent, httpapi.SignAppStore([]byte(ascSecret), []byte(buildUploadEvent)))
	require.Equal(t, http.StatusOK, code, body)
	require.Contains(t, body, ln.ID)
	require.Equal(t, rivertype.JobStateAvailable, state())

	// An event about another upload wakes nothing.
	other := bytes.ReplaceAll([]byte(buildUploadEvent), []byte("upload-1"), []byte("upload-2"))
	code, _ = sendASC(t, h, string(other), httpapi.SignAppStore([]byte(ascSecret), other))
	require.Equal(t, http.StatusNoContent, code)
}
