package httpapi

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"unicode"
)

// MaxAppStorePayload bounds an App Store Connect webhook body. Events are
// small JSON documents (an event type, a state change and one resource id).
const MaxAppStorePayload = 256 << 10

// AppStoreSignatureHeader carries the HMAC-SHA256 of the raw body, keyed
// with the webhook's secret, as "hmacsha256=<hex>". Apple documents the
// header; the "hmacsha256=" form is what public receivers observe.
const AppStoreSignatureHeader = "X-Apple-Signature"

// Event types of App Store Connect's WebhookEventType (API 4.4.1) that move
// an iOS lane along.
const (
	EventBuildUploadState     = "BUILD_UPLOAD_STATE_UPDATED"
	EventBuildBetaState       = "BUILD_BETA_DETAIL_EXTERNAL_BUILD_STATE_UPDATED"
	EventAppStoreVersionState = "APP_STORE_VERSION_APP_VERSION_STATE_UPDATED"
)

// knownAppStoreEvents is WebhookEventType in asc-openapi.json 4.4.1.
var knownAppStoreEvents = map[string]bool{
	"ALTERNATIVE_DISTRIBUTION_PACKAGE_AVAILABLE_UPDATED":           true,
	"ALTERNATIVE_DISTRIBUTION_PACKAGE_VERSION_CREATED":             true,
	"ALTERNATIVE_DISTRIBUTION_TERRITORY_AVAILABILITY_UPDATED":      true,
	EventAppStoreVersionState:                                      true,
	"BACKGROUND_ASSET_VERSION_APP_STORE_RELEASE_STATE_UPDATED":     true,
	"BACKGROUND_ASSET_VERSION_EXTERNAL_BETA_RELEASE_STATE_UPDATED": true,
	"BACKGROUND_ASSET_VERSION_INTERNAL_BETA_RELEASE_CREATED":       true,
	"BACKGROUND_ASSET_VERSION_STATE_UPDATED":                       true,
	"BETA_FEEDBACK_CRASH_SUBMISSION_CREATED":                       true,
	"BETA_FEEDBACK_SCREENSHOT_SUBMISSION_CREATED":                  true,
	EventBuildBetaState:                                            true,
	EventBuildUploadState:                                          true,
}

// wakingEvents maps the events that can end a lane's wait to the resource
// type their instance must have.
var wakingEvents = map[string]string{
	EventBuildUploadState:     "buildUploads",
	EventBuildBetaState:       "buildBetaDetails",
	EventAppStoreVersionState: "appStoreVersions",
}

// LaneWaker wakes lane jobs that wait on App Store Connect resources.
type LaneWaker interface {
	// Wake makes the jobs of lanes waiting on any of ids run now and
	// returns those lanes. eventType is the WebhookEventType that moved.
	Wake(ctx context.Context, eventType string, ids ...string) ([]string, error)
}

// AppStoreWebhook serves POST /webhooks/appstoreconnect: it verifies an App
// Store Connect webhook delivery and wakes the iOS lane jobs waiting on the
// build upload, build or App Store version the event is about, so they need
// not wait for their next poll. Waking only makes a job look again (and read
// App Store Connect itself), so a forged or replayed event cannot move a
// lane; polling stays the backstop when deliveries are lost.
//
// Answers: 401 for a missing, malformed or wrong signature (nothing else is
// read), 413 for a body over MaxAppStorePayload, 400 for a body that is not
// an event, 204 for events that concern no lane (pings, other types, ids no
// lane waits on), 200 with the lanes woken, 503 when the jobs could not be
// reached (App Store Connect may redeliver).
type AppStoreWebhook struct {
	// Secret is the webhook's shared secret; empty refuses every delivery
	// with 404, as if the route did not exist.
	Secret []byte
	Lanes  LaneWaker
	Log    *slog.Logger
}

// appStoreEvent is a webhook delivery body:
//
//	{"data":{"type":"buildUploadStateUpdated","id":"…","version":1,
//	  "attributes":{"oldState":"PROCESSING","newState":"COMPLETE"},
//	  "relationships":{"instance":{"data":{"type":"buildUploads","id":"…"}}}}}
//
// data.type is the WebhookEventType in lower camel case; the upper snake
// case of the enum is accepted too.
type appStoreEvent struct {
	Data *struct {
		Type          string                     `json:"type"`
		ID            string                     `json:"id"`
		Version       json.Number                `json:"version"`
		Attributes    map[string]json.RawMessage `json:"attributes"`
		Relationships struct {
			Instance struct {
				Data *struct {
					Type string `json:"type"`
					ID   string `json:"id"`
				} `json:"data"`
			} `json:"instance"`
		} `json:"relationships"`
	} `json:"data"`
}

func (h *AppStoreWebhook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	log := h.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if len(h.Secret) == 0 {
		WriteError(w, http.StatusNotFound, "not_found", "no App Store Connect webhook is configured (appstore_webhook.secret)")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxAppStorePayload))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			WriteError(w, http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("payload is over %d bytes", MaxAppStorePayload))
			return
		}
		WriteError(w, http.StatusBadRequest, "invalid", "cannot read body")
		return
	}
	if err := VerifyAppStoreSignature(h.Secret, body, r.Header.Get(AppStoreSignatureHeader)); err != nil {
		log.Warn("app store connect webhook refused", "err", err, "remote", r.RemoteAddr)
		WriteError(w, http.StatusUnauthorized, "unauthorized", err.Error())
		return
	}
	var ev appStoreEvent
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&ev); err != nil || ev.Data == nil || ev.Data.Type == "" {
		WriteError(w, http.StatusBadRequest, "invalid", "body is not an App Store Connect webhook event ({\"data\":{\"type\":…}})")
		return
	}
	kind := eventType(ev.Data.Type)
	inst := ev.Data.Relationships.Instance.Data
	wantType, waking := wakingEvents[kind]
	if !waking || inst == nil || inst.ID == "" {
		if !knownAppStoreEvents[kind] && ev.Data.Type != "webhookPingCreated" {
			log.Info("app store connect webhook: unknown event type", "type", ev.Data.Type)
		}
		w.WriteHeader(http.StatusNoContent)
		return
	}
	if inst.Type != "" && inst.Type != wantType {
		WriteError(w, http.StatusBadRequest, "invalid", fmt.Sprintf("%s is about %s, expected %s", ev.Data.Type, inst.Type, wantType))
		return
	}
	if h.Lanes == nil {
		WriteError(w, http.StatusServiceUnavailable, "unavailable", "lane jobs are not running; polling will catch up")
		return
	}
	woken, err := h.Lanes.Wake(r.Context(), kind, inst.ID)
	if err != nil {
		log.Error("app store connect webhook: waking lanes failed", "event", kind, "instance", inst.ID, "err", err)
		WriteError(w, http.StatusServiceUnavailable, "unavailable", "could not wake the waiting lanes; polling will catch up")
		return
	}
	if len(woken) == 0 {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	log.Info("app store connect webhook woke lanes", "event", kind, "instance", inst.ID, "lanes", woken)
	WriteJSON(w, http.StatusOK, map[string]any{"event": kind, "instance": inst.ID, "lanes": woken})
}

// VerifyAppStoreSignature checks an X-Apple-Signature value,
// "hmacsha256=<hex>", against the HMAC-SHA256 of body keyed with secret, in
// constant time. The error says what is wrong without echoing the value.
func VerifyAppStoreSignature(secret, body []byte, header string) error {
	header = strings.TrimSpace(header)
	if header == "" {
		return errors.New("missing X-Apple-Signature")
	}
	algo, sig, ok := strings.Cut(header, "=")
	if !ok || !strings.EqualFold(algo, "hmacsha256") {
		return errors.New("X-Apple-Signature: expected hmacsha256=<hex>")
	}
	got, err := hex.DecodeString(sig)
	if err != nil || len(got) != sha256.Size {
		return errors.New("X-Apple-Signature: the HMAC is not 64 hexadecimal digits")
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	if !hmac.Equal(got, mac.Sum(nil)) {
		return errors.New("X-Apple-Signature does not match the body and secret")
	}
	return nil
}

// SignAppStore returns the X-Apple-Signature value for body (for tests and
// the sandbox).
func SignAppStore(secret, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	return "hmacsha256=" + hex.EncodeToString(mac.Sum(nil))
}

// eventType turns "buildUploadStateUpdated" into BUILD_UPLOAD_STATE_UPDATED;
// the enum spelling passes through.
func eventType(t string) string {
	if strings.ToUpper(t) == t {
		return t
	}
	var b strings.Builder
	for i, r := range t {
		if unicode.IsUpper(r) && i > 0 {
			b.WriteByte('_')
		}
		b.WriteRune(unicode.ToUpper(r))
	}
	return b.String()
}
