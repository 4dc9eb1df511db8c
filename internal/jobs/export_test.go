package jobs

// Test knobs.
func WithoutUniqueTicks(c Config) Config { c.noUniqueTicks = true; return c }
func WithFastPoll(c Config) Config       { c.FastPoll = true; return c }
