package jobs

// Test knobs.
func WithoutUniqueTicks(c Config) Config { c.noUniqueTicks = true; return c }
func WithFastPoll(c Config) Config       { c.FastPoll = true; return c }

// StopBeating stops the replica's heartbeat (and its reaping) while River
// keeps running: how a frozen or killed process looks to the others.
func (r *Runner) StopBeating() {
	if r.beatStop != nil {
		r.beatStop()
		<-r.beatDone
		r.beatStop = nil
	}
}
