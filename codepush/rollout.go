package codepush

import "unicode/utf16"

// rolloutHash is getHashCode from code-push-server's rollout-selector.ts. It is
// not Java's String.hashCode: JavaScript truncates only the shifted value to
// int32, the subtraction and addition happen in float64, so the hash grows past
// 32 bits. int64 reproduces those integral values exactly.
func rolloutHash(s string) int64 {
	var h int64
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return rolloutHashUTF16(s)
		}
		h = int64(int32(h)<<5) - h + int64(s[i])
	}
	return h
}

func rolloutHashUTF16(s string) int64 {
	var h int64
	for _, cu := range utf16.Encode([]rune(s)) { // charCodeAt counts UTF-16 code units
		h = int64(int32(h)<<5) - h + int64(cu)
	}
	return h
}

// InRollout reports whether the device clientID is among the rollout percent
// of devices that receive the release tagged tag (its label, or its package
// hash when it has no label), exactly as Microsoft's server decides it.
func InRollout(clientID string, rollout int, tag string) bool {
	h := rolloutHash(clientID + "-" + tag)
	if h < 0 {
		h = -h
	}
	return h%100 < int64(rollout)
}

// unfinishedRollout mirrors isUnfinishedRollout: 0 and 100 both mean "everyone".
func unfinishedRollout(rollout int) bool { return rollout != 0 && rollout != 100 }
