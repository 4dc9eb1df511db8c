package release

import (
	"slices"
	"time"
)

// Freeze is a span in which no scheduled pass moves a rollout to a higher
// percentage: a holiday, a launch week, an incident. Gates still halt, and
// a person's command still acts.
type Freeze struct {
	From   time.Time `json:"from"`
	To     time.Time `json:"to"`
	Reason string    `json:"reason,omitempty"`
	// Apps limits the freeze to these apps; empty: every app.
	Apps []string `json:"apps,omitempty"`
}

// FreezesFor returns the freezes that apply to lane l of app. None apply to
// an iOS store lane: Apple moves its phased release on by itself each day,
// and only a pause of the lane stops it.
func FreezesFor(fs []Freeze, app string, l Lane) []Freeze {
	if l.Platform == IOS && l.Kind == KindStore {
		return nil
	}
	var out []Freeze
	for _, f := range fs {
		if len(f.Apps) == 0 || slices.Contains(f.Apps, app) {
			out = append(out, f)
		}
	}
	return out
}

// ActiveFreeze returns the freeze in force at t ([From, To)), with To
// stretched over every freeze that overlaps or touches it, so the answer is
// the first moment no freeze holds. Its reason is the first one's.
func ActiveFreeze(fs []Freeze, t time.Time) (Freeze, bool) {
	var out Freeze
	found := false
	for _, f := range fs {
		if !t.Before(f.From) && t.Before(f.To) && (!found || f.To.After(out.To)) {
			if !found {
				out = f
			}
			out.To, found = f.To, true
		}
	}
	if !found {
		return Freeze{}, false
	}
	for grown := true; grown; {
		grown = false
		for _, f := range fs {
			if !out.To.Before(f.From) && f.To.After(out.To) {
				out.To, grown = f.To, true
			}
		}
	}
	return out, true
}
