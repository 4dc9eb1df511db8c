package gitlocal

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/swapjoy/releasepilot/internal/nativecheck"
)

// Options configure Check.
type Options struct {
	// Dir is a directory of the checkout; it is the app root unless
	// Rules.Root is set.
	Dir string
	// Rev is the commit to fingerprint (default HEAD).
	Rev string
	// Against, when set, is the revision of the binaries in users' hands
	// (a release tag, say): the result says whether Rev can ship over the
	// air to them.
	Against string
	// Rules adapt the defaults to the app; an empty Root means Dir.
	Rules nativecheck.Rules
	// Platforms to judge (default both).
	Platforms []nativecheck.Platform
	// Packages inspects npm packages (an nativecheck.Registry); nil counts
	// every dependency as native.
	Packages nativecheck.Inspector
}

// Report is what `releasepilot fingerprint` prints.
type Report struct {
	Rev          string                                           `json:"rev"`
	Commit       string                                           `json:"commit"`
	Root         string                                           `json:"root"`
	Fingerprints map[nativecheck.Platform]nativecheck.Fingerprint `json:"fingerprints"`
	Against      *Against                                         `json:"against,omitempty"`
	// Uncommitted lists changes that are not part of the fingerprint.
	Uncommitted []string               `json:"uncommitted,omitempty"`
	Platforms   []nativecheck.Platform `json:"platforms"`
}

// Against is the comparison with the binaries' revision.
type Against struct {
	Rev          string                    `json:"rev"`
	Commit       string                    `json:"commit"`
	Explanations []nativecheck.Explanation `json:"explanations"`
	OTAEligible  bool                      `json:"ota_eligible"`
}

// Exit codes of the command.
const (
	ExitOTAEligible = 0
	ExitNative      = 3
)

// ExitCode is 3 when the change is native on a platform, else 0.
func (r Report) ExitCode() int {
	if r.Against != nil && !r.Against.OTAEligible {
		return ExitNative
	}
	return ExitOTAEligible
}

// IsUsage reports errors that come from what the user asked (not a git
// checkout, an unknown revision, bad rules): the command exits 2.
func IsUsage(err error) bool {
	var u usageError
	return errors.Is(err, ErrNotRepository) || errors.Is(err, ErrUnknownRef) || errors.As(err, &u)
}

type usageError struct{ error }

func (u usageError) Unwrap() error { return u.error }

// Check fingerprints a commit of a local checkout and, with Against,
// says whether it could ship over the air to binaries built from that
// revision, with the explanation the service would give.
func Check(ctx context.Context, o Options) (Report, error) {
	repo, err := Open(ctx, o.Dir)
	if err != nil {
		return Report{}, err
	}
	defer repo.Close()
	rules := o.Rules
	if rules.Root == "" {
		rules.Root = strings.TrimSuffix(repo.Prefix, "/")
	}
	if err := rules.Validate(); err != nil {
		return Report{}, usageError{err}
	}
	// Platforms in nativecheck's stable order, each once.
	var pls []nativecheck.Platform
	for _, pl := range nativecheck.Platforms {
		if len(o.Platforms) == 0 || slices.Contains(o.Platforms, pl) {
			pls = append(pls, pl)
		}
	}
	rev := o.Rev
	if rev == "" {
		rev = "HEAD"
	}
	r := Report{Rev: rev, Root: rules.Root, Platforms: pls}
	if r.Commit, err = repo.Resolve(ctx, rev); err != nil {
		return Report{}, err
	}
	if rev == "HEAD" {
		if r.Uncommitted, err = repo.Dirty(ctx); err != nil {
			return Report{}, err
		}
	}
	f := &nativecheck.Fingerprinter{Rules: rules, Packages: o.Packages}
	if o.Against == "" {
		if r.Fingerprints, err = f.Fingerprint(ctx, repo, r.Commit); err != nil {
			return Report{}, err
		}
		return r, nil
	}
	base, err := repo.Resolve(ctx, o.Against)
	if err != nil {
		return Report{}, err
	}
	cmp, err := f.Compare(ctx, repo, base, r.Commit, pls...)
	if err != nil {
		return Report{}, err
	}
	r.Fingerprints = cmp.Head
	r.Against = &Against{Rev: o.Against, Commit: base, Explanations: cmp.Explanations, OTAEligible: !cmp.Native()}
	return r, nil
}

// WriteText prints the report for people.
func (r Report) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "commit %s (%s)", short(r.Commit), r.Rev)
	if r.Root != "" {
		fmt.Fprintf(&b, ", app root %s", r.Root)
	}
	b.WriteString("\n")
	for _, pl := range r.Platforms {
		fp := r.Fingerprints[pl]
		fmt.Fprintf(&b, "  %-8s %s  %d native files, %d native packages, %d config fields\n", pl, fp.Hash, len(fp.Files), len(fp.Packages), len(fp.Config))
	}
	if n := len(r.Uncommitted); n > 0 {
		fmt.Fprintf(&b, "note: %d uncommitted change(s) are not included; the fingerprint is of commit %s\n", n, short(r.Commit))
	}
	if r.Against != nil {
		fmt.Fprintf(&b, "\nagainst %s (commit %s):\n", r.Against.Rev, short(r.Against.Commit))
		for _, ex := range r.Against.Explanations {
			b.WriteString(ex.String())
			b.WriteString("\n")
		}
		if r.Against.OTAEligible {
			fmt.Fprintf(&b, "\nJS-only: this change can ship over the air to binaries built from %s (exit 0)\n", r.Against.Rev)
		} else {
			fmt.Fprintf(&b, "\nnative change: it needs a store build; it must not ship over the air to binaries built from %s (exit 3)\n", r.Against.Rev)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteJSON prints the report for machines.
func (r Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

func short(sha string) string {
	if len(sha) > 12 {
		return sha[:12]
	}
	return sha
}
