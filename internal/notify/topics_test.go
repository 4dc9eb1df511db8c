package notify_test

import (
	"context"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/swapjoy/releasepilot/internal/notify"
	"github.com/swapjoy/releasepilot/internal/release"
	"github.com/swapjoy/releasepilot/internal/store"
	"github.com/swapjoy/releasepilot/internal/store/storetest"
)

// TestTagAndCancelTopics: the audit events of a moved or deleted tag
// (internal/jobs' tag changes, issue 14) and of a cancelled lane map to
// their own topics, with a message that says what happened to the release.
func TestTagAndCancelTopics(t *testing.T) {
	t.Parallel()
	rel := release.Release{App: "acme", Tag: "v1.4.0"}
	for _, tc := range []struct {
		e           release.Event
		topic, text string
	}{
		{release.Event{Actor: "github", Kind: "tag.moved", Details: map[string]any{"from": "c0ffee1234567890c0ffee1234567890c0ffee12",
			"to": "deadbeef00000000deadbeef00000000deadbeef", "policy": "refuse", "outcome": "this release stays on c0ffee123456; tag a new version to ship deadbeef0000"}},
			notify.TopicTagMoved, "🏷️ acme v1.4.0: tag moved from c0ffee123456 to deadbeef0000 — this release stays on c0ffee123456; tag a new version to ship deadbeef0000"},
		{release.Event{Actor: "github", Kind: "tag.deleted", Details: map[string]any{"outcome": "lanes past their point of no return continue: ios (uploaded to App Store Connect)"}},
			notify.TopicTagDeleted, "🏷️ acme v1.4.0: tag deleted — lanes past their point of no return continue: ios (uploaded to App Store Connect)"},
		{release.Event{Actor: "github", Kind: "lane.cancelled", Details: map[string]any{"platform": "android", "reason": "tag v1.4.0 was deleted before this lane passed its point of no return"}},
			notify.TopicCancelled, "🚫 acme v1.4.0 [android]: cancelled by github — tag v1.4.0 was deleted before this lane passed its point of no return"},
		{release.Event{Actor: "token:alice", Kind: "command.cancel", Details: map[string]any{"platform": "ios", "reason": "wrong build"}},
			notify.TopicCancelled, "🚫 acme v1.4.0 [ios]: cancelled by token:alice — wrong build"},
	} {
		require.Equal(t, tc.topic, notify.Topic(tc.e), tc.e.Kind)
		require.Equal(t, tc.text, notify.Text(tc.e, rel), tc.e.Kind)
		require.Contains(t, notify.DefaultTopics, tc.topic, "sent to targets that name no topics")
	}
}

// TestTagEventsAreDelivered: a target with the default topics is told of a
// moved tag, a deleted one and the lanes they cancelled; one that names
// other topics is not.
func TestTagEventsAreDelivered(t *testing.T) {
	t.Parallel()
	st := store.New(storetest.Open(t, store.SQLite))
	ctx := context.Background()
	require.NoError(t, st.UpsertApp(ctx, release.App{Name: "acme", Repository: "acme/mobile"}, t0))
	rel, _, err := st.CreateRelease(ctx, release.Release{App: "acme", Tag: "v1.4.0", Version: "1.4.0", Commit: "c0ffee", CreatedAt: t0})
	require.NoError(t, err)
	all, some := &sink{}, &sink{}
	allSrv, someSrv := httptest.NewServer(all), httptest.NewServer(some)
	defer allSrv.Close()
	defer someSrv.Close()
	n := &notify.Notifier{Store: st, Targets: []notify.Target{{Kind: "webhook", URL: allSrv.URL}, {Kind: "webhook", URL: someSrv.URL, Topics: []string{"halted"}}}}
	require.NoError(t, n.Pass(ctx))
	for _, e := range []release.Event{
		{Kind: "tag.moved", Details: map[string]any{"from": "c0ffee", "to": "beef01", "outcome": "this release stays on c0ffee"}},
		{Kind: "lane.cancelled", Details: map[string]any{"platform": "android", "reason": "tag v1.4.0 was deleted"}},
		{Kind: "tag.deleted", Details: map[string]any{"outcome": "every lane was cancelled"}},
	} {
		e.At, e.Actor, e.ReleaseID = t0, "github", rel.ID
		_, err := st.AppendEvent(ctx, e)
		require.NoError(t, err)
	}
	require.NoError(t, n.Pass(ctx))
	got := all.got()
	require.Len(t, got, 3)
	require.Equal(t, []any{"tag_moved", "cancelled", "tag_deleted"}, []any{got[0]["topic"], got[1]["topic"], got[2]["topic"]})
	require.Equal(t, "🏷️ acme v1.4.0: tag deleted — every lane was cancelled", got[2]["text"])
	require.Empty(t, some.got())
}
