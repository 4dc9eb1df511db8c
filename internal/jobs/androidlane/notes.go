package androidlane

import (
	"fmt"
	"strings"
	"unicode/utf16"

	"github.com/swapjoy/releasepilot/internal/config"
	"github.com/swapjoy/releasepilot/internal/release"
	"github.com/swapjoy/releasepilot/playstore"
)

// MaxPlayNotes is Play's limit on "What's new" per language, in characters.
const MaxPlayNotes = 500

// playRelease is this lane's release as Play shows it.
func (a *Android) playRelease(rel release.Release, app config.App, vc int64, status playstore.Status, fraction float64) playstore.Release {
	r := playstore.Release{Name: fmt.Sprintf("%s (%d)", rel.Version, vc), VersionCodes: []int64{vc}, Status: status,
		UserFraction: fraction, InAppUpdatePriority: app.Android.InAppUpdatePriority}
	if notes := PlayNotes(rel.Notes); notes != "" {
		lang := app.Android.ReleaseNotesLanguage
		if lang == "" {
			lang = "en-US"
		}
		r.ReleaseNotes = []playstore.ReleaseNote{{Language: lang, Text: notes}}
	}
	return r
}

// PlayNotes fits release notes into Play's 500 characters per language.
// Play counts UTF-16 code units; a cut ends at a whole line when one ends
// in the last fifth of the room, else at a whole character, and says so
// with "…".
func PlayNotes(notes string) string {
	notes = strings.TrimSpace(notes)
	if utf16Len(notes) <= MaxPlayNotes {
		return notes
	}
	room := MaxPlayNotes - 1 // for "…"
	cut, n := 0, 0
	for i, r := range notes {
		w := utf16.RuneLen(r)
		if w < 0 {
			w = 1
		}
		if n+w > room {
			break
		}
		n += w
		cut = i + len(string(r))
	}
	out := notes[:cut]
	if nl := strings.LastIndexByte(out, '\n'); nl >= 0 && utf16Len(out[:nl]) >= room*4/5 {
		out = out[:nl]
	}
	return strings.TrimRight(out, " \t\r\n") + "…"
}

func utf16Len(s string) int {
	n := 0
	for _, r := range s {
		if w := utf16.RuneLen(r); w > 0 {
			n += w
		} else {
			n++
		}
	}
	return n
}
