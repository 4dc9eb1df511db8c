package httpapi

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics is releasepilot's own Prometheus registry.
type Metrics struct {
	Registry *prometheus.Registry
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	jobs     *prometheus.CounterVec
	webhooks *prometheus.CounterVec
	// series caches each route's counter and histogram by seriesKey, so
	// that a request does not hash and validate its label values again.
	series sync.Map
}

// seriesKey is a request's labels: a route pattern, a method from a fixed
// set and a status, all bounded, so the cache is too.
type seriesKey struct {
	route, method string
	status        int
}

type routeSeries struct {
	requests prometheus.Counter
	duration prometheus.Observer
}

func (m *Metrics) routeSeries(k seriesKey) *routeSeries {
	if s, ok := m.series.Load(k); ok {
		return s.(*routeSeries)
	}
	s, _ := m.series.LoadOrStore(k, &routeSeries{
		requests: m.requests.WithLabelValues(k.route, k.method, strconv.Itoa(k.status)),
		duration: m.duration.WithLabelValues(k.route),
	})
	return s.(*routeSeries)
}

// NewMetrics registers the HTTP, job and process metrics.
func NewMetrics() *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "releasepilot_http_requests_total",
			Help: "HTTP requests by route pattern, method and status code.",
		}, []string{"route", "method", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "releasepilot_http_request_duration_seconds",
			Help:    "HTTP request latency by route pattern.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"route"}),
		jobs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "releasepilot_jobs_total",
			Help: "Finished River jobs by kind and outcome (completed, failed, cancelled, snoozed).",
		}, []string{"kind", "outcome"}),
		webhooks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "releasepilot_webhook_deliveries_total",
			Help: "Webhook deliveries by source and outcome (see Delivery* outcomes); ignored_repo, ignored_tag and ignored_event touched no table.",
		}, []string{"source", "outcome"}),
	}
	m.Registry.MustRegister(m.requests, m.duration, m.jobs, m.webhooks,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// ObserveJob counts a finished job.
func (m *Metrics) ObserveJob(kind, outcome string) { m.jobs.WithLabelValues(kind, outcome).Inc() }

// Outcomes of a webhook delivery, the outcome label of
// releasepilot_webhook_deliveries_total.
const (
	DeliveryCreated      = "created"       // started at least one release
	DeliveryTagChange    = "tag_change"    // a released tag moved or was deleted: a tag_change job
	DeliveryUnchanged    = "unchanged"     // a known tag, delivered again as another event
	DeliveryRedelivery   = "redelivery"    // a delivery id seen before: nothing done
	DeliveryIgnored      = "ignored"       // matched an app but changed nothing (recorded)
	DeliveryIgnoredRepo  = "ignored_repo"  // no app takes tags from the repository: nothing written
	DeliveryIgnoredTag   = "ignored_tag"   // the tag matches no tag rule: nothing written
	DeliveryIgnoredEvent = "ignored_event" // not a tag event (branch push, issues…): nothing written
	DeliveryPing         = "ping"
	DeliveryRejected     = "rejected" // unsigned, badly signed or malformed: nothing written
	DeliveryBusy         = "busy"     // too many long deliveries at once: 503
	DeliveryError        = "error"    // the store failed: 500
)

// ObserveDelivery counts a webhook delivery; a nil Metrics counts nothing.
func (m *Metrics) ObserveDelivery(source, outcome string) {
	if m != nil {
		m.webhooks.WithLabelValues(source, outcome).Inc()
	}
}

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{})
}

type statusWriter struct {
	http.ResponseWriter
	status int
	wrote  int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.wrote += n
	return n, err
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// StatusClientClosedRequest is what a request whose client went away before
// the answer counts as (nginx's 499): not the server's fault, so not a 500.
const StatusClientClosedRequest = 499

// methodLabel folds every method outside the standard set into "other", so
// that invented methods (anyone may send them, no auth needed) cannot grow
// the label set.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	}
	return "other"
}

// instrument counts requests by the mux pattern that served them (never the
// raw path, so ids do not explode the label set) and by a method from a fixed
// set. A request whose client disconnected before it was answered counts as
// 499 whatever the handler wrote.
func (m *Metrics) instrument(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		route := r.Pattern
		if route == "" || route == "/" {
			route = "unmatched"
		}
		if sw.status == 0 {
			sw.status = http.StatusOK
		}
		status := sw.status
		if ClientGone(r) && (status >= 500 || sw.status == http.StatusOK && sw.wrote == 0) {
			status = StatusClientClosedRequest
		}
		rs := m.routeSeries(seriesKey{route, methodLabel(r.Method), status})
		rs.requests.Inc()
		rs.duration.Observe(time.Since(start).Seconds())
	})
}

// ClientGone reports whether the request's client disconnected (or its
// context was cancelled) before the handler finished.
func ClientGone(r *http.Request) bool {
	return errors.Is(r.Context().Err(), context.Canceled)
}
