package ioslane

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/swapjoy/releasepilot/appstore"
	"github.com/swapjoy/releasepilot/internal/config"
	"github.com/swapjoy/releasepilot/internal/jobs/lane"
)

// wait snoozes the job until the next poll, with the reason in the lane's
// status, or fails the lane once it has waited longer than what's
// deadline (limit).
func (r *iosRun) wait(ctx context.Context, what string, reason string) error {
	now, d := r.x.now(), &r.data
	limit := r.limit(what)
	if d.Waiting != what || d.WaitingSince.IsZero() {
		d.Waiting, d.WaitingSince, d.Polls = what, now, 0
		if err := r.progress(ctx, "ios.waiting", map[string]any{"waiting": what, "reason": reason, "limit": limit.String()}); err != nil {
			return err
		}
	}
	if now.Sub(d.WaitingSince) >= limit {
		return lane.Fail("%s after %s", reason, limit)
	}
	if err := lane.Waiting(ctx, r.x.Store, r.l.ID, lane.WaitReason(reason, d.WaitingSince, limit), now); err != nil {
		return err
	}
	after := r.x.pollDelay(r.app.IOS.PollInterval.D(), d.Polls)
	d.Polls++
	if err := r.save(ctx); err != nil {
		return err
	}
	return &lane.Wait{After: after, Reason: reason}
}

// limit is the deadline of a wait: ios.processing_timeout for the build
// (appearing, processing, TestFlight's own processing, export compliance
// review), ios.review_timeout for reviews and for another build, version
// or submission of the app that is in review first.
func (r *iosRun) limit(what string) time.Duration {
	orDefault := func(d config.Duration, def time.Duration) time.Duration {
		if d <= 0 {
			return def
		}
		return d.D()
	}
	switch what {
	case "pickup", "asset", "processing", "beta_processing", "export_compliance_review":
		return orDefault(r.app.IOS.ProcessingTimeout, config.DefaultProcessingTimeout)
	}
	return orDefault(r.app.IOS.ReviewTimeout, config.DefaultReviewTimeout)
}

// pollDelay is the wait before poll number polls+1: the configured interval
// growing ×1.5 per poll up to MaxPoll, and longer while the hourly budget
// runs low (the window rolls, so waiting frees calls).
func (x *IOS) pollDelay(first time.Duration, polls int) time.Duration {
	if first <= 0 {
		first = 30 * time.Second
	}
	maxPoll := x.MaxPoll
	if maxPoll <= 0 {
		maxPoll = 10 * time.Minute
	}
	d := first
	for i := 0; i < polls && d < maxPoll; i++ {
		d = d * 3 / 2
	}
	d = min(d, maxPoll)
	if rl := x.ASC.RateLimit(); rl.Known && rl.Limit > 0 {
		switch {
		case rl.Remaining*20 <= rl.Limit: // 5 % or less left
			d = max(d, 2*maxPoll)
		case rl.Remaining*5 <= rl.Limit: // 20 % or less left
			d = max(2*d, maxPoll)
		}
	}
	return d
}

// rateLimitWait is how long to wait once the hourly budget is spent: Apple
// sends no time, and the window rolls over an hour.
const rateLimitWait = 15 * time.Minute

// iosBudgetWait is a wait for App Store Connect's hourly budget to return.
type iosBudgetWait struct {
	after  time.Duration
	reason string
}

func (e *iosBudgetWait) Error() string { return e.reason }

// ascFailure sorts an App Store Connect error: an exhausted budget waits,
// outages are retried, refusals fail the lane with the reason.
func ascFailure(step string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	if errors.Is(err, appstore.ErrRateLimited) {
		after := rateLimitWait
		var ae *appstore.APIError
		if errors.As(err, &ae) && ae.RetryAfter > after {
			after = ae.RetryAfter
		}
		return &iosBudgetWait{after: after, reason: fmt.Sprintf("%s: App Store Connect's hourly request budget is spent; trying again in %s", step, after)}
	}
	if appstore.Temporary(err) {
		return fmt.Errorf("%s: %w", step, err)
	}
	if errors.Is(err, appstore.ErrAmbiguous) {
		return &lane.Failure{Reason: fmt.Sprintf("%s: %v", step, err)}
	}
	var ve *appstore.ValidationError
	var ae *appstore.APIError
	if errors.As(err, &ve) || (errors.As(err, &ae) && ae.Status >= 400 && ae.Status < 500) {
		return &lane.Failure{Reason: fmt.Sprintf("%s: %v", step, err)}
	}
	return fmt.Errorf("%s: %w", step, err)
}
