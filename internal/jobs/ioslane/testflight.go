package ioslane

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/swapjoy/releasepilot/appstore"
	"github.com/swapjoy/releasepilot/internal/jobs/lane"
	"github.com/swapjoy/releasepilot/internal/release"
)

func (r *iosRun) whatToTest(ctx context.Context) error {
	if notes := WhatToTest(r.rel.Notes); notes != "" {
		locale := r.app.IOS.Locale
		if locale == "" {
			locale = "en-US"
		}
		// SetWhatToTest reads the localization first: same text, no write.
		_, err := r.x.ASC.SetWhatToTest(ctx, r.data.BuildID, locale, notes)
		if err := ascFailure("set What to Test of "+r.data.label(), err); err != nil {
			return err
		}
	}
	return r.reach(ctx, iosStepWhatToTest)
}

// WhatToTest fits release notes into TestFlight's 4,000 characters: a cut
// ends at a whole line when one ends in the last fifth of the room, else at
// a whole character, and says so with "…". Invalid UTF-8 is replaced.
func WhatToTest(notes string) string {
	notes = strings.TrimSpace(strings.ToValidUTF8(notes, "\uFFFD"))
	if utf8.RuneCountInString(notes) <= appstore.MaxWhatToTest {
		return notes
	}
	room := appstore.MaxWhatToTest - 1 // for "…"
	cut, n := 0, 0
	for i := range notes {
		if n == room {
			cut = i
			break
		}
		n++
	}
	out := notes[:cut]
	if nl := strings.LastIndexByte(out, '\n'); nl >= 0 && utf8.RuneCountInString(out[:nl]) >= room*4/5 {
		out = out[:nl]
	}
	return strings.TrimRight(out, " \t\r\n") + "…"
}

// groupIDs maps configured group names to ids; an unknown name, or a group
// of the wrong kind, fails the lane naming it.
func (r *iosRun) groupIDs(ctx context.Context, key string, names []string, internal bool) ([]string, error) {
	if r.groups == nil {
		gs, err := r.x.ASC.BetaGroups(ctx, r.data.AppID)
		if err := ascFailure("list beta groups", err); err != nil {
			return nil, err
		}
		r.groups = gs
	}
	var ids, known []string
	for _, g := range r.groups {
		known = append(known, fmt.Sprintf("%q", g.Name))
	}
	slices.Sort(known)
	for _, name := range names {
		i := slices.IndexFunc(r.groups, func(g appstore.BetaGroup) bool { return g.Name == name })
		switch {
		case i < 0:
			return nil, lane.Fail("%s: beta group %q does not exist in App Store Connect app %s (it has %s)", key, name, r.data.AppID, strings.Join(known, ", "))
		case r.groups[i].IsInternalGroup != internal:
			kind := "an external"
			if r.groups[i].IsInternalGroup {
				kind = "an internal"
			}
			return nil, lane.Fail("%s: beta group %q is %s group", key, name, kind)
		}
		ids = append(ids, r.groups[i].ID)
	}
	return ids, nil
}

func (r *iosRun) internalGroups(ctx context.Context) error {
	if names := r.app.IOS.InternalGroups; len(names) > 0 {
		ids, err := r.groupIDs(ctx, "ios.internal_groups", names, true)
		if err != nil {
			return err
		}
		// An internal group with access to all builds has this one already,
		// and Apple refuses to add a build to it (422 "Cannot add internal
		// group to a build"): leave it out.
		ids = slices.DeleteFunc(ids, func(id string) bool {
			return slices.ContainsFunc(r.groups, func(g appstore.BetaGroup) bool { return g.ID == id && g.HasAccessToAllBuilds })
		})
		var added []string
		if len(ids) > 0 {
			// AddBuildToGroups reads the build's groups and links only the missing ones.
			added, err = r.x.ASC.AddBuildToGroups(ctx, r.data.BuildID, ids...)
		}
		if errors.Is(err, appstore.ErrInvalid) {
			return r.notReadyForTesting(ctx, "add "+r.data.label()+" to the internal groups", err)
		}
		if err := ascFailure("add "+r.data.label()+" to the internal groups", err); err != nil {
			return err
		}
		if err := r.reach(ctx, iosStepInternal); err != nil {
			return err
		}
		if len(r.app.IOS.ExternalGroups) > 0 {
			return r.progress(ctx, "ios.internal_testing", map[string]any{"groups": names, "added": len(added)})
		}
		return nil
	}
	return r.reach(ctx, iosStepInternal)
}

// notReadyForTesting handles App Store Connect's 422 to a group link: a
// VALID build can still be in TestFlight's own processing or export
// compliance review for a while, which is worth waiting for; anything else
// fails the lane with Apple's answer and the build's TestFlight state.
func (r *iosRun) notReadyForTesting(ctx context.Context, step string, cause error) error {
	bd, err := r.x.ASC.BuildBetaDetail(ctx, r.data.BuildID)
	if err := ascFailure("read the TestFlight state of "+r.data.label(), err); err != nil {
		return err
	}
	switch bd.InternalBuildState {
	case appstore.BetaStateProcessing:
		return r.wait(ctx, "beta_processing", fmt.Sprintf("build %s is still PROCESSING for TestFlight", r.data.label()))
	case appstore.BetaBuildState("IN_EXPORT_COMPLIANCE_REVIEW"):
		return r.wait(ctx, "export_compliance_review", fmt.Sprintf("build %s is in export compliance review", r.data.label()))
	}
	return lane.Fail("%s: %v (TestFlight state %s)", step, cause, bd.InternalBuildState)
}

func (r *iosRun) externalGroups(ctx context.Context) error {
	if names := r.app.IOS.ExternalGroups; len(names) > 0 {
		ids := r.data.ExternalGroupIDs
		if len(ids) != len(names) {
			var err error
			if ids, err = r.groupIDs(ctx, "ios.external_groups", names, false); err != nil {
				return err
			}
		}
		if _, err := r.x.ASC.AddBuildToGroups(ctx, r.data.BuildID, ids...); err != nil {
			if err := ascFailure("add "+r.data.label()+" to the external groups", err); err != nil {
				return err
			}
		}
	}
	if err := r.reach(ctx, iosStepTestFlight); err != nil {
		return err
	}
	// The binary is in testers' hands: record it now, so OTA releases can
	// target it even while App Review is pending.
	bin, err := r.binary(ctx)
	if err != nil {
		return err
	}
	if _, err := r.x.Store.RecordBinary(ctx, bin); err != nil {
		return err
	}
	groups := append(slices.Clone(r.app.IOS.InternalGroups), r.app.IOS.ExternalGroups...)
	return r.progress(ctx, "ios.in_testflight", map[string]any{"groups": groups})
}

func (r *iosRun) binary(ctx context.Context) (release.Binary, error) {
	fp, err := lane.Fingerprint(ctx, r.x.Store, r.rel.App, release.IOS, r.rel.Commit)
	if err != nil {
		return release.Binary{}, err
	}
	return release.Binary{App: r.rel.App, Platform: release.IOS, Version: r.data.Version, BuildNumber: r.data.BuildNumber,
		Commit: r.rel.Commit, Fingerprint: fp, ReleaseID: r.rel.ID, CreatedAt: r.x.now()}, nil
}
