//go:build load

package loadtest

import (
	"fmt"
	"os"
	"strconv"
	"time"
)

// The load benchmarks' knobs come from the environment (and, for the intake
// benchmark, flags defaulting to it). Unset means the figures; a
// value that does not parse, or is out of range, stops the run naming the
// variable and the value rather than measuring something else.

func envInt(name string, def, least int) int {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < least {
		badEnv(name, s, fmt.Sprintf("a whole number of at least %d", least))
	}
	return n
}

func envFloat(name string, def float64) float64 {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || !(v > 0) {
		badEnv(name, s, "a positive number")
	}
	return v
}

func envDuration(name string, def time.Duration) time.Duration {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	v, err := time.ParseDuration(s)
	if err != nil || v <= 0 {
		badEnv(name, s, "a positive duration such as 60s")
	}
	return v
}

func badEnv(name, value, want string) {
	fmt.Fprintf(os.Stderr, "loadtest: %s=%q: want %s\n", name, value, want)
	os.Exit(2)
}
