package github

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strings"
)

// Header names GitHub sets on every webhook delivery.
const (
	HeaderEvent        = "X-GitHub-Event"
	HeaderDelivery     = "X-GitHub-Delivery"
	HeaderSignature256 = "X-Hub-Signature-256"
	HeaderSignature1   = "X-Hub-Signature"
)

// SignatureError is why a delivery's signature was rejected. Every value
// means "answer 401"; errors.Is against the Err* values tells them apart.
type SignatureError struct{ reason string }

func (e *SignatureError) Error() string { return "github webhook: " + e.reason }

// Signature verification failures.
var (
	ErrNoSecret           = &SignatureError{"no webhook secret configured"}
	ErrSignatureMissing   = &SignatureError{"X-Hub-Signature-256 header missing"}
	ErrSignatureSHA1Only  = &SignatureError{"delivery signed with SHA-1 only (X-Hub-Signature); SHA-256 required"}
	ErrSignatureMalformed = &SignatureError{"X-Hub-Signature-256 is not sha256=<64 hex digits>"}
	ErrSignatureMismatch  = &SignatureError{"X-Hub-Signature-256 does not match the body"}
)

// VerifySignature checks header, the value of X-Hub-Signature-256, against
// HMAC-SHA256(secret, body) in constant time. An empty secret is always an
// error (go-github skips validation when secret and signature are both
// empty; this never does). A header of the SHA-1 form "sha1=…" returns
// ErrSignatureSHA1Only. Errors never contain the secret or the signature.
func VerifySignature(secret []byte, body []byte, header string) error {
	if len(secret) == 0 {
		return ErrNoSecret
	}
	header = strings.TrimSpace(header)
	if header == "" {
		return ErrSignatureMissing
	}
	if strings.HasPrefix(header, "sha1=") {
		return ErrSignatureSHA1Only
	}
	hexSig, ok := strings.CutPrefix(header, "sha256=")
	if !ok || len(hexSig) != 2*sha256.Size {
		return ErrSignatureMalformed
	}
	got, err := hex.DecodeString(hexSig)
	if err != nil {
		return ErrSignatureMalformed
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	if !hmac.Equal(got, mac.Sum(nil)) {
		return ErrSignatureMismatch
	}
	return nil
}

// VerifyRequest is VerifySignature over a delivery's headers: it reads
// X-Hub-Signature-256 and, when that is absent but X-Hub-Signature is
// present, reports ErrSignatureSHA1Only rather than ErrSignatureMissing.
func VerifyRequest(secret []byte, body []byte, h http.Header) error {
	sig := h.Get(HeaderSignature256)
	if sig == "" && h.Get(HeaderSignature1) != "" && len(secret) > 0 {
		return ErrSignatureSHA1Only
	}
	return VerifySignature(secret, body, sig)
}

// Sign returns the X-Hub-Signature-256 value GitHub would send for body.
func Sign(secret, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}
