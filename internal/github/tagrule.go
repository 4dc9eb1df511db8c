package github

import (
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/Masterminds/semver/v3"
	"github.com/bmatcuk/doublestar/v4"
)

// DefaultTagPattern is used when TagRule.Pattern is empty.
const DefaultTagPattern = "v*"

// TagRule says which tags of a repository start a release of an app.
// A pattern is a glob ("v*", "release-*"; '*' does not cross '/') or, with a
// "re:" prefix, a regular expression ("re:^v\d+"). A regexp with a named
// group "version" takes the version from it.
type TagRule struct {
	// Repository is the full name "owner/name" (compared case-insensitively).
	Repository string
	// Pattern matches tags that release every platform; DefaultTagPattern
	// when empty.
	Pattern string
	// Platforms maps a platform ("ios", "android") to a pattern for tags
	// that release only that platform, such as "ios/v*". Platform patterns
	// are tried before Pattern.
	Platforms map[string]string
}

// AllPlatforms is what a tag matching TagRule.Pattern releases.
var AllPlatforms = []string{"android", "ios"}

// TagMatch is the outcome of matching a tag. When Matched is false, Reason
// says why in a sentence fit for an event log.
type TagMatch struct {
	Matched   bool
	Version   *semver.Version
	Platforms []string // sorted
	Reason    string
}

// Validate reports the first invalid field, naming it and its value.
func (r TagRule) Validate() error {
	if !strings.Contains(r.Repository, "/") {
		return fmt.Errorf("github: tag rule repository %q is not owner/name", r.Repository)
	}
	var errs []error
	if _, err := compileTagPattern(r.pattern()); err != nil {
		errs = append(errs, fmt.Errorf("github: tag rule pattern: %w", err))
	}
	for _, pl := range sortedKeys(r.Platforms) {
		if pl != "ios" && pl != "android" {
			errs = append(errs, fmt.Errorf("github: tag rule platforms: unknown platform %q", pl))
		}
		if _, err := compileTagPattern(r.Platforms[pl]); err != nil {
			errs = append(errs, fmt.Errorf("github: tag rule platforms.%s: %w", pl, err))
		}
	}
	return errors.Join(errs...)
}

func (r TagRule) pattern() string {
	if r.Pattern == "" {
		return DefaultTagPattern
	}
	return r.Pattern
}

// Match decides whether a tag pushed to repo releases the app, for which
// platforms, and at which version. The version is semver, a leading "v"
// allowed, after stripping the pattern's literal prefix (so "ios/v1.4.0"
// under "ios/v*" is 1.4.0). An invalid rule never matches.
func (r TagRule) Match(repo, tag string) TagMatch {
	if !strings.EqualFold(repo, r.Repository) {
		return TagMatch{Reason: fmt.Sprintf("repository %q is not %q", repo, r.Repository)}
	}
	try := func(pattern string, platforms []string) (TagMatch, bool) {
		tp, err := compileTagPattern(pattern)
		if err != nil {
			return TagMatch{Reason: fmt.Sprintf("tag pattern %q is invalid", pattern)}, true
		}
		raw, ok := tp.match(tag)
		if !ok {
			return TagMatch{}, false
		}
		v, err := semver.NewVersion(strings.TrimPrefix(strings.TrimPrefix(raw, "v"), "V"))
		if err != nil || raw == "" {
			return TagMatch{Reason: fmt.Sprintf("tag %q is not a version", tag)}, true
		}
		return TagMatch{Matched: true, Version: v, Platforms: platforms}, true
	}
	for _, pl := range sortedKeys(r.Platforms) {
		if m, done := try(r.Platforms[pl], []string{pl}); done {
			return m
		}
	}
	if m, done := try(r.pattern(), AllPlatforms); done {
		return m
	}
	return TagMatch{Reason: fmt.Sprintf("tag %q does not match %s", tag, r.describe())}
}

func (r TagRule) describe() string {
	parts := []string{fmt.Sprintf("%q", r.pattern())}
	for _, pl := range sortedKeys(r.Platforms) {
		parts = append(parts, fmt.Sprintf("%q (%s)", r.Platforms[pl], pl))
	}
	return strings.Join(parts, " or ")
}

type tagPattern struct {
	glob   string
	prefix string
	re     *regexp.Regexp
}

func compileTagPattern(p string) (tagPattern, error) {
	if p == "" {
		return tagPattern{}, errors.New("empty pattern")
	}
	if expr, ok := strings.CutPrefix(p, "re:"); ok {
		re, err := regexp.Compile(expr)
		if err != nil {
			return tagPattern{}, fmt.Errorf("%q is not a valid regexp: %v", p, err)
		}
		var prefix string
		if unanchored, err := regexp.Compile(strings.TrimPrefix(expr, "^")); err == nil {
			prefix, _ = unanchored.LiteralPrefix()
		}
		return tagPattern{re: re, prefix: prefix}, nil
	}
	if !doublestar.ValidatePattern(p) {
		return tagPattern{}, fmt.Errorf("%q is not a valid glob", p)
	}
	i := strings.IndexAny(p, `*?[{\`)
	if i < 0 {
		i = len(p)
	}
	return tagPattern{glob: p, prefix: p[:i]}, nil
}

// match returns the version part of tag.
func (tp tagPattern) match(tag string) (string, bool) {
	if tp.re != nil {
		m := tp.re.FindStringSubmatch(tag)
		if m == nil {
			return "", false
		}
		if i := tp.re.SubexpIndex("version"); i > 0 {
			return m[i], true
		}
		return strings.TrimPrefix(tag, tp.prefix), true
	}
	ok, err := doublestar.Match(tp.glob, tag)
	if err != nil || !ok {
		return "", false
	}
	return strings.TrimPrefix(tag, tp.prefix), true
}

func sortedKeys(m map[string]string) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
