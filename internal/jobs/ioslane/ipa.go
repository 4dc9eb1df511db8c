package ioslane

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"path"
	"slices"
	"strings"
	"unicode/utf16"
)

// IPAVersion reads CFBundleShortVersionString and CFBundleVersion from an
// IPA's Payload/<name>.app/Info.plist, in XML or binary property list form.
func IPAVersion(r io.ReaderAt, size int64) (version, build string, err error) {
	return IPAVersionContext(context.Background(), r, size)
}

// IPAVersionContext is IPAVersion that stops when ctx is done.
func IPAVersionContext(ctx context.Context, r io.ReaderAt, size int64) (version, build string, err error) {
	zr, err := zip.NewReader(r, size)
	if err != nil {
		return "", "", fmt.Errorf("not an IPA (zip): %w", err)
	}
	var plist *zip.File
	for _, f := range zr.File {
		dir, file := path.Split(f.Name)
		if file == "Info.plist" && strings.HasPrefix(dir, "Payload/") && strings.Count(dir, "/") == 2 && strings.HasSuffix(dir, ".app/") {
			plist = f
			break
		}
	}
	if plist == nil {
		return "", "", errors.New("not an IPA: no Payload/*.app/Info.plist")
	}
	if plist.UncompressedSize64 > 4<<20 {
		return "", "", fmt.Errorf("%s is %d bytes: too large for an Info.plist", plist.Name, plist.UncompressedSize64)
	}
	rc, err := plist.Open()
	if err != nil {
		return "", "", fmt.Errorf("open %s: %w", plist.Name, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, 4<<20))
	if err != nil {
		return "", "", fmt.Errorf("read %s: %w", plist.Name, err)
	}
	var kv map[string]string
	if bytes.HasPrefix(b, []byte("bplist00")) {
		kv, err = binaryPlistStrings(ctx, b, "CFBundleShortVersionString", "CFBundleVersion")
	} else {
		kv, err = xmlPlistStrings(b)
	}
	if err != nil {
		return "", "", fmt.Errorf("%s: %w", plist.Name, err)
	}
	version, build = kv["CFBundleShortVersionString"], kv["CFBundleVersion"]
	switch {
	case version == "":
		return "", "", fmt.Errorf("%s has no CFBundleShortVersionString", plist.Name)
	case !buildNumberRE.MatchString(build):
		return "", "", fmt.Errorf("%s: CFBundleVersion %q is not one to three numbers separated by dots", plist.Name, build)
	}
	return version, build, nil
}

// xmlPlistStrings returns the string values of an XML property list's
// top-level dictionary.
func xmlPlistStrings(b []byte) (map[string]string, error) {
	dec := xml.NewDecoder(bytes.NewReader(b))
	out := map[string]string{}
	depth, key := 0, ""
	var inKey, inString bool
	var text strings.Builder
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("not a property list: %w", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			if depth == 1 && t.Name.Local != "plist" || depth == 2 && t.Name.Local != "dict" {
				return nil, errors.New("not a property list with a dictionary at the top")
			}
			inKey, inString = depth == 3 && t.Name.Local == "key", depth == 3 && t.Name.Local == "string"
			text.Reset()
		case xml.CharData:
			if inKey || inString {
				text.Write(t)
			}
		case xml.EndElement:
			switch {
			case inKey:
				key = text.String()
			case inString && key != "":
				out[key] = strings.TrimSpace(text.String())
				key = ""
			case depth == 3:
				key = ""
			}
			inKey, inString = false, false
			depth--
		}
	}
	return out, nil
}

// Limits of binaryPlistStrings: keys longer than maxPlistKey bytes are not
// decoded (Info.plist keys are short ASCII names), and it gives up once it
// has decoded maxPlistDecoded bytes of strings.
const (
	maxPlistKey     = 128
	maxPlistDecoded = 1 << 20
)

// binaryPlistStrings returns the string values of a binary property list's
// top-level dictionary (the format Xcode writes into IPAs); with keys, only
// those. Each string object is decoded once however many entries refer to
// it, keys only when they are short ASCII, and no more than
// maxPlistDecoded bytes in all, so a hostile file cannot make it quadratic;
// it checks ctx as it goes.
func binaryPlistStrings(ctx context.Context, b []byte, keys ...string) (map[string]string, error) {
	bad := errors.New("malformed binary property list")
	if len(b) < 8+32 {
		return nil, bad
	}
	t := b[len(b)-32:]
	offSize, refSize := int(t[6]), int(t[7])
	numObj, top, table := binary.BigEndian.Uint64(t[8:]), binary.BigEndian.Uint64(t[16:]), binary.BigEndian.Uint64(t[24:])
	end := uint64(len(b) - 32)
	if offSize < 1 || offSize > 8 || refSize < 1 || refSize > 8 || numObj == 0 || numObj > 1<<20 || top >= numObj ||
		table < 8 || table > end || numObj*uint64(offSize) > end-table {
		return nil, bad
	}
	be := func(p []byte) uint64 {
		var n uint64
		for _, c := range p {
			n = n<<8 | uint64(c)
		}
		return n
	}
	offset := func(i uint64) (uint64, bool) {
		if i >= numObj {
			return 0, false
		}
		at := table + i*uint64(offSize)
		o := be(b[at : at+uint64(offSize)])
		return o, o >= 8 && o < table
	}
	// header returns an object's type nibble, count and where its data starts.
	header := func(o uint64) (kind byte, n, data uint64, ok bool) {
		m := b[o]
		kind, n, data = m>>4, uint64(m&0xF), o+1
		if n == 0xF {
			if data >= table || b[data]>>4 != 0x1 {
				return 0, 0, 0, false
			}
			w := uint64(1) << (b[data] & 0xF)
			if w > 8 || data+1+w > table {
				return 0, 0, 0, false
			}
			n, data = be(b[data+1:data+1+w]), data+1+w
		}
		return kind, n, data, true
	}
	type decoded struct {
		s  string
		ok bool
	}
	cache := map[uint64]decoded{}
	var total uint64
	errTooMuch := fmt.Errorf("binary property list: more than %d bytes of strings", maxPlistDecoded)
	// str decodes string object i, at most once; asciiMax > 0 accepts only
	// ASCII strings that short.
	str := func(i uint64, asciiMax uint64) (string, bool, error) {
		if d, seen := cache[i]; seen {
			return d.s, d.ok, nil
		}
		o, ok := offset(i)
		if !ok {
			cache[i] = decoded{}
			return "", false, nil
		}
		kind, n, data, ok := header(o)
		var d decoded
		switch {
		case !ok:
		case asciiMax > 0 && (kind != 0x5 || n > asciiMax):
			return "", false, nil // not cached: the same object may be a wanted value
		case kind == 0x5 && n <= table-data: // ASCII
			if total += n; total > maxPlistDecoded {
				return "", false, errTooMuch
			}
			d = decoded{string(b[data : data+n]), true}
		case kind == 0x6 && n <= (table-data)/2: // UTF-16BE
			if total += 2 * n; total > maxPlistDecoded {
				return "", false, errTooMuch
			}
			u := make([]uint16, n)
			for k := range u {
				u[k] = binary.BigEndian.Uint16(b[data+2*uint64(k):])
			}
			d = decoded{string(utf16.Decode(u)), true}
		}
		cache[i] = d
		return d.s, d.ok, nil
	}
	o, ok := offset(top)
	if !ok {
		return nil, bad
	}
	kind, n, data, ok := header(o)
	if !ok || kind != 0xD || n > (table-data)/uint64(2*refSize) {
		return nil, errors.New("binary property list: the top object is not a dictionary")
	}
	out := map[string]string{}
	for k := uint64(0); k < n; k++ {
		if k%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		kp := data + k*uint64(refSize)
		vp := data + (n+k)*uint64(refSize)
		key, ok, err := str(be(b[kp:kp+uint64(refSize)]), maxPlistKey)
		if err != nil {
			return nil, err
		}
		if !ok || (len(keys) > 0 && !slices.Contains(keys, key)) {
			continue
		}
		v, ok, err := str(be(b[vp:vp+uint64(refSize)]), 0)
		if err != nil {
			return nil, err
		}
		if ok {
			out[key] = v
		}
	}
	return out, nil
}
