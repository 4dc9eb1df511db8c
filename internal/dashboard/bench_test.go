package dashboard_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/swapjoy/releasepilot/codepush"
	"github.com/swapjoy/releasepilot/internal/dashboard"
	"github.com/swapjoy/releasepilot/internal/httpapi"
	"github.com/swapjoy/releasepilot/internal/release"
	"github.com/swapjoy/releasepilot/internal/store"
	"github.com/swapjoy/releasepilot/internal/store/storetest"
)

// benchData is a database with 1,000 releases of two apps, each with an
// iOS and an Android lane (2,000 lanes), and 10,000 audit events: 9 for
// every release but the busiest, which has 1,009 (a long-running release
// with many gate holds) and 500 gate measurements per lane in the current
// stage, and an OTA app with 50 releases per deployment.
type benchData struct {
	handler http.Handler
	cookie  *http.Cookie
	busy    string
	page2   string
}

func seedBench(b *testing.B, e store.Engine) *benchData {
	b.Helper()
	ctx := context.Background()
	db := storetest.Open(b, e)
	st := store.New(db)
	for _, a := range []string{"acme", "zeta"} {
		require.NoError(b, st.UpsertApp(ctx, release.App{Name: a, Repository: "acme/" + a}, t0))
	}
	plan := release.StagedPlan(release.DefaultStages, release.Wait{Soak: release.Duration(24 * time.Hour)}, []release.GateRule{{Metric: "crash_rate", Max: 0.01, MinSamples: 1000}})
	var busy string
	var cursor store.ReleaseCursor
	events := 0
	require.NoError(b, st.Tx(ctx, func(tx *store.Store) error {
		for i := range 1000 {
			app, state := "acme", release.ReleaseCompleted
			if i%2 == 1 {
				app, state = "zeta", release.ReleaseActive
			}
			at := t0.Add(time.Duration(i) * time.Hour)
			r, _, err := tx.CreateRelease(ctx, release.Release{App: app, Tag: fmt.Sprintf("v%d.0.0", i), Version: fmt.Sprintf("%d.0.0", i), Commit: "c0ffee", State: state, CreatedAt: at})
			if err != nil {
				return err
			}
			if i == 999 {
				busy = r.ID
			}
			if i == 975 {
				cursor = store.ReleaseCursor{CreatedAt: r.CreatedAt, ID: r.ID}
			}
			for _, p := range release.Platforms {
				l, err := tx.CreateLane(ctx, release.Lane{ReleaseID: r.ID, Platform: p, Kind: release.KindStore, Reason: "native code differs", Plan: plan,
					Status: release.Status{State: release.StateWaiting, StepIndex: 2, Percent: 10, StepStartedAt: at}}, at)
				if err != nil {
					return err
				}
				n := 4
				if i == 999 {
					n = 504
				}
				for j := range n {
					kind, reason := "rollout.hold", fmt.Sprintf("gate crash_rate: %d samples, need 1000", j)
					if j%2 == 0 {
						kind, reason = "rollout.advance", "rolled out to 10%"
					}
					if _, err := tx.AppendEvent(ctx, release.Event{At: at.Add(time.Duration(j) * time.Second), Actor: "system", ReleaseID: r.ID, LaneID: l.ID, Kind: kind,
						Details: map[string]any{"platform": string(p), "state": "waiting", "percent": 10, "reason": reason}}); err != nil {
						return err
					}
					events++
				}
				if i == 999 {
					// Its gate measured every few minutes of the stage:
					// the panel folds them to the newest.
					for j := range 500 {
						m := release.Judge(plan.Rules()[0], release.Reading{Value: 0.004, Samples: int64(10 * j)}, at.Add(time.Duration(j+1)*5*time.Minute))
						m.LaneID, m.Percent = l.ID, 10
						if _, err := tx.RecordMeasurement(ctx, m); err != nil {
							return err
						}
					}
				}
			}
			if _, err := tx.AppendEvent(ctx, release.Event{At: at, Actor: "github", ReleaseID: r.ID, Kind: "release.created", Details: map[string]any{"tag": r.Tag}}); err != nil {
				return err
			}
			events++
		}
		return nil
	}))
	require.Equal(b, 10000, events)

	cp := store.NewCodePush(db)
	for _, p := range []string{"ios", "android"} {
		app := codepush.App{Name: "acme-" + p, CreatedAt: t0, Deployments: []codepush.Deployment{{Name: "Staging", Key: "staging-" + p + "-0123456789"}, {Name: "Production", Key: "production-" + p + "-0123456789"}}}
		require.NoError(b, cp.SaveApp(ctx, app))
		for _, d := range app.Deployments {
			var deltas []codepush.CountDelta
			for i := 1; i <= 50; i++ {
				label := fmt.Sprintf("v%d", i)
				require.NoError(b, cp.AppendRelease(ctx, d.Key, codepush.Release{Label: label, AppVersion: "1.0.0", Rollout: 100, Method: codepush.MethodUpload, PackageHash: label, UploadTime: t0}))
				deltas = append(deltas, codepush.CountDelta{DeploymentKey: d.Key, Label: label, Counts: codepush.Counts{Active: 100, Downloaded: 120, Installed: 110, Failed: 2}})
			}
			require.NoError(b, cp.AddCounts(ctx, deltas))
		}
	}

	api := httpapi.New(httpapi.Deps{Store: st, Now: func() time.Time { return t0.Add(1000 * time.Hour) }})
	creds := httpapi.TokenCredentials{httpapi.NewToken("ops", httpapi.RoleOperator, opSecret)}
	d, err := dashboard.New(dashboard.Deps{Store: st, Commands: api, Credentials: creds, OTA: cp, Now: func() time.Time { return t0.Add(1000 * time.Hour) }})
	require.NoError(b, err)
	d.Register(api)
	b.Cleanup(d.Close)
	secret := "bench-session-secret-0123456789abcdef"
	sum := sha256.Sum256([]byte(secret))
	require.NoError(b, st.CreateSession(ctx, store.Session{IDHash: hex.EncodeToString(sum[:]), Subject: "token:ops", Actor: "token:ops", Role: "operator",
		CreatedAt: t0, ExpiresAt: t0.Add(2000 * time.Hour)}))
	return &benchData{handler: api.Handler(), cookie: &http.Cookie{Name: dashboard.SessionCookie, Value: secret}, busy: busy,
		page2: "/?app=zeta&state=active&before=" + cursor.String()}
}

func (bd *benchData) serve(b *testing.B, path string) {
	b.Helper()
	req := httptest.NewRequest(http.MethodGet, path, nil)
	req.AddCookie(bd.cookie)
	rec := httptest.NewRecorder()
	bd.handler.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		b.Fatalf("GET %s: %d %s", path, rec.Code, rec.Body.String())
	}
}

// BenchmarkPages measures each page's server time, from the request to the
// last byte of HTML, signed-in session check included, with 1,000
// releases and 10,000 events (go test -bench Pages ./internal/dashboard/).
func BenchmarkPages(b *testing.B) {
	for _, e := range storetest.Engines {
		b.Run(string(e), func(b *testing.B) {
			bd := seedBench(b, e)
			for _, p := range []struct{ name, path string }{
				{"releases", "/"},
				{"releases_filtered_page2", bd.page2},
				{"release_busiest", "/releases/" + bd.busy},
				{"release_panels", "/releases/" + bd.busy + "/panels"},
				{"ota", "/ota"},
			} {
				b.Run(p.name, func(b *testing.B) {
					bd.serve(b, p.path)
					b.ResetTimer()
					for b.Loop() {
						bd.serve(b, p.path)
					}
				})
			}
		})
	}
}
