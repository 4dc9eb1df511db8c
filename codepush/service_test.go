package codepush

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

type testBundle struct {
	svc   *Service
	store *MemStore
	blobs DirBlobs
	gate  *recordingGate
	ctx   context.Context
}

type gateCall struct{ app, dep, rng, commit string }

type recordingGate struct {
	mu     sync.Mutex
	calls  []gateCall
	refuse error
}

func (g *recordingGate) CheckRelease(ctx context.Context, app, dep, rng, commit string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.calls = append(g.calls, gateCall{app, dep, rng, commit})
	return g.refuse
}

func setup(t *testing.T) *testBundle {
	t.Helper()
	tb := &testBundle{store: &MemStore{}, blobs: DirBlobs{Dir: t.TempDir()}, gate: &recordingGate{}}
	tb.ctx = WithActor(context.Background(), Actor{Name: "ana@example.com"})
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	svc, err := New(tb.ctx, Config{Store: tb.store, Blobs: tb.blobs, Gate: tb.gate, Now: func() time.Time { return now }, PublicURL: "https://ota.example.com/"})
	require.NoError(t, err)
	tb.svc = svc
	_, err = svc.CreateApp(tb.ctx, "Swap-iOS", false)
	require.NoError(t, err)
	return tb
}

func (tb *testBundle) key(t *testing.T, dep string) string {
	t.Helper()
	a, err := tb.svc.App(tb.ctx, "Swap-iOS")
	require.NoError(t, err)
	for _, d := range a.Deployments {
		if d.Name == dep {
			return d.Key
		}
	}
	t.Fatalf("no deployment %s", dep)
	return ""
}

func (tb *testBundle) release(t *testing.T, dep, rng, content string, mods ...func(*ReleaseInput)) Release {
	t.Helper()
	in := ReleaseInput{App: "Swap-iOS", Deployment: dep, AppVersion: rng, Package: strings.NewReader(content), Commit: "c0ffee"}
	for _, m := range mods {
		m(&in)
	}
	r, err := tb.svc.Release(tb.ctx, in)
	require.NoError(t, err)
	return r
}

func zipOf(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for name, content := range files {
		w, err := zw.Create(name)
		require.NoError(t, err)
		_, err = io.WriteString(w, content)
		require.NoError(t, err)
	}
	require.NoError(t, zw.Close())
	return buf.Bytes()
}

func sha(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

func TestPackageHashZipManifest(t *testing.T) {
	t.Parallel()
	z := zipOf(t, map[string]string{
		"CodePush/main.jsbundle":    "bundle",
		"CodePush/assets/logo.png":  "png",
		"CodePush/":                 "",
		"CodePush/.DS_Store":        "junk",
		"__MACOSX/CodePush/._x":     "junk",
		"CodePush/.codepushrelease": "sig",
	})
	got, err := PackageHash(bytes.NewReader(z), int64(len(z)))
	require.NoError(t, err)
	manifest := `["CodePush/assets/logo.png:` + sha("png") + `","CodePush/main.jsbundle:` + sha("bundle") + `"]`
	require.Equal(t, sha(manifest), got)

	single, err := PackageHash(strings.NewReader("just a bundle"), 13)
	require.NoError(t, err)
	require.Equal(t, sha("just a bundle"), single)
}

func TestCreateAppDefaults(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	a, err := tb.svc.App(tb.ctx, "Swap-iOS")
	require.NoError(t, err)
	require.Len(t, a.Deployments, 2)
	require.Equal(t, Staging, a.Deployments[0].Name)
	require.Equal(t, Production, a.Deployments[1].Name)
	for _, d := range a.Deployments {
		require.True(t, validKey(d.Key), d.Key)
	}
	_, err = tb.svc.CreateApp(tb.ctx, "Swap-iOS", false)
	require.ErrorIs(t, err, ErrConflict)
	_, err = tb.svc.CreateApp(tb.ctx, "", false)
	require.ErrorIs(t, err, ErrInvalid)
}

func TestReleaseRecordsEverything(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	z := zipOf(t, map[string]string{"CodePush/main.jsbundle": "v1 bundle"})
	r := tb.release(t, Staging, "~1.4.0", string(z), func(in *ReleaseInput) { in.Description = "Fix login"; in.Mandatory = true })
	require.Equal(t, "v1", r.Label)
	require.Equal(t, sha(`["CodePush/main.jsbundle:`+sha("v1 bundle")+`"]`), r.PackageHash)
	require.Equal(t, int64(len(z)), r.Size)
	require.Equal(t, MethodUpload, r.Method)
	require.Equal(t, "ana@example.com", r.ReleasedBy)
	require.Equal(t, 100, r.Rollout)
	require.Equal(t, []gateCall{{"Swap-iOS", Staging, "~1.4.0", "c0ffee"}}, tb.gate.calls)

	rc, err := tb.blobs.Open(tb.ctx, r.BlobKey)
	require.NoError(t, err)
	b, err := io.ReadAll(rc)
	require.NoError(t, err)
	require.Equal(t, z, b)

	info, err := tb.svc.CheckUpdate(UpdateRequest{DeploymentKey: tb.key(t, Staging), AppVersion: "1.4.2"})
	require.NoError(t, err)
	require.True(t, info.IsAvailable)
	require.True(t, info.IsMandatory)
	require.Equal(t, "v1", info.Label)
}

func TestReleaseValidation(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	for _, tc := range []struct {
		in    ReleaseInput
		field string
	}{
		{ReleaseInput{App: "Swap-iOS", Deployment: Staging, AppVersion: "", Package: strings.NewReader("x")}, "appVersion"},
		{ReleaseInput{App: "Swap-iOS", Deployment: Staging, AppVersion: "1.x.3", Package: strings.NewReader("x")}, "appVersion"},
		{ReleaseInput{App: "Swap-iOS", Deployment: Staging, AppVersion: "1.0.0", Rollout: 101, Package: strings.NewReader("x")}, "rollout"},
		{ReleaseInput{App: "Swap-iOS", Deployment: Staging, AppVersion: "1.0.0", Rollout: -1, Package: strings.NewReader("x")}, "rollout"},
		{ReleaseInput{App: "Swap-iOS", Deployment: Staging, AppVersion: "1.0.0"}, "package"},
		{ReleaseInput{App: "Swap-iOS", Deployment: Staging, AppVersion: "1.0.0", Package: strings.NewReader("")}, "package"},
		{ReleaseInput{App: "Swap-iOS", Deployment: Staging, AppVersion: "1.0.0", Description: strings.Repeat("é", 10001), Package: strings.NewReader("x")}, "description"},
		{ReleaseInput{App: "Swap-iOS", Deployment: Staging, AppVersion: "1.0.0", Package: bytes.NewReader([]byte("PK\x03\x04broken"))}, "package"},
	} {
		_, err := tb.svc.Release(tb.ctx, tc.in)
		var e *Error
		require.ErrorAs(t, err, &e)
		require.Equal(t, KindInvalid, e.Kind)
		require.Equal(t, tc.field, e.Field)
	}
	_, err := tb.svc.Release(tb.ctx, ReleaseInput{App: "Swap-iOS", Deployment: "Beta", AppVersion: "1.0.0", Package: strings.NewReader("x")})
	require.ErrorIs(t, err, ErrNotFound)
	_, err = tb.svc.Release(tb.ctx, ReleaseInput{App: "Nope", Deployment: Staging, AppVersion: "1.0.0", Package: strings.NewReader("x")})
	require.ErrorIs(t, err, ErrNotFound)
	h, err := tb.svc.History(tb.ctx, "Swap-iOS", Staging)
	require.NoError(t, err)
	require.Empty(t, h)
}

func TestReleaseRefusedDuringUnfinishedRollout(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	tb.release(t, Staging, "1.0.0", "one", func(in *ReleaseInput) { in.Rollout = 20 })
	_, err := tb.svc.Release(tb.ctx, ReleaseInput{App: "Swap-iOS", Deployment: Staging, AppVersion: "1.0.0", Package: strings.NewReader("two")})
	require.ErrorIs(t, err, ErrConflict)
	require.Contains(t, err.Error(), "v1 is rolled out to 20%")

	// Disabling the unfinished release allows the next one, which finishes it.
	disable := true
	_, changed, err := tb.svc.Patch(tb.ctx, "Swap-iOS", Staging, PackageInfo{Disabled: &disable})
	require.NoError(t, err)
	require.True(t, changed)
	tb.release(t, Staging, "1.0.0", "two")
	h, err := tb.svc.History(tb.ctx, "Swap-iOS", Staging)
	require.NoError(t, err)
	require.Equal(t, 100, h[0].Rollout)
	require.Equal(t, "v2", h[1].Label)

	// Identical content for the same version is a conflict.
	_, err = tb.svc.Release(tb.ctx, ReleaseInput{App: "Swap-iOS", Deployment: Staging, AppVersion: "1.0.0", Package: strings.NewReader("two")})
	require.ErrorIs(t, err, ErrConflict)
	require.Contains(t, err.Error(), "identical")
}

func TestPatchRules(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	tb.release(t, Staging, "1.0.0", "one", func(in *ReleaseInput) { in.Rollout = 20 })
	p := func(n int) *int { return &n }
	_, _, err := tb.svc.Patch(tb.ctx, "Swap-iOS", Staging, PackageInfo{Rollout: p(10)})
	require.ErrorIs(t, err, ErrConflict)
	require.Contains(t, err.Error(), `Rollout value must be greater than "20", the existing value.`)
	_, _, err = tb.svc.Patch(tb.ctx, "Swap-iOS", Staging, PackageInfo{Rollout: p(20)})
	require.ErrorIs(t, err, ErrConflict)
	r, changed, err := tb.svc.Patch(tb.ctx, "Swap-iOS", Staging, PackageInfo{Rollout: p(50)})
	require.NoError(t, err)
	require.True(t, changed)
	require.Equal(t, 50, r.Rollout)
	_, _, err = tb.svc.Patch(tb.ctx, "Swap-iOS", Staging, PackageInfo{Rollout: p(100)})
	require.NoError(t, err)
	_, _, err = tb.svc.Patch(tb.ctx, "Swap-iOS", Staging, PackageInfo{Rollout: p(100)})
	require.ErrorIs(t, err, ErrConflict)
	require.Contains(t, err.Error(), "Cannot update rollout value for a completed rollout release.")

	desc, rng, mand := "new words", "^1.0.0", true
	r, changed, err = tb.svc.Patch(tb.ctx, "Swap-iOS", Staging, PackageInfo{Label: "v1", Description: &desc, AppVersion: &rng, Mandatory: &mand})
	require.NoError(t, err)
	require.True(t, changed)
	require.Equal(t, "^1.0.0", r.AppVersion)
	require.True(t, r.Mandatory)
	require.Equal(t, gateCall{"Swap-iOS", Staging, "^1.0.0", "c0ffee"}, tb.gate.calls[len(tb.gate.calls)-1])
	_, changed, err = tb.svc.Patch(tb.ctx, "Swap-iOS", Staging, PackageInfo{Description: &desc})
	require.NoError(t, err)
	require.False(t, changed)
	_, _, err = tb.svc.Patch(tb.ctx, "Swap-iOS", Staging, PackageInfo{Label: "v9", Description: &desc})
	require.ErrorIs(t, err, ErrNotFound)
	_, _, err = tb.svc.Patch(tb.ctx, "Swap-iOS", Staging, PackageInfo{Label: "9"})
	require.ErrorIs(t, err, ErrInvalid)
	bad := "not a range"
	_, _, err = tb.svc.Patch(tb.ctx, "Swap-iOS", Staging, PackageInfo{AppVersion: &bad})
	require.ErrorIs(t, err, ErrInvalid)
	require.Contains(t, err.Error(), `appVersion "not a range"`)
}

func TestPromote(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	src := tb.release(t, Staging, "1.0.0", "one", func(in *ReleaseInput) { in.Description = "staging notes"; in.Rollout = 30 })
	p := func(n int) *int { return &n }
	r, err := tb.svc.Promote(tb.ctx, "Swap-iOS", Staging, Production, PackageInfo{Rollout: p(10)})
	require.NoError(t, err)
	require.Equal(t, "v1", r.Label)
	require.Equal(t, MethodPromote, r.Method)
	require.Equal(t, "v1", r.OriginalLabel)
	require.Equal(t, Staging, r.OriginalDeployment)
	require.Equal(t, 10, r.Rollout) // its own rollout, not Staging's 30
	require.Equal(t, src.PackageHash, r.PackageHash)
	require.Equal(t, "staging notes", r.Description)

	_, err = tb.svc.Promote(tb.ctx, "Swap-iOS", Staging, Production, PackageInfo{})
	require.ErrorIs(t, err, ErrConflict) // Production has an unfinished rollout
	_, _, err = tb.svc.Patch(tb.ctx, "Swap-iOS", Production, PackageInfo{Rollout: p(100)})
	require.NoError(t, err)
	_, err = tb.svc.Promote(tb.ctx, "Swap-iOS", Staging, Production, PackageInfo{})
	require.ErrorIs(t, err, ErrConflict)
	require.Contains(t, err.Error(), "identical")

	tb.gate.refuse = errors.New("ios/Podfile.lock differs from the binary")
	_, _, err = tb.svc.Patch(tb.ctx, "Swap-iOS", Staging, PackageInfo{Rollout: p(100)})
	require.NoError(t, err)
	_, err = tb.svc.Release(tb.ctx, ReleaseInput{App: "Swap-iOS", Deployment: Staging, AppVersion: "1.0.0", Package: strings.NewReader("two")})
	require.ErrorIs(t, err, ErrConflict)
	require.Contains(t, err.Error(), "Podfile.lock")
	h, err := tb.svc.History(tb.ctx, "Swap-iOS", Staging)
	require.NoError(t, err)
	require.Len(t, h, 1, "a refused release is not persisted")
}

func TestRollback(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	_, err := tb.svc.Rollback(tb.ctx, "Swap-iOS", Production, "")
	require.ErrorIs(t, err, ErrNotFound)
	v1 := tb.release(t, Production, "1.0.0", "one")
	_, err = tb.svc.Rollback(tb.ctx, "Swap-iOS", Production, "")
	require.ErrorIs(t, err, ErrConflict)
	tb.release(t, Production, "1.0.0", "two")
	r, err := tb.svc.Rollback(tb.ctx, "Swap-iOS", Production, "")
	require.NoError(t, err)
	require.Equal(t, "v3", r.Label)
	require.Equal(t, MethodRollback, r.Method)
	require.Equal(t, "v1", r.OriginalLabel)
	require.Equal(t, v1.PackageHash, r.PackageHash)
	require.Equal(t, v1.BlobKey, r.BlobKey)

	key := tb.key(t, Production)
	info, err := tb.svc.CheckUpdate(UpdateRequest{DeploymentKey: key, AppVersion: "1.0.0", Label: "v2", PackageHash: sha("two")})
	require.NoError(t, err)
	require.Equal(t, "v3", info.Label)
	info, err = tb.svc.CheckUpdate(UpdateRequest{DeploymentKey: key, AppVersion: "1.0.0", Label: "v1", PackageHash: v1.PackageHash})
	require.NoError(t, err)
	require.False(t, info.IsAvailable)

	_, err = tb.svc.Rollback(tb.ctx, "Swap-iOS", Production, "v3")
	require.ErrorIs(t, err, ErrConflict)
	tb.release(t, Production, "2.0.0", "three")
	_, err = tb.svc.Rollback(tb.ctx, "Swap-iOS", Production, "v1")
	require.ErrorIs(t, err, ErrConflict)
	require.Contains(t, err.Error(), "Cannot perform rollback to a different app version.")
}

func TestInvalidateSeesOtherReplicas(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	other, err := New(tb.ctx, Config{Store: tb.store, Blobs: tb.blobs})
	require.NoError(t, err)
	key := tb.key(t, Staging)
	_, err = other.Release(tb.ctx, ReleaseInput{App: "Swap-iOS", Deployment: Staging, AppVersion: "1.0.0", Package: strings.NewReader("x")})
	require.NoError(t, err)

	info, err := tb.svc.CheckUpdate(UpdateRequest{DeploymentKey: key, AppVersion: "1.0.0"})
	require.NoError(t, err)
	require.False(t, info.IsAvailable, "the view is served from memory until invalidated")
	require.NoError(t, tb.svc.Invalidate(tb.ctx, key))
	info, err = tb.svc.CheckUpdate(UpdateRequest{DeploymentKey: key, AppVersion: "1.0.0"})
	require.NoError(t, err)
	require.True(t, info.IsAvailable)

	_, err = other.AddDeployment(tb.ctx, "Swap-iOS", "Beta", "beta-key-0123456789")
	require.NoError(t, err)
	_, err = tb.svc.CheckUpdate(UpdateRequest{DeploymentKey: "beta-key-0123456789", AppVersion: "1.0.0"})
	require.ErrorIs(t, err, ErrNotFound)
	require.NoError(t, tb.svc.Reload(tb.ctx))
	_, err = tb.svc.CheckUpdate(UpdateRequest{DeploymentKey: "beta-key-0123456789", AppVersion: "1.0.0"})
	require.NoError(t, err)
}

func TestDirBlobsDetectsCorruption(t *testing.T) {
	t.Parallel()
	b := DirBlobs{Dir: t.TempDir()}
	key, hash, n, err := b.Put(context.Background(), strings.NewReader("content"))
	require.NoError(t, err)
	require.Equal(t, sha("content"), key)
	require.Equal(t, key, hash)
	require.Equal(t, int64(7), n)
	require.NoError(t, writeFile(b.path(key), "tampered"))
	rc, err := b.Open(context.Background(), key)
	require.NoError(t, err)
	_, err = io.ReadAll(rc)
	require.ErrorContains(t, err, "corrupt")
	_, err = b.Open(context.Background(), sha("missing"))
	require.ErrorIs(t, err, ErrNotFound)
	_, err = b.Open(context.Background(), "../../etc/passwd")
	require.ErrorIs(t, err, ErrNotFound)
}

// offeredTo counts the devices of 100 on appVersion that an update check
// offers label.
func (tb *testBundle) offeredTo(t *testing.T, dep, appVersion, label string) int {
	t.Helper()
	n := 0
	for i := 0; i < 100; i++ {
		info, err := tb.svc.CheckUpdate(UpdateRequest{DeploymentKey: tb.key(t, dep), AppVersion: appVersion, ClientUniqueID: "device-" + strconv.Itoa(i)})
		require.NoError(t, err)
		if info.IsAvailable && info.Label == label {
			n++
		}
	}
	return n
}

func TestRollbackWithOnlyDisabledEarlierReleasesServesNothingNew(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	// v1 was halted (disabled) at 10 %; v2 is rolling out to 10 %.
	tb.release(t, Production, "1.0.0", "one", func(in *ReleaseInput) { in.Rollout = 10; in.Disabled = true })
	tb.release(t, Production, "1.0.0", "two", func(in *ReleaseInput) { in.Rollout = 10 })
	require.NotZero(t, tb.offeredTo(t, Production, "1.0.0", "v2"))

	_, err := tb.svc.Rollback(tb.ctx, "Swap-iOS", Production, "")
	var e *Error
	require.ErrorAs(t, err, &e)
	require.Equal(t, KindConflict, e.Kind)
	require.Equal(t, "label", e.Field)
	require.Contains(t, e.Message, "no enabled release before v2")
	h, err := tb.svc.History(tb.ctx, "Swap-iOS", Production)
	require.NoError(t, err)
	require.Len(t, h, 2, "no disabled copy is appended")
	require.Equal(t, 10, h[1].Rollout, "the bad release was not taken to 100 %")

	// Naming the disabled release is refused too, naming the field.
	_, err = tb.svc.Rollback(tb.ctx, "Swap-iOS", Production, "v1")
	require.ErrorAs(t, err, &e)
	require.Equal(t, KindConflict, e.Kind)
	require.Equal(t, "label", e.Field)
	require.Equal(t, "v1", e.Value)
	require.Contains(t, e.Message, "v1 is disabled")
	h, err = tb.svc.History(tb.ctx, "Swap-iOS", Production)
	require.NoError(t, err)
	require.Len(t, h, 2)
	require.False(t, h[1].Disabled)
}

func TestRollbackSkipsDisabledReleasesAndStopsServingTheBadOne(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	v1 := tb.release(t, Production, "1.0.0", "one", func(in *ReleaseInput) { in.Commit = "c1" })
	tb.release(t, Production, "1.0.0", "two", func(in *ReleaseInput) { in.Rollout = 10; in.Disabled = true })
	tb.release(t, Production, "1.0.0", "three", func(in *ReleaseInput) { in.Rollout = 10 })
	tb.gate.calls = nil

	r, err := tb.svc.Rollback(tb.ctx, "Swap-iOS", Production, "")
	require.NoError(t, err)
	require.Equal(t, "v4", r.Label)
	require.Equal(t, "v1", r.OriginalLabel, "the newest enabled release before the latest, not the disabled v2")
	require.Equal(t, v1.PackageHash, r.PackageHash)
	require.False(t, r.Disabled)
	require.Equal(t, []gateCall{{"Swap-iOS", Production, "1.0.0", "c1"}}, tb.gate.calls, "the target passes the gate")

	h, err := tb.svc.History(tb.ctx, "Swap-iOS", Production)
	require.NoError(t, err)
	require.Len(t, h, 4)
	require.True(t, h[2].Disabled, "the release rolled back from is disabled")
	require.False(t, h[3].Disabled)
	require.Zero(t, tb.offeredTo(t, Production, "1.0.0", "v3"))
	require.Equal(t, 100, tb.offeredTo(t, Production, "1.0.0", "v4"))

	// Disabling the rollback copy later must not bring v3 back.
	disable := true
	_, _, err = tb.svc.Patch(tb.ctx, "Swap-iOS", Production, PackageInfo{Disabled: &disable})
	require.NoError(t, err)
	require.Zero(t, tb.offeredTo(t, Production, "1.0.0", "v3"))
	require.Equal(t, 100, tb.offeredTo(t, Production, "1.0.0", "v1"))
}

func TestRollbackAndReenableAreGated(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	tb.release(t, Production, "1.0.0", "one", func(in *ReleaseInput) { in.Commit = "c1" })
	tb.release(t, Production, "1.0.0", "two", func(in *ReleaseInput) { in.Commit = "c2"; in.Rollout = 10 })
	tb.gate.calls = nil
	tb.gate.refuse = &Error{Kind: KindConflict, Field: "appVersion", Value: "1.0.0", Message: "native gate: ios/Podfile.lock differs"}

	_, err := tb.svc.Rollback(tb.ctx, "Swap-iOS", Production, "")
	var e *Error
	require.ErrorAs(t, err, &e)
	require.Equal(t, KindConflict, e.Kind)
	require.Equal(t, "appVersion", e.Field)
	require.Contains(t, e.Message, "rollback of v2 to v1 blocked by the release gate")
	require.Contains(t, e.Message, "disable it instead")
	require.Contains(t, e.Message, "Podfile.lock")
	require.Equal(t, []gateCall{{"Swap-iOS", Production, "1.0.0", "c1"}}, tb.gate.calls)
	h, err := tb.svc.History(tb.ctx, "Swap-iOS", Production)
	require.NoError(t, err)
	require.Len(t, h, 2, "a refused rollback appends nothing")
	require.False(t, h[1].Disabled)

	// Disabling is never gated; enabling again is.
	disable, enable := true, false
	_, changed, err := tb.svc.Patch(tb.ctx, "Swap-iOS", Production, PackageInfo{Disabled: &disable})
	require.NoError(t, err)
	require.True(t, changed)
	tb.gate.calls = nil
	_, _, err = tb.svc.Patch(tb.ctx, "Swap-iOS", Production, PackageInfo{Disabled: &enable})
	require.ErrorAs(t, err, &e)
	require.Equal(t, KindConflict, e.Kind)
	require.Contains(t, e.Message, "re-enabling v2 refused")
	require.Equal(t, []gateCall{{"Swap-iOS", Production, "1.0.0", "c2"}}, tb.gate.calls)
	h, err = tb.svc.History(tb.ctx, "Swap-iOS", Production)
	require.NoError(t, err)
	require.True(t, h[1].Disabled)

	tb.gate.refuse = nil
	r, changed, err := tb.svc.Patch(tb.ctx, "Swap-iOS", Production, PackageInfo{Disabled: &enable})
	require.NoError(t, err)
	require.True(t, changed)
	require.False(t, r.Disabled)
}

// racingStore runs race once, right after the first history read that
// follows arming it: another replica acting between a Patch's read and
// its write.
type racingStore struct {
	Store
	mu   sync.Mutex
	race func()
}

func (s *racingStore) Releases(ctx context.Context, key string) ([]Release, error) {
	h, err := s.Store.Releases(ctx, key)
	s.mu.Lock()
	race := s.race
	s.race = nil
	s.mu.Unlock()
	if race != nil {
		race()
	}
	return h, err
}

func TestPatchDoesNotUndoAnotherReplicasChange(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	tb.release(t, Production, "1.0.0", "one", func(in *ReleaseInput) { in.Rollout = 20 })
	rs := &racingStore{Store: tb.store}
	a, err := New(tb.ctx, Config{Store: rs, Blobs: tb.blobs})
	require.NoError(t, err)
	b := tb.svc // the other replica, on the same store

	rs.race = func() {
		// Replica B disables v1 and releases v2, which completes v1's rollout.
		disable := true
		_, _, err := b.Patch(tb.ctx, "Swap-iOS", Production, PackageInfo{Disabled: &disable})
		require.NoError(t, err)
		tb.release(t, Production, "1.0.0", "two")
	}
	desc := "new notes"
	_, _, err = a.Patch(tb.ctx, "Swap-iOS", Production, PackageInfo{Label: "v1", Description: &desc})
	require.ErrorIs(t, err, ErrConflict)
	require.Contains(t, err.Error(), "changed by someone else")

	h, err := tb.svc.History(tb.ctx, "Swap-iOS", Production)
	require.NoError(t, err)
	require.True(t, h[0].Disabled, "B's disable stands")
	require.Equal(t, 100, h[0].Rollout, "the append's rollout completion stands")
	require.Equal(t, "", h[0].Description)

	// Retried on fresh data, the patch applies.
	_, changed, err := a.Patch(tb.ctx, "Swap-iOS", Production, PackageInfo{Label: "v1", Description: &desc})
	require.NoError(t, err)
	require.True(t, changed)
}
