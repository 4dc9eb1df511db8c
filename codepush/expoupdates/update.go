// Package expoupdates serves expo-updates clients (the Expo Updates protocol
// v1, docs.expo.dev/technical-specs/expo-updates-1) from the same OTA apps,
// histories and release rules as the CodePush server in package codepush.
//
// An Expo update is a codepush.Release whose target is the exact runtime
// version (ReleaseInput.ExactTarget) and whose package is the update's
// manifest template (this package's Update, as JSON); the bundle and assets
// are content-addressed blobs of the same storage. Staged rollouts (by
// eas-client-id), disabling, rollback, promotion, the release gate and the
// history are therefore CodePush's, and the manifest endpoint reads the
// Service's in-memory view like an update check does.
package expoupdates

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"mime"
	"path"
	"sort"
	"strings"

	"github.com/swapjoy/releasepilot/codepush"
)

// Update is what a release stores: the manifest less what depends on the
// history entry serving it (id, createdAt) and on the request (URLs).
type Update struct {
	Format         int            `json:"format"` // 1
	Platform       string         `json:"platform"`
	RuntimeVersion string         `json:"runtimeVersion"`
	LaunchAsset    Asset          `json:"launchAsset"`
	Assets         []Asset        `json:"assets"`
	Metadata       map[string]any `json:"metadata"`
	Extra          map[string]any `json:"extra,omitempty"`
}

// Asset is a file of an update, stored under its SHA-256 (BlobKey).
type Asset struct {
	Key           string `json:"key"`  // md5 hex of the content, as `expo export` names assets
	Hash          string `json:"hash"` // base64url SHA-256, unpadded, as the spec requires
	ContentType   string `json:"contentType"`
	FileExtension string `json:"fileExtension"` // with the dot, e.g. ".png"
	BlobKey       string `json:"blobKey"`
	Size          int64  `json:"size"`
}

// Platforms expo-updates runs on.
var Platforms = []string{"ios", "android"}

// metadataJSON is `npx expo export`'s dist/metadata.json.
type metadataJSON struct {
	Version      int    `json:"version"`
	Bundler      string `json:"bundler"`
	FileMetadata map[string]struct {
		Bundle string `json:"bundle"`
		Assets []struct {
			Path string `json:"path"`
			Ext  string `json:"ext"`
		} `json:"assets"`
	} `json:"fileMetadata"`
}

// Dist is an opened `npx expo export` output directory.
type Dist struct {
	fsys fs.FS
	meta metadataJSON
	// Config is the public app config when the export carries one
	// (expoConfig.json, as `npx expo config --json --type public` prints
	// it); it becomes extra.expoClient and may give the runtime version.
	Config map[string]any
}

// OpenDist reads metadata.json (and expoConfig.json when present) from the
// root of fsys. Errors name the file and field.
func OpenDist(fsys fs.FS) (*Dist, error) {
	b, err := fs.ReadFile(fsys, "metadata.json")
	if err != nil {
		return nil, invalidf("metadata.json", "", "not found in the export (is this the output directory of `npx expo export`?): %v", err)
	}
	d := &Dist{fsys: fsys}
	if err := json.Unmarshal(b, &d.meta); err != nil {
		return nil, invalidf("metadata.json", "", "not valid JSON: %v", err)
	}
	if d.meta.Version != 0 {
		return nil, invalidf("metadata.json version", fmt.Sprint(d.meta.Version), "only version 0 (what `npx expo export` writes) is understood")
	}
	if c, err := fs.ReadFile(fsys, "expoConfig.json"); err == nil {
		if err := json.Unmarshal(c, &d.Config); err != nil {
			return nil, invalidf("expoConfig.json", "", "not valid JSON: %v", err)
		}
		// `npx expo config --json` prints the config itself; app.json
		// wraps it in "expo".
		if inner, ok := d.Config["expo"].(map[string]any); ok {
			d.Config = inner
		}
	}
	return d, nil
}

// Platforms lists the platforms the export has bundles for (web is not
// served by expo-updates).
func (d *Dist) Platforms() []string {
	var out []string
	for _, p := range Platforms {
		if fm, ok := d.meta.FileMetadata[p]; ok && fm.Bundle != "" {
			out = append(out, p)
		}
	}
	return out
}

// RuntimeVersion resolves the runtime version of platform from the export's
// app config: the platform's runtimeVersion, else the top-level one; a
// string is used as is, {"policy":"appVersion"} is the version,
// {"policy":"nativeVersion"} is "version(buildNumber|versionCode)". Other
// policies (fingerprint, sdkVersion) are computed by Expo's tools: pass the
// value explicitly.
func (d *Dist) RuntimeVersion(platform string) (string, error) {
	if d.Config == nil {
		return "", invalidf("runtimeVersion", "", "the export has no expoConfig.json to read it from; give the runtime version explicitly")
	}
	rv := d.Config["runtimeVersion"]
	if pc, ok := d.Config[platform].(map[string]any); ok && pc["runtimeVersion"] != nil {
		rv = pc["runtimeVersion"]
	}
	version, _ := d.Config["version"].(string)
	if pc, ok := d.Config[platform].(map[string]any); ok {
		if v, ok := pc["version"].(string); ok && v != "" {
			version = v
		}
	}
	switch v := rv.(type) {
	case string:
		if v == "" {
			break
		}
		return v, nil
	case map[string]any:
		switch v["policy"] {
		case "appVersion":
			if version == "" {
				version = "1.0.0"
			}
			return version, nil
		case "nativeVersion":
			build := ""
			if pc, ok := d.Config[platform].(map[string]any); ok {
				switch platform {
				case "ios":
					build, _ = pc["buildNumber"].(string)
				case "android":
					if n, ok := pc["versionCode"].(float64); ok {
						build = fmt.Sprint(int64(n))
					}
				}
			}
			if version == "" || build == "" {
				return "", invalidf("runtimeVersion", "nativeVersion", "the nativeVersion policy needs version and the %s build number in expoConfig.json", platform)
			}
			return version + "(" + build + ")", nil
		default:
			return "", invalidf("runtimeVersion", fmt.Sprint(v["policy"]), "this policy is computed by Expo's tools (npx expo-updates runtimeversion:resolve); give the runtime version explicitly")
		}
	}
	return "", invalidf("runtimeVersion", "", "expoConfig.json sets no runtimeVersion for %s; give it explicitly", platform)
}

// Store reads the bundle and assets of platform, stores each in blobs, and
// returns the update. Files are streamed, hashed on the way.
func (d *Dist) Store(ctx context.Context, blobs codepush.Blobs, platform, runtimeVersion string) (Update, error) {
	fm, ok := d.meta.FileMetadata[platform]
	if !ok || fm.Bundle == "" {
		return Update{}, invalidf("platform", platform, "metadata.json has no bundle for this platform (exported: %s)", strings.Join(d.Platforms(), ", "))
	}
	u := Update{Format: 1, Platform: platform, RuntimeVersion: runtimeVersion, Metadata: map[string]any{}}
	if d.Config != nil {
		u.Extra = map[string]any{"expoClient": d.Config}
	}
	var err error
	u.LaunchAsset, err = d.storeFile(ctx, blobs, fm.Bundle, "")
	if err != nil {
		return Update{}, err
	}
	u.LaunchAsset.ContentType = "application/javascript"
	u.LaunchAsset.FileExtension = ".bundle"
	seen := map[string]bool{}
	for _, a := range fm.Assets {
		if seen[a.Path] {
			continue
		}
		seen[a.Path] = true
		asset, err := d.storeFile(ctx, blobs, a.Path, a.Ext)
		if err != nil {
			return Update{}, err
		}
		u.Assets = append(u.Assets, asset)
	}
	sort.Slice(u.Assets, func(i, j int) bool { return u.Assets[i].Key < u.Assets[j].Key })
	return u, nil
}

func (d *Dist) storeFile(ctx context.Context, blobs codepush.Blobs, name, ext string) (Asset, error) {
	name = path.Clean(strings.TrimPrefix(name, "./"))
	if !fs.ValidPath(name) {
		return Asset{}, invalidf("metadata.json", name, "a file path must stay inside the export")
	}
	f, err := d.fsys.Open(name)
	if err != nil {
		return Asset{}, invalidf("metadata.json", name, "names a file the export does not have: %v", err)
	}
	defer f.Close()
	m, s := md5.New(), sha256.New()
	key, _, size, err := blobs.Put(ctx, io.TeeReader(f, io.MultiWriter(m, s)))
	if err != nil {
		return Asset{}, fmt.Errorf("store %s: %w", name, err)
	}
	a := Asset{Key: hex.EncodeToString(m.Sum(nil)), Hash: base64.RawURLEncoding.EncodeToString(s.Sum(nil)), BlobKey: key, Size: size}
	if ext != "" {
		ext = "." + strings.TrimPrefix(ext, ".")
		a.FileExtension = ext
		a.ContentType = ContentType(ext)
	}
	return a, nil
}

// ContentType is the type an asset is served with, by file extension.
func ContentType(ext string) string {
	switch strings.ToLower(ext) {
	case ".bundle", ".js", ".hbc":
		return "application/javascript"
	case ".ttf":
		return "font/ttf"
	case ".otf":
		return "font/otf"
	case ".png", ".jpg", ".jpeg", ".gif", ".webp", ".svg":
	}
	if t := mime.TypeByExtension(strings.ToLower(ext)); t != "" {
		return t
	}
	return "application/octet-stream"
}

// Encode is the stored form of an update (the release's package).
func (u Update) Encode() ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	err := enc.Encode(u)
	return buf.Bytes(), err
}

// DecodeUpdate reads a stored update.
func DecodeUpdate(b []byte) (Update, error) {
	var u Update
	if err := json.Unmarshal(b, &u); err != nil {
		return Update{}, err
	}
	if u.Format != 1 || u.LaunchAsset.BlobKey == "" {
		return Update{}, errors.New("expoupdates: not a stored Expo update")
	}
	return u, nil
}

func invalidf(field, value, format string, args ...any) error {
	return &codepush.Error{Kind: codepush.KindInvalid, Field: field, Value: value, Message: fmt.Sprintf(format, args...)}
}
