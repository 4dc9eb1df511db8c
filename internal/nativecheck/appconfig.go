package nativecheck

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path"
	"regexp"
	"sort"
	"strings"
)

// appConfigDropped are app.json fields that never need a new binary: version
// and build numbers (bumped by every release) and fields only JS or tooling
// reads. Keys are relative to the Expo object ("expo" in app.json) or to the
// whole file for bare React Native.
var appConfigDropped = map[string]bool{
	"version": true, "ios.buildNumber": true, "ios.version": true,
	"android.versionCode": true, "android.version": true,
	"extra": true, "description": true, "githubUrl": true, "privacy": true,
	"owner": true, "currentFullName": true, "originalFullName": true, "web": true,
}

// configField is one native-relevant leaf of the app config.
type configField struct {
	key   string
	value string // canonical JSON
	pl    platforms
}

// appConfigFields flattens an app.json or app.config.json into leaf fields,
// dropping appConfigDropped. Arrays are kept whole (plugin lists are
// ordered). It also returns the relative file paths the config references
// (icons, splash images, Google services files, fonts).
func appConfigFields(name string, b []byte) ([]configField, []string, error) {
	var doc map[string]any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&doc); err != nil {
		return nil, nil, fmt.Errorf("nativecheck: %s is not a JSON object: %w", name, err)
	}
	prefix := ""
	if expo, ok := doc["expo"].(map[string]any); ok {
		// Everything outside "expo" in an Expo app.json is ignored by Expo.
		doc, prefix = expo, "expo."
	}
	kept := runtimeVersionKeys(doc)
	var fields []configField
	var refs []string
	var walk func(key string, v any, pl platforms)
	walk = func(key string, v any, pl platforms) {
		if appConfigDropped[key] && !kept[key] {
			return
		}
		switch key {
		case "ios":
			pl = onIOS
		case "android":
			pl = onAndroid
		}
		switch t := v.(type) {
		case map[string]any:
			if len(t) > 0 {
				for k, vv := range t {
					walk(join(key, k), vv, pl)
				}
				return
			}
		case []any:
			collectRefs(t, &refs)
		case string:
			collectRefs(t, &refs)
		}
		enc, _ := json.Marshal(v)
		fields = append(fields, configField{key: prefix + key, value: string(enc), pl: pl})
	}
	for k, v := range doc {
		walk(k, v, onBoth)
	}
	sort.Slice(fields, func(i, j int) bool { return fields[i].key < fields[j].key })
	sort.Strings(refs)
	return fields, refs, nil
}

// runtimeVersionKeys returns the version fields an Expo runtimeVersion
// policy derives the runtime from. Under "appVersion" and "nativeVersion" a
// version bump is a new runtime: an update published from the new commit
// would not reach the old binary, so the bump must count.
func runtimeVersionKeys(doc map[string]any) map[string]bool {
	keep := map[string]bool{}
	policy := func(v any) string {
		if m, ok := v.(map[string]any); ok {
			s, _ := m["policy"].(string)
			return s
		}
		return ""
	}
	apply := func(p, plat string) {
		switch p {
		case "nativeVersion":
			if plat != "android" {
				keep["ios.buildNumber"] = true
			}
			if plat != "ios" {
				keep["android.versionCode"] = true
			}
			fallthrough
		case "appVersion":
			keep["version"] = true
			if plat != "android" {
				keep["ios.version"] = true
			}
			if plat != "ios" {
				keep["android.version"] = true
			}
		}
	}
	apply(policy(doc["runtimeVersion"]), "")
	for _, plat := range []string{"ios", "android"} {
		if m, ok := doc[plat].(map[string]any); ok {
			apply(policy(m["runtimeVersion"]), plat)
		}
	}
	return keep
}

func join(a, b string) string {
	if a == "" {
		return b
	}
	return a + "." + b
}

// refExt are extensions of files an app config links into the binary.
var refExt = map[string]bool{
	".png": true, ".jpg": true, ".jpeg": true, ".webp": true, ".gif": true,
	".ttf": true, ".otf": true, ".json": true, ".plist": true,
	".caf": true, ".wav": true, ".mp3": true, ".m4a": true, ".xml": true,
}

func collectRefs(v any, out *[]string) {
	switch t := v.(type) {
	case string:
		if refExt[strings.ToLower(path.Ext(t))] && !strings.Contains(t, "://") {
			*out = append(*out, path.Clean(strings.TrimPrefix(t, "./")))
		}
	case []any:
		for _, e := range t {
			collectRefs(e, out)
		}
	case map[string]any:
		for _, e := range t {
			collectRefs(e, out)
		}
	}
}

var (
	rnAssetsRE = regexp.MustCompile(`assets\s*:\s*\[([^\]]*)\]`)
	quotedRE   = regexp.MustCompile(`["']([^"']+)["']`)
)

// rnConfigAssets returns the asset directories react-native.config.js links
// natively (fonts via `npx react-native-asset`). The file is JavaScript; this
// reads the common literal form `assets: ['./assets/fonts']`.
func rnConfigAssets(b []byte) []string {
	var dirs []string
	for _, m := range rnAssetsRE.FindAllSubmatch(b, -1) {
		for _, q := range quotedRE.FindAllSubmatch(m[1], -1) {
			dirs = append(dirs, path.Clean(strings.TrimPrefix(string(q[1]), "./")))
		}
	}
	return dirs
}
