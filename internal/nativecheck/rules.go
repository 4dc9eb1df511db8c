package nativecheck

import (
	"errors"
	"fmt"
	"path"
	"strings"

	"github.com/bmatcuk/doublestar/v4"
)

// Rules adapt the default bare React Native and Expo rules to one app. The
// zero value is the default rule set for an app at the repository root.
type Rules struct {
	// Root is the app's directory inside the repository ("apps/mobile" in a
	// monorepo); empty means the repository root. Lockfiles are looked up in
	// Root and then in each parent directory.
	Root string
	// NativeGlobs are extra doublestar patterns, relative to Root, whose
	// files are native for both platforms (for example "native-libs/**").
	NativeGlobs []string
	// IgnoredGlobs are doublestar patterns, relative to Root, of files that
	// never affect the fingerprint, even when a default rule says native.
	IgnoredGlobs []string
	// ForceNative lists npm package names (doublestar patterns such as
	// "@acme/*" allowed) treated as native without asking the registry.
	ForceNative []string
	// ForceJSOnly lists npm package names treated as JS-only without asking
	// the registry; it wins over ForceNative and the built-in list.
	ForceJSOnly []string
}

// builtinNative are packages whose version is the native runtime itself:
// the bytecode and native code must match exactly, whatever their tarball
// holds.
var builtinNative = []string{
	"react-native", "hermes-engine", "react-native-reanimated",
	"react-native-worklets", "expo", "expo-modules-core",
}

// Validate reports the first invalid field, naming it and its value.
func (r Rules) Validate() error {
	if r.Root != "" {
		clean := path.Clean(r.Root)
		if path.IsAbs(r.Root) || clean == ".." || strings.HasPrefix(clean, "../") {
			return fmt.Errorf("nativecheck: rules root %q must be a relative path inside the repository", r.Root)
		}
	}
	var errs []error
	check := func(field string, globs []string) {
		for i, g := range globs {
			if g == "" || !doublestar.ValidatePattern(g) {
				errs = append(errs, fmt.Errorf("nativecheck: rules %s[%d] %q is not a valid glob", field, i, g))
			}
		}
	}
	check("native_globs", r.NativeGlobs)
	check("ignored_globs", r.IgnoredGlobs)
	check("force_native", r.ForceNative)
	check("force_js_only", r.ForceJSOnly)
	return errors.Join(errs...)
}

func (r Rules) root() string {
	if r.Root == "" {
		return ""
	}
	c := path.Clean(r.Root)
	if c == "." {
		return ""
	}
	return c + "/"
}

func matchAny(globs []string, name string) bool {
	for _, g := range globs {
		if ok, _ := doublestar.Match(g, name); ok {
			return true
		}
	}
	return false
}

// forced reports whether config decides a package's nativeness.
func (r Rules) forced(name string) (native, decided bool, reason string) {
	switch {
	case matchAny(r.ForceJSOnly, name):
		return false, true, "forced JS-only by rules"
	case matchAny(r.ForceNative, name):
		return true, true, "forced native by rules"
	case matchAny(builtinNative, name):
		return true, true, "native runtime package"
	}
	return false, false, ""
}
