package playstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/api/androidpublisher/v3"
)

// edit is one open Play edit.
type edit struct {
	c   *Client
	o   *op
	pkg string
	id  string
}

// plan reads the edit's state, writes the change it wants and reports
// whether there is anything to commit. It must derive everything from what it
// reads, so that a re-run after a lost commit finds the change made and
// returns false. When writing fails it returns true with the error.
type plan func(ctx context.Context, e *edit) (bool, error)

// commitOutcome is what is known of one commit request.
type commitOutcome int

const (
	commitFailed  commitOutcome = iota // Play did not commit the edit, and never will
	commitDone                         // Play committed the edit
	commitUnknown                      // the request may or may not have been applied
)

// commitWatch follows the commit of edits whose outcome matters beyond the
// track (the versionCode ledger). before runs just before each commit
// request leaves (an error stops it); after learns how that commit ended.
type commitWatch struct {
	before func(ctx context.Context) error
	after  func(ctx context.Context, outcome commitOutcome) error
}

// mutate runs p in fresh edits until one commits, p finds nothing to do, or a
// permanent error. It reports whether the first plan that decided wanted a
// change.
func (c *Client) mutate(ctx context.Context, o *op, pkg string, p plan) (changed bool, err error) {
	return c.mutateWatched(ctx, o, pkg, p, nil)
}

// mutateWatched is mutate with w told of every commit request and its
// outcome. When a commit's outcome is unknown, w's edit is probed with
// edits.delete before any fresh edit is inserted: a delete that succeeds
// (or finds the edit deleted) proves Play never committed it, and "already
// committed" proves it did.
func (c *Client) mutateWatched(ctx context.Context, o *op, pkg string, p plan, w *commitWatch) (changed bool, err error) {
	var last error
	decided := false
	for attempt := 1; attempt <= c.retry.MaxEdits; attempt++ {
		if attempt > 1 {
			c.log.InfoContext(ctx, "playstore: starting a fresh edit", "op", o.name, "package", pkg, "attempt", attempt, "after", last.Error())
			if isTransient(last) {
				if err := c.sleep(ctx, c.backoff(attempt-1, last)); err != nil {
					return changed, errors.Join(last, err)
				}
			}
		}
		e, err := c.insertEdit(ctx, o, pkg)
		if err != nil {
			return changed, err
		}
		want, err := p(ctx, e)
		if !decided && (err == nil || want) {
			// The first plan that got to decide says whether the track needed
			// the change; later attempts may find it already made.
			changed, decided = want, true
		}
		if err != nil {
			if isEditGone(err) {
				last = err
				continue
			}
			e.discard(ctx)
			return changed, err
		}
		if !want {
			e.discard(ctx)
			return changed, nil
		}
		if w != nil {
			if err := w.before(ctx); err != nil {
				e.discard(ctx)
				return changed, err
			}
		}
		err = e.commit(ctx)
		probed := false
		if w != nil {
			outcome := outcomeOf(err)
			if outcome == commitUnknown && ctx.Err() == nil {
				// A cancelled caller gets no more calls: the outcome stays
				// unknown, and a later run reads it from Play's bundles.
				outcome, probed = e.probe(ctx), true
			}
			if aerr := w.after(ctx, outcome); aerr != nil {
				if err == nil {
					return changed, aerr
				}
				if !probed {
					e.discard(ctx)
				}
				return changed, errors.Join(err, aerr)
			}
			if outcome == commitDone {
				return changed, nil // the answer was lost, the commit was not
			}
		}
		if err == nil {
			return changed, nil
		}
		// Never re-send a commit: its outcome may be unknown (a 5xx after
		// Play applied it) or the edit is gone. Re-read in a fresh edit.
		if isTransient(err) || isEditGone(err) {
			last = err
			if attempt == c.retry.MaxEdits && isTransient(err) && !probed {
				e.discard(ctx) // giving up: leave nothing open
			}
			continue
		}
		if !probed {
			e.discard(ctx)
		}
		return changed, err
	}
	return changed, fmt.Errorf("playstore: %s on %s: no edit committed after %d attempts: %w", o.name, pkg, c.retry.MaxEdits, last)
}

func (c *Client) insertEdit(ctx context.Context, o *op, pkg string) (*edit, error) {
	var ae *androidpublisher.AppEdit
	err := c.call(ctx, o, "edits.insert", true, func() error {
		var err error
		ae, err = c.pub.Edits.Insert(pkg, &androidpublisher.AppEdit{}).Context(ctx).Do()
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("playstore: %s: insert edit for %s: %w", o.name, pkg, err)
	}
	return &edit{c: c, o: o, pkg: pkg, id: ae.Id}, nil
}

// commit sends the edit once; it flips changesNotSentForReview when Play
// names the flag, and remembers the answer for the app's next commits.
func (e *edit) commit(ctx context.Context) error {
	notSent := e.c.reviewFlag(e.pkg)
	for range 2 {
		err := e.c.call(ctx, e.o, "edits.commit", false, func() error {
			call := e.c.pub.Edits.Commit(e.pkg, e.id).ChangesNotSentForReview(notSent)
			if e.o.rolloutOnly {
				call = call.ChangesInReviewBehavior("ERROR_IF_IN_REVIEW")
			}
			_, err := call.Context(ctx).Do()
			return err
		})
		switch {
		case err == nil:
			return nil
		case e.o.rolloutOnly && changesInReview(err):
			return &ChangesInReviewError{Package: e.pkg, Op: e.o.name, Err: err}
		case !notSent && needsNotSentForReview(err), notSent && mustNotSetNotSentForReview(err):
			notSent = !notSent
			e.c.setReviewFlag(e.pkg, notSent)
			e.c.log.InfoContext(ctx, "playstore: commit refused for review mode; flipping changesNotSentForReview", "package", e.pkg, "changesNotSentForReview", notSent)
			continue
		default:
			return fmt.Errorf("playstore: %s: commit edit of %s: %w", e.o.name, e.pkg, err)
		}
	}
	return fmt.Errorf("playstore: %s: commit edit of %s: Play refused changesNotSentForReview both ways", e.o.name, e.pkg)
}

// outcomeOf reads a commit's answer. Only Play's own 4xx refusal proves the
// edit was not committed; a 5xx, a lost connection, a cancelled context or
// an unreadable answer leave it unknown.
func outcomeOf(err error) commitOutcome {
	if err == nil || alreadyCommitted(err) {
		return commitDone
	}
	if g := apiErr(err); g != nil && g.Code >= 400 && g.Code < 500 {
		return commitFailed
	}
	return commitUnknown
}

// probe finds out whether Play committed the edit after a commit with an
// unknown outcome, by deleting it: a committed edit cannot be deleted and
// says so, a deleted one can never commit. Anything else leaves the
// outcome unknown.
func (e *edit) probe(ctx context.Context) commitOutcome {
	err := e.c.call(ctx, e.o, "edits.delete", true, func() error {
		return e.c.pub.Edits.Delete(e.pkg, e.id).Context(ctx).Do()
	})
	switch {
	case err == nil, editDeleted(err):
		return commitFailed
	case alreadyCommitted(err):
		return commitDone
	}
	e.c.log.InfoContext(ctx, "playstore: could not tell whether an edit committed", "package", e.pkg, "err", err.Error())
	return commitUnknown
}

// discard deletes the edit so nothing half-done lingers. Best effort: it
// runs even when ctx is cancelled, and its failure changes nothing.
func (e *edit) discard(ctx context.Context) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	e.o.calls++
	if err := e.c.pub.Edits.Delete(e.pkg, e.id).Context(ctx).Do(); err != nil {
		e.c.log.InfoContext(ctx, "playstore: could not delete edit", "package", e.pkg, "err", err.Error())
	}
}

func (e *edit) getTrack(ctx context.Context, track string) (*androidpublisher.Track, error) {
	var t *androidpublisher.Track
	err := e.c.call(ctx, e.o, "edits.tracks.get", true, func() error {
		var err error
		t, err = e.c.pub.Edits.Tracks.Get(e.pkg, e.id, track).Context(ctx).Do()
		return err
	})
	if err != nil {
		if trackEmpty(err) {
			// Play's answer for a track that never had a release: a
			// track with no releases, not a missing one.
			return &androidpublisher.Track{Track: track}, nil
		}
		if g := apiErr(err); g != nil && g.Code == 404 && !isEditGone(err) {
			return nil, fmt.Errorf("%w: %s has no track %q: %v", ErrNotFound, e.pkg, track, err)
		}
		return nil, fmt.Errorf("playstore: %s: read track %q of %s: %w", e.o.name, track, e.pkg, err)
	}
	return t, nil
}

func (e *edit) putTrack(ctx context.Context, t *androidpublisher.Track) error {
	err := e.c.call(ctx, e.o, "edits.tracks.update", true, func() error {
		_, err := e.c.pub.Edits.Tracks.Update(e.pkg, e.id, t.Track, t).Context(ctx).Do()
		return err
	})
	if err != nil {
		return fmt.Errorf("playstore: %s: write track %q of %s: %w", e.o.name, t.Track, e.pkg, err)
	}
	return nil
}

func (e *edit) listBundles(ctx context.Context) ([]*androidpublisher.Bundle, error) {
	var r *androidpublisher.BundlesListResponse
	err := e.c.call(ctx, e.o, "edits.bundles.list", true, func() error {
		var err error
		r, err = e.c.pub.Edits.Bundles.List(e.pkg, e.id).Context(ctx).Do()
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("playstore: %s: list bundles of %s: %w", e.o.name, e.pkg, err)
	}
	return r.Bundles, nil
}
