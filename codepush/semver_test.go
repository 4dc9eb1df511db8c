package codepush

import (
	"encoding/json"
	"os"
	"testing"

	"github.com/stretchr/testify/require"
)

type semverOracle struct {
	Versions []string `json:"versions"`
	Ranges   []struct {
		Range     string `json:"range"`
		Valid     bool   `json:"valid"`
		Satisfies []bool `json:"satisfies"`
		Gtr       []bool `json:"gtr"`
	} `json:"ranges"`
	Valid []struct {
		Version string `json:"version"`
		Valid   bool   `json:"valid"`
	} `json:"valid"`
}

// TestSemverAgreesWithNodeSemver compares with answers recorded from
// node-semver 7 (testdata/gen-semver-oracle.js).
func TestSemverAgreesWithNodeSemver(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("testdata/semver-oracle.json")
	require.NoError(t, err)
	var o semverOracle
	require.NoError(t, json.Unmarshal(b, &o))
	require.NotEmpty(t, o.Ranges)
	for _, v := range o.Valid {
		_, ok := ParseVersion(v.Version)
		require.Equal(t, v.Valid, ok, "valid(%q)", v.Version)
	}
	for _, rc := range o.Ranges {
		r, ok := ParseRange(rc.Range)
		require.Equal(t, rc.Valid, ok, "validRange(%q)", rc.Range)
		if !ok {
			continue
		}
		for i, vs := range o.Versions {
			v, ok := ParseVersion(vs)
			require.True(t, ok, vs)
			require.Equal(t, rc.Satisfies[i], r.Satisfies(v), "satisfies(%q, %q) [%s]", vs, rc.Range, r)
			require.Equal(t, rc.Gtr[i], r.GreaterThanRange(v), "gtr(%q, %q) [%s]", vs, rc.Range, r)
		}
	}
}

func TestNormalizeAppVersion(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"2": "2.0.0", "2.0": "2.0.0", "2.0-beta": "2.0.0-beta", "1.4.0": "1.4.0", "1.4.0-rc.1": "1.4.0-rc.1",
		"2.1+7": "2.1.0", "v1.2.3": "1.2.3",
	} {
		v, ok := NormalizeAppVersion(in)
		require.True(t, ok, in)
		require.Equal(t, want, v.String(), in)
	}
	for _, in := range []string{"", "2-beta", "abc", "1.2.3.4", "01.2.3", "1.2.3-", "1..2"} {
		_, ok := NormalizeAppVersion(in)
		require.False(t, ok, in)
	}
}

func FuzzSemverRange(f *testing.F) {
	for _, s := range []string{"1.2.3", "*", "^1.2.3", "~1.2", "1.2.3 - 2.x", ">=1.0.0 <2 || 3.x", "1.2.3-beta.1", "v=1", "~>1", "<*"} {
		f.Add(s, "1.2.3")
		f.Add(s, "2.0.0-beta.1")
	}
	f.Fuzz(func(t *testing.T, rng, ver string) {
		r, ok := ParseRange(rng)
		v, vok := NormalizeAppVersion(ver)
		if ok && vok {
			sat := r.Satisfies(v)
			if sat && r.GreaterThanRange(v) {
				t.Fatalf("%q satisfies %q and is greater than it", ver, rng)
			}
			// The normalised form must mean the same range.
			r2, ok2 := ParseRange(r.String())
			if !ok2 {
				t.Fatalf("normalised %q of %q does not parse", r.String(), rng)
			}
			if r2.Satisfies(v) != sat {
				t.Fatalf("normalised %q of %q disagrees on %q", r.String(), rng, ver)
			}
		}
		if vok {
			if _, ok := ParseVersion(v.String()); !ok {
				t.Fatalf("String of %q does not parse: %q", ver, v.String())
			}
		}
	})
}
