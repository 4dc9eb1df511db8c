package codepush

import (
	"strconv"
	"strings"
)

// This file implements the subset of node-semver (v7, strict mode, without
// includePrerelease) that CodePush uses: valid, validRange, satisfies and gtr.
// Masterminds/semver has different range semantics (prerelease handling, "1.2"
// ranges, hyphen upper bounds), so the server and the device would disagree.

const maxSemverLength = 256

// maxSafeInteger is JavaScript's Number.MAX_SAFE_INTEGER; node-semver refuses
// larger numeric parts.
const maxSafeInteger = 1<<53 - 1

// Version is a parsed semantic version.
type Version struct {
	Major, Minor, Patch uint64
	Pre                 []string // prerelease identifiers; nil for a release
}

// ParseVersion parses a strict semantic version as node-semver's valid does:
// an optional leading "v", surrounding spaces ignored, build metadata dropped.
func ParseVersion(s string) (Version, bool) {
	s = strings.TrimSpace(s)
	if len(s) > maxSemverLength {
		return Version{}, false
	}
	s = strings.TrimPrefix(s, "v")
	v, parts, ok := parsePartial(s, false)
	if !ok || parts != 3 {
		return Version{}, false
	}
	return v, true
}

// String renders the version the way node-semver formats it (no build).
func (v Version) String() string {
	b := strconv.AppendUint(nil, v.Major, 10)
	b = append(b, '.')
	b = strconv.AppendUint(b, v.Minor, 10)
	b = append(b, '.')
	b = strconv.AppendUint(b, v.Patch, 10)
	if len(v.Pre) > 0 {
		b = append(b, '-')
		b = append(b, strings.Join(v.Pre, ".")...)
	}
	return string(b)
}

// Compare returns -1, 0 or 1 per semver precedence.
func (v Version) Compare(o Version) int {
	if c := cmpU(v.Major, o.Major); c != 0 {
		return c
	}
	if c := cmpU(v.Minor, o.Minor); c != 0 {
		return c
	}
	if c := cmpU(v.Patch, o.Patch); c != 0 {
		return c
	}
	switch {
	case len(v.Pre) == 0 && len(o.Pre) == 0:
		return 0
	case len(v.Pre) == 0:
		return 1
	case len(o.Pre) == 0:
		return -1
	}
	for i := 0; ; i++ {
		switch {
		case i >= len(v.Pre) && i >= len(o.Pre):
			return 0
		case i >= len(v.Pre):
			return -1
		case i >= len(o.Pre):
			return 1
		}
		if c := cmpIdent(v.Pre[i], o.Pre[i]); c != 0 {
			return c
		}
	}
}

func cmpU(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func isNumeric(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// cmpIdent follows node-semver's compareIdentifiers: numeric identifiers sort
// numerically and before alphanumeric ones, which sort by code unit.
func cmpIdent(a, b string) int {
	an, bn := isNumeric(a), isNumeric(b)
	switch {
	case an && bn:
		if len(a) != len(b) { // no leading zeros, so length orders numbers
			return cmpU(uint64(len(a)), uint64(len(b)))
		}
		return strings.Compare(a, b)
	case an:
		return -1
	case bn:
		return 1
	}
	return strings.Compare(a, b)
}

// wildcard marks an x-range part (x, X, * or missing).
const wildcard = ^uint64(0)

// parsePartial parses "1", "1.2", "1.2.3-pre+build" with x-range parts when
// allowX. It returns the number of parts present and whether the parse
// succeeded; missing or wildcard parts are set to wildcard.
func parsePartial(s string, allowX bool) (Version, int, bool) {
	var v Version
	main := s
	var pre string
	hasPre := false
	if i := strings.IndexByte(main, '+'); i >= 0 {
		if !validIdents(main[i+1:], false) {
			return v, 0, false
		}
		main = main[:i]
	}
	if i := strings.IndexByte(main, '-'); i >= 0 {
		pre, main, hasPre = main[i+1:], main[:i], true
	}
	// At most three fields, split without allocating: every update check
	// parses the device's version.
	if strings.Count(main, ".") > 2 {
		return v, 0, false
	}
	var buf [3]string
	fields := buf[:0]
	for rest := main; ; {
		f, tail, more := strings.Cut(rest, ".")
		fields = append(fields, f)
		if !more {
			break
		}
		rest = tail
	}
	if !allowX && len(fields) != 3 {
		return v, 0, false
	}
	nums := [3]uint64{wildcard, wildcard, wildcard}
	for i, f := range fields {
		if allowX && (f == "x" || f == "X" || f == "*") {
			continue
		}
		n, ok := parseNum(f)
		if !ok {
			return v, 0, false
		}
		nums[i] = n
	}
	if hasPre {
		if len(fields) != 3 || !validIdents(pre, true) {
			return v, 0, false
		}
		v.Pre = strings.Split(pre, ".")
	}
	v.Major, v.Minor, v.Patch = nums[0], nums[1], nums[2]
	if !allowX && (v.Major == wildcard || v.Minor == wildcard || v.Patch == wildcard) {
		return v, 0, false
	}
	return v, len(fields), true
}

func parseNum(f string) (uint64, bool) {
	if f == "" || len(f) > 16 || !isNumeric(f) || (len(f) > 1 && f[0] == '0') {
		return 0, false
	}
	n, err := strconv.ParseUint(f, 10, 64)
	if err != nil || n > maxSafeInteger {
		return 0, false
	}
	return n, true
}

// validIdents checks dot-separated identifiers; prerelease numeric ones may
// not have leading zeros.
func validIdents(s string, pre bool) bool {
	if s == "" {
		return false
	}
	for _, id := range strings.Split(s, ".") {
		if id == "" {
			return false
		}
		for i := 0; i < len(id); i++ {
			c := id[i]
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '-') {
				return false
			}
		}
		if pre && isNumeric(id) && len(id) > 1 && id[0] == '0' {
			return false
		}
	}
	return true
}

type op uint8

const (
	opEQ op = iota
	opLT
	opLE
	opGT
	opGE
	opAny // matches every release version
	opNone
)

type comparator struct {
	op op
	v  Version
}

func (c comparator) test(v Version) bool {
	switch c.op {
	case opAny:
		return true
	case opNone:
		return false
	}
	r := v.Compare(c.v)
	switch c.op {
	case opEQ:
		return r == 0
	case opLT:
		return r < 0
	case opLE:
		return r <= 0
	case opGT:
		return r > 0
	default:
		return r >= 0
	}
}

func (c comparator) String() string {
	switch c.op {
	case opAny:
		return ""
	case opNone:
		return "<0.0.0-0"
	}
	return [...]string{"", "<", "<=", ">", ">="}[c.op] + c.v.String()
}

// Range is a parsed node-semver range such as "^1.2.3", "1.2.x || >=2.0.0 <3"
// or "1.2.3 - 1.4".
type Range struct {
	sets [][]comparator
	raw  string
}

// ParseRange parses a node-semver range (strict mode). It reports false when
// node-semver's validRange would return null.
func ParseRange(s string) (Range, bool) {
	if len(s) > maxSemverLength*4 {
		return Range{}, false
	}
	r := Range{raw: s}
	for _, part := range strings.Split(s, "||") {
		set, ok := parseSet(strings.TrimSpace(part))
		if !ok {
			return Range{}, false
		}
		r.sets = append(r.sets, set)
	}
	return r, true
}

// String is the normalised form, comparable between equivalent spellings.
func (r Range) String() string {
	sets := make([]string, len(r.sets))
	for i, set := range r.sets {
		cs := make([]string, 0, len(set))
		for _, c := range set {
			if s := c.String(); s != "" {
				cs = append(cs, s)
			}
		}
		sets[i] = strings.Join(cs, " ")
		if sets[i] == "" {
			sets[i] = "*"
		}
	}
	return strings.Join(sets, "||")
}

func isOpByte(c byte) bool { return c == '<' || c == '>' || c == '=' || c == '~' || c == '^' }

func parseSet(s string) ([]comparator, bool) {
	toks := strings.Fields(s)
	if len(toks) == 0 {
		return []comparator{{op: opAny}}, true
	}
	if len(toks) == 3 && toks[1] == "-" {
		return hyphen(toks[0], toks[2])
	}
	// Join an operator written apart from its version: ">= 1.2.3", "~ 1.2".
	var merged []string
	for i := 0; i < len(toks); i++ {
		t := toks[i]
		if allOps(t) && i+1 < len(toks) {
			t += toks[i+1]
			i++
		}
		merged = append(merged, t)
	}
	var out []comparator
	for _, t := range merged {
		cs, ok := parseComparator(t)
		if !ok {
			return nil, false
		}
		out = append(out, cs...)
	}
	return out, true
}

func allOps(t string) bool {
	for i := 0; i < len(t); i++ {
		if !isOpByte(t[i]) {
			return false
		}
	}
	return true
}

// stripVPrefix removes node-semver's [v=\s]* before a version.
func stripVPrefix(s string) string {
	return strings.TrimLeft(s, "v= \t")
}

func parseX(s string) (Version, int, bool) {
	s = stripVPrefix(s)
	if s == "" {
		return Version{}, 0, false
	}
	v, n, ok := parsePartial(s, true)
	if !ok {
		return v, 0, false
	}
	// A wildcard ends the version: "1.x.3" means "1.x".
	switch {
	case v.Major == wildcard:
		n = 0
	case v.Minor == wildcard:
		n = 1
	case v.Patch == wildcard:
		n = 2
	}
	if n < 3 {
		v.Pre = nil
	}
	return v, n, true
}

func ver(maj, min, pat uint64, pre ...string) Version {
	return Version{Major: maj, Minor: min, Patch: pat, Pre: pre}
}

// zeroPre is node-semver's "-0" suffix that keeps prereleases of the upper
// bound out of a range.
var zeroPre = []string{"0"}

func parseComparator(t string) ([]comparator, bool) {
	switch {
	case strings.HasPrefix(t, "~>"):
		return tilde(t[2:])
	case strings.HasPrefix(t, "~"):
		return tilde(t[1:])
	case strings.HasPrefix(t, "^"):
		return caret(t[1:])
	}
	o := opEQ
	for _, p := range []struct {
		s string
		o op
	}{{">=", opGE}, {"<=", opLE}, {">", opGT}, {"<", opLT}, {"=", opEQ}} {
		if strings.HasPrefix(t, p.s) {
			o, t = p.o, t[len(p.s):]
			break
		}
	}
	v, n, ok := parseX(t)
	if !ok || numberAfterWildcard(t) {
		return nil, false
	}
	if n == 3 {
		return []comparator{{op: o, v: v}}, true
	}
	// X-ranges, as replaceXRange in node-semver.
	if n == 0 {
		if o == opGT || o == opLT {
			return []comparator{{op: opNone}}, true
		}
		return []comparator{{op: opAny}}, true
	}
	min := uint64(0)
	if n == 2 {
		min = v.Minor
	}
	switch o {
	case opEQ:
		lo := ver(v.Major, min, 0)
		hi := ver(v.Major+1, 0, 0, zeroPre...)
		if n == 2 {
			hi = ver(v.Major, v.Minor+1, 0, zeroPre...)
		}
		return []comparator{{op: opGE, v: lo}, {op: opLT, v: hi}}, true
	case opGT:
		if n == 1 {
			return []comparator{{op: opGE, v: ver(v.Major+1, 0, 0)}}, true
		}
		return []comparator{{op: opGE, v: ver(v.Major, v.Minor+1, 0)}}, true
	case opLE:
		if n == 1 {
			return []comparator{{op: opLT, v: ver(v.Major+1, 0, 0, zeroPre...)}}, true
		}
		return []comparator{{op: opLT, v: ver(v.Major, v.Minor+1, 0, zeroPre...)}}, true
	case opLT:
		return []comparator{{op: opLT, v: ver(v.Major, min, 0, zeroPre...)}}, true
	default: // opGE
		return []comparator{{op: opGE, v: ver(v.Major, min, 0)}}, true
	}
}

// numberAfterWildcard reports "1.x.3": node-semver rejects it in a plain
// comparator (but accepts it after ~, ^ and in hyphen ranges).
func numberAfterWildcard(s string) bool {
	s = stripVPrefix(s)
	if i := strings.IndexAny(s, "-+"); i >= 0 {
		s = s[:i]
	}
	seenX := false
	for _, f := range strings.Split(s, ".") {
		if f == "x" || f == "X" || f == "*" {
			seenX = true
		} else if seenX {
			return true
		}
	}
	return false
}

func tilde(s string) ([]comparator, bool) {
	v, n, ok := parseX(s)
	if !ok {
		return nil, false
	}
	switch n {
	case 0:
		return []comparator{{op: opAny}}, true
	case 1:
		return []comparator{{op: opGE, v: ver(v.Major, 0, 0)}, {op: opLT, v: ver(v.Major+1, 0, 0, zeroPre...)}}, true
	}
	lo := ver(v.Major, v.Minor, 0)
	if n == 3 {
		lo = v
	}
	return []comparator{{op: opGE, v: lo}, {op: opLT, v: ver(v.Major, v.Minor+1, 0, zeroPre...)}}, true
}

func caret(s string) ([]comparator, bool) {
	v, n, ok := parseX(s)
	if !ok {
		return nil, false
	}
	switch n {
	case 0:
		return []comparator{{op: opAny}}, true
	case 1:
		return []comparator{{op: opGE, v: ver(v.Major, 0, 0)}, {op: opLT, v: ver(v.Major+1, 0, 0, zeroPre...)}}, true
	case 2:
		hi := ver(v.Major+1, 0, 0, zeroPre...)
		if v.Major == 0 {
			hi = ver(0, v.Minor+1, 0, zeroPre...)
		}
		return []comparator{{op: opGE, v: ver(v.Major, v.Minor, 0)}, {op: opLT, v: hi}}, true
	}
	var hi Version
	switch {
	case v.Major != 0:
		hi = ver(v.Major+1, 0, 0, zeroPre...)
	case v.Minor != 0:
		hi = ver(0, v.Minor+1, 0, zeroPre...)
	default:
		hi = ver(0, 0, v.Patch+1, zeroPre...)
	}
	return []comparator{{op: opGE, v: v}, {op: opLT, v: hi}}, true
}

func hyphen(from, to string) ([]comparator, bool) {
	fv, fn, ok := parseX(from)
	if !ok {
		return nil, false
	}
	tv, tn, ok := parseX(to)
	if !ok {
		return nil, false
	}
	var out []comparator
	switch fn {
	case 0:
	case 1:
		out = append(out, comparator{op: opGE, v: ver(fv.Major, 0, 0)})
	case 2:
		out = append(out, comparator{op: opGE, v: ver(fv.Major, fv.Minor, 0)})
	default:
		out = append(out, comparator{op: opGE, v: fv})
	}
	switch tn {
	case 0:
	case 1:
		out = append(out, comparator{op: opLT, v: ver(tv.Major+1, 0, 0, zeroPre...)})
	case 2:
		out = append(out, comparator{op: opLT, v: ver(tv.Major, tv.Minor+1, 0, zeroPre...)})
	default:
		out = append(out, comparator{op: opLE, v: tv})
	}
	if len(out) == 0 {
		out = append(out, comparator{op: opAny})
	}
	return out, true
}

// Satisfies reports whether v is in the range, with node-semver's prerelease
// rule: a prerelease version matches only a set that names a prerelease of
// the same major.minor.patch.
func (r Range) Satisfies(v Version) bool {
	for _, set := range r.sets {
		if setSatisfies(set, v) {
			return true
		}
	}
	return false
}

func setSatisfies(set []comparator, v Version) bool {
	for _, c := range set {
		if !c.test(v) {
			return false
		}
	}
	if len(v.Pre) == 0 {
		return true
	}
	for _, c := range set {
		if c.op == opAny || c.op == opNone {
			continue
		}
		if len(c.v.Pre) > 0 && c.v.Major == v.Major && c.v.Minor == v.Minor && c.v.Patch == v.Patch {
			return true
		}
	}
	return false
}

// GreaterThanRange is node-semver's gtr: v is higher than every version the
// range could match.
func (r Range) GreaterThanRange(v Version) bool {
	if r.Satisfies(v) {
		return false
	}
	for _, set := range r.sets {
		var high, low comparator
		for i, c := range set {
			if c.op == opAny {
				c = comparator{op: opGE, v: ver(0, 0, 0)}
			}
			if c.op == opNone {
				c = comparator{op: opLT, v: ver(0, 0, 0, zeroPre...)}
			}
			if i == 0 {
				high, low = c, c
			}
			if c.v.Compare(high.v) > 0 {
				high = c
			} else if c.v.Compare(low.v) < 0 {
				low = c
			}
		}
		if high.op == opGT || high.op == opGE {
			return false
		}
		if (low.op == opEQ || low.op == opGT) && v.Compare(low.v) <= 0 {
			return false
		} else if low.op == opGE && v.Compare(low.v) < 0 {
			return false
		}
	}
	return true
}
