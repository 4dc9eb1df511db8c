package nativecheck

import (
	"context"
	"fmt"
)

// Comparison is how the native fingerprints of a candidate commit (Head)
// differ from those of a base commit (Base), per platform.
type Comparison struct {
	Base, Head   map[Platform]Fingerprint
	Explanations []Explanation // in the order of the platforms compared
}

// Native reports whether any platform changed natively: the candidate
// cannot ship over the air to binaries built from the base.
func (c Comparison) Native() bool {
	for _, ex := range c.Explanations {
		if ex.Native {
			return true
		}
	}
	return false
}

// Compare fingerprints two commits of one repository and explains, for
// each of platforms (every platform when empty), what differs. The
// explanation is the one the service puts in a release plan.
func (f *Fingerprinter) Compare(ctx context.Context, src Source, base, head string, platforms ...Platform) (Comparison, error) {
	if len(platforms) == 0 {
		platforms = Platforms
	}
	var c Comparison
	var err error
	if c.Head, err = f.Fingerprint(ctx, src, head); err != nil {
		return c, fmt.Errorf("fingerprint %s: %w", head, err)
	}
	if c.Base, err = f.Fingerprint(ctx, src, base); err != nil {
		return c, fmt.Errorf("fingerprint %s: %w", base, err)
	}
	for _, pl := range platforms {
		c.Explanations = append(c.Explanations, Explain(c.Base[pl], c.Head[pl]))
	}
	return c, nil
}
