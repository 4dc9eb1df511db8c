package androidlane

import (
	"archive/zip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// ManifestVersionCode reads android:versionCode from an Android App
// Bundle: base/manifest/AndroidManifest.xml, which bundletool stores as an
// aapt2 XmlNode protocol buffer (frameworks/base/tools/aapt2/Resources.proto).
// It reads the attribute's text value, else its compiled integer.
func ManifestVersionCode(r io.ReaderAt, size int64) (int64, error) {
	zr, err := zip.NewReader(r, size)
	if err != nil {
		return 0, fmt.Errorf("not an Android App Bundle (zip): %w", err)
	}
	const path = "base/manifest/AndroidManifest.xml"
	var mf *zip.File
	for _, f := range zr.File {
		if f.Name == path {
			mf = f
			break
		}
	}
	if mf == nil {
		return 0, fmt.Errorf("not an Android App Bundle: no %s", path)
	}
	if mf.UncompressedSize64 > 16<<20 {
		return 0, fmt.Errorf("%s is %d bytes: too large for a manifest", path, mf.UncompressedSize64)
	}
	rc, err := mf.Open()
	if err != nil {
		return 0, fmt.Errorf("open %s: %w", path, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, 16<<20))
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", path, err)
	}
	// XmlNode.element (1) → XmlElement.attribute (4).
	elem, err := protoField(b, 1)
	if err != nil || elem == nil {
		return 0, fmt.Errorf("%s: no root element in the protocol buffer manifest", path)
	}
	if name, _ := protoField(elem, 3); string(name) != "manifest" {
		return 0, fmt.Errorf("%s: root element is %q, not manifest", path, name)
	}
	var found bool
	var vc int64
	err = protoEach(elem, 4, func(attr []byte) error {
		if found {
			return nil
		}
		ns, _ := protoField(attr, 1)
		name, _ := protoField(attr, 2)
		resID, _ := protoVarint(attr, 5)
		if !(resID == versionCodeResID || (string(name) == "versionCode" && string(ns) == androidNS)) {
			return nil
		}
		found = true
		if v, _ := protoField(attr, 3); len(v) > 0 {
			n, err := strconv.ParseInt(strings.TrimSpace(string(v)), 0, 64)
			if err != nil {
				return fmt.Errorf("android:versionCode %q is not a number", v)
			}
			vc = n
			return nil
		}
		// compiled_item (6) → prim (7) → int_decimal_value (6) or int_hexadecimal_value (7).
		item, _ := protoField(attr, 6)
		prim, _ := protoField(item, 7)
		if n, ok := protoVarint(prim, 6); ok {
			vc = int64(int32(n))
		} else if n, ok := protoVarint(prim, 7); ok {
			vc = int64(uint32(n))
		}
		return nil
	})
	switch {
	case err != nil:
		return 0, fmt.Errorf("%s: %w", path, err)
	case !found:
		return 0, fmt.Errorf("%s: no android:versionCode", path)
	case vc <= 0 || vc > math.MaxInt32:
		return 0, fmt.Errorf("%s: android:versionCode %d is not a positive 32-bit number", path, vc)
	}
	return vc, nil
}

const (
	androidNS        = "http://schemas.android.com/apk/res/android"
	versionCodeResID = 0x0101021b
)

// protoEach calls fn with every length-delimited field num of a message.
func protoEach(msg []byte, num uint64, fn func([]byte) error) error {
	return protoWalk(msg, func(n, wire uint64, v []byte, _ uint64) error {
		if n == num && wire == 2 {
			return fn(v)
		}
		return nil
	})
}

// protoField returns the last length-delimited field num (nil if absent).
func protoField(msg []byte, num uint64) ([]byte, error) {
	var out []byte
	err := protoEach(msg, num, func(v []byte) error { out = v; return nil })
	return out, err
}

// protoVarint returns the last varint field num.
func protoVarint(msg []byte, num uint64) (uint64, bool) {
	var out uint64
	ok := false
	_ = protoWalk(msg, func(n, wire uint64, _ []byte, x uint64) error {
		if n == num && wire == 0 {
			out, ok = x, true
		}
		return nil
	})
	return out, ok
}

// protoWalk decodes the fields of one protocol buffer message.
func protoWalk(msg []byte, fn func(num, wire uint64, v []byte, x uint64) error) error {
	for len(msg) > 0 {
		tag, n := binary.Uvarint(msg)
		if n <= 0 {
			return errors.New("malformed protocol buffer (tag)")
		}
		msg = msg[n:]
		num, wire := tag>>3, tag&7
		switch wire {
		case 0:
			x, n := binary.Uvarint(msg)
			if n <= 0 {
				return errors.New("malformed protocol buffer (varint)")
			}
			msg = msg[n:]
			if err := fn(num, wire, nil, x); err != nil {
				return err
			}
		case 1:
			if len(msg) < 8 {
				return errors.New("malformed protocol buffer (fixed64)")
			}
			msg = msg[8:]
		case 5:
			if len(msg) < 4 {
				return errors.New("malformed protocol buffer (fixed32)")
			}
			msg = msg[4:]
		case 2:
			l, n := binary.Uvarint(msg)
			if n <= 0 || l > uint64(len(msg)-n) {
				return errors.New("malformed protocol buffer (length)")
			}
			v := msg[n : n+int(l)]
			msg = msg[n+int(l):]
			if err := fn(num, wire, v, 0); err != nil {
				return err
			}
		default:
			return fmt.Errorf("malformed protocol buffer (wire type %d)", wire)
		}
	}
	return nil
}
