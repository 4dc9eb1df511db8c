package playstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/api/androidpublisher/v3"
	"google.golang.org/api/googleapi"
	"google.golang.org/api/option"
	reporting "google.golang.org/api/playdeveloperreporting/v1beta1"
)

// Config configures a Client. Zero fields take the defaults named.
type Config struct {
	// CredentialsJSON is a service-account key file's content. It is used for
	// auth only and never appears in errors or logs. Exactly one of
	// CredentialsJSON, CredentialsFile and HTTPClient must be set.
	CredentialsJSON []byte
	// CredentialsFile is the path of a service-account key file.
	CredentialsFile string
	// TokenURL, when set, replaces the key's token_uri (a fake's /token).
	TokenURL string
	// HTTPClient, when set, is used as is: the caller handles auth.
	HTTPClient *http.Client

	// Endpoint of androidpublisher, default https://androidpublisher.googleapis.com/.
	// A full URL; uploads always go to its host root, so serve it at the root.
	Endpoint string
	// ReportingEndpoint of the Reporting API, default
	// https://playdeveloperreporting.googleapis.com/.
	ReportingEndpoint string

	// Ledger records every versionCode before it is sent; default an in-memory one.
	Ledger VersionCodeLedger
	// Retry bounds retries of reads and track writes.
	Retry RetryPolicy
	// UploadChunkSize: media larger than this goes resumable, in chunks of
	// this size. Default 16 MiB (the Go client's). Must be a multiple of 256 KiB.
	UploadChunkSize int
	// Sleep waits between retries; default a timer. Tests inject a fake.
	Sleep func(ctx context.Context, d time.Duration) error
	// Logger gets retries and restarts at Info; default discards.
	Logger *slog.Logger
	// VitalsUnit is the unit of the Reporting API's rates: VitalsPercent
	// (the default, as the discovery document states) or VitalsFraction.
	VitalsUnit VitalsUnit
}

// RetryPolicy bounds the retries of one API call. Zero fields take defaults.
type RetryPolicy struct {
	MaxAttempts int           // per call, default 5
	BaseDelay   time.Duration // first backoff, default 1s, doubled each time
	MaxDelay    time.Duration // default 32s
	MaxEdits    int           // fresh edits per operation, default 4
}

// Client drives Play. It is safe for concurrent use; operations on the same
// app are serialised by Play's one-edit-per-user rule, not by the Client, so
// callers should run one operation per app at a time.
type Client struct {
	pub    *androidpublisher.Service
	rep    *reporting.Service
	ledger VersionCodeLedger
	retry  RetryPolicy
	chunk  int
	sleep  func(ctx context.Context, d time.Duration) error
	log    *slog.Logger

	mu         sync.Mutex
	vitalsUnit VitalsUnit

	notSent map[string]bool // per app: last commit needed changesNotSentForReview=true
	stats   map[string]OpStats
}

// OpStats counts one kind of operation: how often it ran and how many Play
// API requests (each retry counts, token requests do not) it cost in total.
type OpStats struct {
	Ops   int
	Calls int
}

// New builds a Client. It fetches no token until the first call.
func New(ctx context.Context, cfg Config) (*Client, error) {
	var auth []option.ClientOption
	set := 0
	for _, b := range []bool{len(cfg.CredentialsJSON) > 0, cfg.CredentialsFile != "", cfg.HTTPClient != nil} {
		if b {
			set++
		}
	}
	if set != 1 {
		return nil, invalid("exactly one of CredentialsJSON, CredentialsFile and HTTPClient must be set (%d are)", set)
	}
	switch cfg.VitalsUnit {
	case "":
		cfg.VitalsUnit = VitalsPercent
	case VitalsPercent, VitalsFraction:
	default:
		return nil, invalid("VitalsUnit %q: want %q or %q", cfg.VitalsUnit, VitalsPercent, VitalsFraction)
	}
	if cfg.TokenURL != "" && cfg.CredentialsFile != "" {
		js, err := os.ReadFile(cfg.CredentialsFile)
		if err != nil {
			return nil, invalid("CredentialsFile %q: %v", cfg.CredentialsFile, err)
		}
		cfg.CredentialsJSON, cfg.CredentialsFile = js, ""
	}
	for _, ep := range []*string{&cfg.Endpoint, &cfg.ReportingEndpoint} {
		if *ep != "" && !strings.HasSuffix(*ep, "/") {
			*ep += "/"
		}
	}
	switch {
	case cfg.HTTPClient != nil:
		auth = append(auth, option.WithHTTPClient(cfg.HTTPClient))
	case cfg.CredentialsFile != "":
		auth = append(auth, option.WithAuthCredentialsFile(option.ServiceAccount, cfg.CredentialsFile))
	default:
		js := cfg.CredentialsJSON
		var probe map[string]any
		if err := json.Unmarshal(js, &probe); err != nil {
			// The key's bytes stay out of the message.
			return nil, invalid("CredentialsJSON is not JSON")
		}
		if probe["type"] != "service_account" {
			return nil, invalid("CredentialsJSON: type is %q, want \"service_account\"", fmt.Sprint(probe["type"]))
		}
		if cfg.TokenURL != "" {
			probe["token_uri"] = cfg.TokenURL
			js, _ = json.Marshal(probe)
		}
		auth = append(auth, option.WithAuthCredentialsJSON(option.ServiceAccount, js))
	}
	pubOpts, repOpts := auth, auth
	if cfg.Endpoint != "" {
		pubOpts = append(pubOpts[:len(pubOpts):len(pubOpts)], option.WithEndpoint(cfg.Endpoint))
	}
	if cfg.ReportingEndpoint != "" {
		repOpts = append(repOpts[:len(repOpts):len(repOpts)], option.WithEndpoint(cfg.ReportingEndpoint))
	}
	pub, err := androidpublisher.NewService(ctx, pubOpts...)
	if err != nil {
		return nil, fmt.Errorf("playstore: androidpublisher client: %w", scrub(err))
	}
	rep, err := reporting.NewService(ctx, repOpts...)
	if err != nil {
		return nil, fmt.Errorf("playstore: reporting client: %w", scrub(err))
	}
	c := &Client{pub: pub, rep: rep, ledger: cfg.Ledger, retry: cfg.Retry, chunk: cfg.UploadChunkSize,
		sleep: cfg.Sleep, log: cfg.Logger, vitalsUnit: cfg.VitalsUnit,
		notSent: map[string]bool{}, stats: map[string]OpStats{}}
	if c.ledger == nil {
		c.ledger = NewMemoryLedger()
	}
	if c.retry.MaxAttempts <= 0 {
		c.retry.MaxAttempts = 5
	}
	if c.retry.BaseDelay <= 0 {
		c.retry.BaseDelay = time.Second
	}
	if c.retry.MaxDelay <= 0 {
		c.retry.MaxDelay = 32 * time.Second
	}
	if c.retry.MaxEdits <= 0 {
		c.retry.MaxEdits = 4
	}
	if c.chunk <= 0 {
		c.chunk = googleapi.DefaultUploadChunkSize
	}
	if c.sleep == nil {
		c.sleep = sleepTimer
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	return c, nil
}

// scrub keeps credential parsing errors from echoing key material: only the
// error's type and a fixed text survive.
func scrub(err error) error {
	return fmt.Errorf("could not build the client from the given credentials (%T)", err)
}

func sleepTimer(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Stats returns, per operation name ("SetFraction", "UploadBundle", …), how
// many times it ran and how many API calls it cost.
func (c *Client) Stats() map[string]OpStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]OpStats, len(c.stats))
	for k, v := range c.stats {
		out[k] = v
	}
	return out
}

// op is one public operation in flight: its name and API call count.
// rolloutOnly marks an operation that only moves a rollout (fraction,
// halt, resume, complete): its commits must not cancel a review in
// progress.
type op struct {
	name        string
	calls       int
	rolloutOnly bool
}

func (c *Client) finish(o *op) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.stats[o.name]
	s.Ops++
	s.Calls += o.calls
	c.stats[o.name] = s
}

// call runs one API request, retrying transient failures with backoff when
// the request is safe to repeat.
func (c *Client) call(ctx context.Context, o *op, method string, idempotent bool, fn func() error) error {
	for attempt := 1; ; attempt++ {
		o.calls++
		err := fn()
		if err == nil {
			return nil
		}
		if !idempotent || !isTransient(err) || attempt >= c.retry.MaxAttempts {
			return err
		}
		d := c.backoff(attempt, err)
		c.log.InfoContext(ctx, "playstore: retrying", "op", o.name, "method", method, "attempt", attempt, "wait", d, "err", err.Error())
		if serr := c.sleep(ctx, d); serr != nil {
			return errors.Join(err, serr)
		}
	}
}

func (c *Client) backoff(attempt int, err error) time.Duration {
	d := c.retry.BaseDelay << (attempt - 1)
	if g := apiErr(err); g != nil && g.Header != nil {
		if s, perr := strconv.Atoi(g.Header.Get("Retry-After")); perr == nil && time.Duration(s)*time.Second > d {
			d = time.Duration(s) * time.Second
		}
	}
	return min(d, c.retry.MaxDelay)
}

func (c *Client) reviewFlag(pkg string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.notSent[pkg]
}

func (c *Client) setReviewFlag(pkg string, v bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.notSent[pkg] = v
}
