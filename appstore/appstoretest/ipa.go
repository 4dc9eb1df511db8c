package appstoretest

import (
	"archive/zip"
	"bytes"
	"encoding/xml"
	"fmt"
	"strings"
)

// FakeIPA returns the bytes of a minimal IPA: a zip holding
// Payload/<name>.app/Info.plist (an XML property list with the bundle id,
// CFBundleShortVersionString and CFBundleVersion) and an executable padded
// to at least size bytes. It is enough for code that reads an IPA's version
// before uploading it; App Store Connect itself would refuse it.
func FakeIPA(bundleID, version, build string, size int) ([]byte, error) {
	name := bundleID[strings.LastIndexByte(bundleID, '.')+1:]
	if name == "" {
		name = "App"
	}
	esc := func(s string) string {
		var b strings.Builder
		_ = xml.EscapeText(&b, []byte(s))
		return b.String()
	}
	plist := fmt.Sprintf(`<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
	<key>CFBundleIdentifier</key>
	<string>%s</string>
	<key>CFBundleExecutable</key>
	<string>%s</string>
	<key>CFBundleShortVersionString</key>
	<string>%s</string>
	<key>CFBundleVersion</key>
	<string>%s</string>
</dict>
</plist>
`, esc(bundleID), esc(name), esc(version), esc(build))
	exe := make([]byte, max(size, 1))
	for i := range exe {
		exe[i] = byte(i * 31)
	}
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, f := range []struct {
		name string
		data []byte
	}{{"Payload/" + name + ".app/Info.plist", []byte(plist)}, {"Payload/" + name + ".app/" + name, exe}} {
		w, err := zw.Create(f.name)
		if err != nil {
			return nil, err
		}
		if _, err := w.Write(f.data); err != nil {
			return nil, err
		}
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
