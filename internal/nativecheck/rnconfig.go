package nativecheck

import (
	"fmt"
	"path"
	"strings"
)

// rnConfigNames are the files the React Native CLI reads its configuration
// from, in cosmiconfig's search order (cli-config readConfigFromDisk); the
// first one present wins.
var rnConfigNames = []string{"react-native.config.js", "react-native.config.cjs", "react-native.config.ts", "react-native.config.mjs"}

// rnConfig is a react-native.config.* file read statically.
type rnConfig struct {
	name string
	val  jsValue
	err  error // the file as a whole is not understood
}

func readRNConfig(name string, src []byte) rnConfig {
	c := rnConfig{name: name}
	v, _, err := parseJSConfig(src)
	if err != nil {
		c.err = err
		return c
	}
	if v.kind != jsObject {
		c.err = fmt.Errorf("it exports %s, not an object literal", v.describe())
		return c
	}
	c.val = v
	return c
}

// lookup walks keys from v. It returns the value found (jsUndefined when a
// key is absent) and, when the answer is not certain, why.
func lookup(v jsValue, keys ...string) (jsValue, string) {
	walked := ""
	for _, k := range keys {
		switch v.kind {
		case jsObject:
			v = v.member(k)
		case jsUndefined:
			return v, ""
		case jsUnknown:
			return v, walked + " is " + v.why
		default:
			// cli-config validates with Joi and then reads properties of
			// whatever is there; a non-object here is a broken config.
			return unknown(v.describe()), fmt.Sprintf("%s is %s, not an object", orDesc(walked, "the export"), v.describe())
		}
		walked = join(walked, k)
		if v.kind == jsUnknown {
			return v, walked + " is " + v.why
		}
	}
	return v, ""
}

// rnPlatform is what a package's own config says about one platform:
// dependency.platforms.<name>.
type rnPlatform struct {
	disabled bool    // set to null: the CLI does not link this platform
	unsure   string  // why the answer is not certain
	obj      jsValue // the platform's settings (jsUndefined when absent)
}

// dependencyPlatform reads dependency.platforms.<pl> of a package's config.
// A package that provides platforms itself (a top-level "platforms" key,
// as react-native-windows does) is linked on none: cli-config's
// getDependencyConfig returns null for every platform of such a package.
func (c rnConfig) dependencyPlatform(pl string) rnPlatform {
	if c.err != nil {
		return rnPlatform{unsure: c.name + " is not understood: " + c.err.Error()}
	}
	provided, why := lookup(c.val, "platforms")
	if why != "" {
		return rnPlatform{unsure: c.name + ": " + why}
	}
	if provided.kind == jsObject && len(provided.obj.keys) > 0 {
		return rnPlatform{disabled: true}
	}
	v, why := lookup(c.val, "dependency", "platforms", pl)
	if why != "" {
		return rnPlatform{unsure: c.name + ": " + why}
	}
	switch v.kind {
	case jsNull:
		return rnPlatform{disabled: true}
	case jsObject:
		return rnPlatform{obj: v}
	}
	return rnPlatform{obj: jsValue{kind: jsUndefined}}
}

// pathSetting reads a path-valued setting of a platform (sourceDir,
// podspecPath, manifestPath, ...), relative to the package root. set is
// false when it is absent; unsure says why the value is not known.
func (c rnConfig) pathSetting(p rnPlatform, key string) (rel string, set bool, unsure string) {
	if p.obj.kind != jsObject {
		return "", false, ""
	}
	v := p.obj.member(key)
	switch v.kind {
	case jsUndefined, jsNull:
		return "", false, ""
	case jsString:
		if v.str == "" {
			return "", false, "" // falsy: the CLI uses its default
		}
		r, ok := pkgRelPath(v.str)
		if !ok {
			return "", true, fmt.Sprintf("%s: %s %q points outside the package", c.name, key, strings.ReplaceAll(v.str, dirnameMark, "__dirname"))
		}
		return r, true, ""
	}
	return "", true, fmt.Sprintf("%s: %s is %s", c.name, key, v.describe())
}

// stringSetting reports whether a setting holds a non-empty string.
func (c rnConfig) stringSetting(p rnPlatform, key string) (bool, string) {
	if p.obj.kind != jsObject {
		return false, ""
	}
	v := p.obj.member(key)
	switch v.kind {
	case jsUndefined, jsNull:
		return false, ""
	case jsString:
		return v.str != "", ""
	}
	return false, fmt.Sprintf("%s: %s is %s", c.name, key, v.describe())
}

// pkgRelPath turns an evaluated path into one relative to the package
// root. Paths built from __dirname are relative to the package; so are
// plain relative paths, which the CLI joins to the package root.
func pkgRelPath(s string) (string, bool) {
	if rest, ok := strings.CutPrefix(s, dirnameMark); ok {
		s = "." + rest
	}
	if strings.Contains(s, dirnameMark) || path.IsAbs(s) || strings.Contains(s, "\\") {
		return "", false
	}
	c := path.Clean(s)
	if c == ".." || strings.HasPrefix(c, "../") {
		return "", false
	}
	return c, true
}

// appOverride is what the app's own react-native.config.js says about
// one dependency on one platform: dependencies.<name>.platforms.<pl>.
type appOverride struct {
	disabled bool   // null: the CLI does not link it
	forced   bool   // an object the CLI merges over the package's own config
	unsure   string // the override cannot be read with certainty
}

func (c rnConfig) appDependency(name, pl string) appOverride {
	if c.err != nil {
		return appOverride{unsure: c.name + " is not understood: " + c.err.Error()}
	}
	v, why := lookup(c.val, "dependencies", name, "platforms", pl)
	if why != "" {
		return appOverride{unsure: c.name + ": " + why}
	}
	switch v.kind {
	case jsNull:
		return appOverride{disabled: true}
	case jsObject:
		if len(v.obj.keys) > 0 || v.obj.open != "" {
			return appOverride{forced: true}
		}
	}
	return appOverride{}
}

// assetDirs lists the asset directories the app's config links natively
// (`assets`, and project.<platform>.assets). ok is false when they cannot
// be read with certainty.
func (c rnConfig) assetDirs() (dirs []string, ok bool) {
	if c.err != nil {
		return nil, false
	}
	for _, keys := range [][]string{{"assets"}, {"project", "ios", "assets"}, {"project", "android", "assets"}} {
		v, why := lookup(c.val, keys...)
		if why != "" {
			return nil, false
		}
		switch v.kind {
		case jsUndefined, jsNull:
			continue
		case jsArray:
			for _, e := range v.arr {
				s, isStr := e.stringy()
				if !isStr {
					return nil, false
				}
				if r, inside := pkgRelPath(s); inside {
					dirs = append(dirs, r)
				}
			}
		default:
			return nil, false
		}
	}
	return dirs, true
}
