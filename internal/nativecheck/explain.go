package nativecheck

import (
	"fmt"
	"strings"
)

// Explanation lists what differs between two fingerprints of one platform.
// Native is false exactly when the hashes are equal.
type Explanation struct {
	Platform        Platform        `json:"platform"`
	Native          bool            `json:"native"`
	FilesAdded      []FileInput     `json:"files_added,omitempty"`
	FilesRemoved    []FileInput     `json:"files_removed,omitempty"`
	FilesChanged    []FileInput     `json:"files_changed,omitempty"` // the new input
	PackagesAdded   []PackageInput  `json:"packages_added,omitempty"`
	PackagesRemoved []PackageInput  `json:"packages_removed,omitempty"`
	PackagesChanged []PackageChange `json:"packages_changed,omitempty"`
	ConfigChanged   []ConfigChange  `json:"config_changed,omitempty"`
	Incomparable    string          `json:"incomparable,omitempty"`
}

// PackageChange is a native package whose resolved version (or, outside
// the registry, what it resolves to) changed. Reason says why the new one
// counts as native.
type PackageChange struct {
	Name   string `json:"name"`
	From   string `json:"from"`
	To     string `json:"to"`
	Reason string `json:"reason,omitempty"`
}

// ConfigChange is an app config field added (From empty), removed (To
// empty) or changed.
type ConfigChange struct {
	Key    string `json:"key"`
	From   string `json:"from,omitempty"`
	To     string `json:"to,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// Explain compares the fingerprint of the live binary (a) with that of a
// candidate commit (b).
func Explain(a, b Fingerprint) Explanation {
	ex := Explanation{Platform: b.Platform, Native: a.Hash != b.Hash || a.Hash == ""}
	if a.Algorithm != b.Algorithm || a.Platform != b.Platform {
		ex.Native = true
		ex.Incomparable = fmt.Sprintf("fingerprints differ in kind (%s/%s vs %s/%s)", a.Algorithm, a.Platform, b.Algorithm, b.Platform)
		return ex
	}
	af := map[string]FileInput{}
	for _, f := range a.Files {
		af[f.Path] = f
	}
	bf := map[string]bool{}
	for _, f := range b.Files {
		bf[f.Path] = true
		old, ok := af[f.Path]
		switch {
		case !ok:
			ex.FilesAdded = append(ex.FilesAdded, f)
		case old.Digest != f.Digest:
			ex.FilesChanged = append(ex.FilesChanged, f)
		}
	}
	for _, f := range a.Files {
		if !bf[f.Path] {
			ex.FilesRemoved = append(ex.FilesRemoved, f)
		}
	}

	ap, bp := groupPackages(a.Packages), groupPackages(b.Packages)
	for _, p := range b.Packages {
		olds := ap[p.Name]
		if len(olds) == 0 {
			ex.PackagesAdded = append(ex.PackagesAdded, p)
			continue
		}
		if containsVersion(olds, p.ident()) {
			continue
		}
		if len(olds) == 1 && len(bp[p.Name]) == 1 {
			ex.PackagesChanged = append(ex.PackagesChanged, PackageChange{Name: p.Name, From: olds[0].ident(), To: p.ident(), Reason: p.Reason})
			continue
		}
		ex.PackagesAdded = append(ex.PackagesAdded, p)
	}
	for _, p := range a.Packages {
		news := bp[p.Name]
		if containsVersion(news, p.ident()) {
			continue
		}
		if len(news) == 1 && len(ap[p.Name]) == 1 {
			continue // reported as changed
		}
		ex.PackagesRemoved = append(ex.PackagesRemoved, p)
	}

	ac := map[string]string{}
	for _, c := range a.Config {
		ac[c.Key] = c.Value
	}
	bc := map[string]bool{}
	for _, c := range b.Config {
		bc[c.Key] = true
		if old, ok := ac[c.Key]; !ok || old != c.Value {
			ex.ConfigChanged = append(ex.ConfigChanged, ConfigChange{Key: c.Key, From: old, To: c.Value, Reason: c.Reason})
		}
	}
	for _, c := range a.Config {
		if !bc[c.Key] {
			ex.ConfigChanged = append(ex.ConfigChanged, ConfigChange{Key: c.Key, From: c.Value, Reason: c.Reason})
		}
	}
	return ex
}

func groupPackages(ps []PackageInput) map[string][]PackageInput {
	m := map[string][]PackageInput{}
	for _, p := range ps {
		m[p.Name] = append(m[p.Name], p)
	}
	return m
}

func containsVersion(ps []PackageInput, ident string) bool {
	for _, p := range ps {
		if p.ident() == ident {
			return true
		}
	}
	return false
}

// String is a human summary, one difference per line, suitable for a
// refusal message or a release note.
func (ex Explanation) String() string {
	if !ex.Native {
		return fmt.Sprintf("%s: no native change", ex.Platform)
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "%s: native change", ex.Platform)
	if ex.Incomparable != "" {
		fmt.Fprintf(&sb, "\n  %s", ex.Incomparable)
	}
	for _, f := range ex.FilesAdded {
		fmt.Fprintf(&sb, "\n  file added: %s%s", f.Path, paren(f.Reason))
	}
	for _, f := range ex.FilesRemoved {
		fmt.Fprintf(&sb, "\n  file removed: %s%s", f.Path, paren(f.Reason))
	}
	for _, f := range ex.FilesChanged {
		fmt.Fprintf(&sb, "\n  file changed: %s%s", f.Path, paren(f.Reason))
	}
	for _, p := range ex.PackagesAdded {
		fmt.Fprintf(&sb, "\n  native package added: %s@%s%s", p.Name, p.ident(), paren(p.Reason))
	}
	for _, p := range ex.PackagesRemoved {
		fmt.Fprintf(&sb, "\n  native package removed: %s@%s", p.Name, p.ident())
	}
	for _, p := range ex.PackagesChanged {
		fmt.Fprintf(&sb, "\n  native package changed: %s %s -> %s%s", p.Name, p.From, p.To, paren(p.Reason))
	}
	for _, c := range ex.ConfigChanged {
		switch {
		case c.From == "":
			fmt.Fprintf(&sb, "\n  config added: %s = %s%s", c.Key, c.To, paren(c.Reason))
		case c.To == "":
			fmt.Fprintf(&sb, "\n  config removed: %s%s", c.Key, paren(c.Reason))
		default:
			fmt.Fprintf(&sb, "\n  config changed: %s: %s -> %s%s", c.Key, c.From, c.To, paren(c.Reason))
		}
	}
	return sb.String()
}

func paren(s string) string {
	if s == "" {
		return ""
	}
	return " (" + s + ")"
}
