package config

import (
	"fmt"
	"time"
)

// Dashboard configures the release dashboard served at "/".
type Dashboard struct {
	// SessionTTL is how long a sign-in lasts (default 12h).
	SessionTTL Duration `yaml:"session_ttl"`
	// SecureCookies marks the session cookie Secure on every request, for
	// a dashboard behind a proxy that terminates TLS. Without it the
	// cookie is Secure when the request itself came over TLS.
	SecureCookies bool `yaml:"secure_cookies"`
	// LiveInterval is how often the audit log is read for live lane
	// updates (default 1s).
	LiveInterval Duration `yaml:"live_interval"`
}

// Dashboard defaults.
const (
	DefaultSessionTTL   = 12 * time.Hour
	DefaultLiveInterval = time.Second
)

func (d *Dashboard) applyDefaults() {
	if d.SessionTTL == 0 {
		d.SessionTTL = Duration(DefaultSessionTTL)
	}
	if d.LiveInterval == 0 {
		d.LiveInterval = Duration(DefaultLiveInterval)
	}
}

func (d Dashboard) validate() error {
	if t := d.SessionTTL.D(); t < time.Minute || t > 30*24*time.Hour {
		return fmt.Errorf("dashboard.session_ttl: %s is not between 1m and 720h", t)
	}
	if t := d.LiveInterval.D(); t < 100*time.Millisecond || t > time.Minute {
		return fmt.Errorf("dashboard.live_interval: %s is not between 100ms and 1m", t)
	}
	return nil
}
