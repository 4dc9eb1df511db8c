package github

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"mime"
	"net/http"
	"net/url"
	"os"
	"strings"
)

// The two content types a GitHub webhook can be configured to send. A hook
// created in a repository's settings page defaults to the form encoding,
// with the JSON in the "payload" field.
const (
	ContentTypeJSON = "application/json"
	ContentTypeForm = "application/x-www-form-urlencoded"
)

// ContentTypeError is a delivery in a content type GitHub does not send;
// the handler answers 415.
type ContentTypeError struct{ Got string }

func (e *ContentTypeError) Error() string {
	got := e.Got
	if got == "" {
		got = "none"
	}
	return fmt.Sprintf("content type %q is not accepted: configure the webhook with %s or %s", got, ContentTypeJSON, ContentTypeForm)
}

// CheckContentType returns the media type of a delivery's Content-Type
// header, or a *ContentTypeError unless it is one of the two GitHub sends.
func CheckContentType(header string) (string, error) {
	mt, _, err := mime.ParseMediaType(header)
	if err != nil || (mt != ContentTypeJSON && mt != ContentTypeForm) {
		if len(header) > 100 {
			header = header[:100]
		}
		return "", &ContentTypeError{Got: header}
	}
	return mt, nil
}

// Payload returns the JSON payload of a delivery body: the body itself for
// application/json, the "payload" field of a form body. The signature
// covers the body as sent, so verify it before calling Payload.
func Payload(mediaType string, body []byte) ([]byte, error) {
	switch mediaType {
	case ContentTypeJSON:
		return body, nil
	case ContentTypeForm:
		v, err := url.ParseQuery(string(body))
		if err != nil {
			return nil, &PayloadError{Err: fmt.Errorf("form body is not URL-encoded: %v", err)}
		}
		p, ok := v["payload"]
		if !ok || len(p) != 1 {
			return nil, &PayloadError{Err: errors.New(`form body has no single "payload" field`)}
		}
		return []byte(p[0]), nil
	}
	return nil, &ContentTypeError{Got: mediaType}
}

// CheckSignatureHeader looks at a delivery's signature headers before any
// of its body is read: a delivery that is unsigned, signed with SHA-1
// only, or whose X-Hub-Signature-256 is not sha256=<64 hex digits> is
// refused at once, and costs nothing to refuse. It returns the decoded
// signature.
func CheckSignatureHeader(h http.Header) ([]byte, error) {
	sig := strings.TrimSpace(h.Get(HeaderSignature256))
	if sig == "" {
		if h.Get(HeaderSignature1) != "" {
			return nil, ErrSignatureSHA1Only
		}
		return nil, ErrSignatureMissing
	}
	if strings.HasPrefix(sig, "sha1=") {
		return nil, ErrSignatureSHA1Only
	}
	hexSig, ok := strings.CutPrefix(sig, "sha256=")
	if !ok || len(hexSig) != 2*sha256.Size {
		return nil, ErrSignatureMalformed
	}
	got, err := hex.DecodeString(hexSig)
	if err != nil {
		return nil, ErrSignatureMalformed
	}
	return got, nil
}

// ReadOptions bound what ReadSigned holds for a body nobody has
// authenticated yet.
type ReadOptions struct {
	// InMemory is how much of a body is kept in memory while it is being
	// verified (default DefaultInMemory). A longer body is spooled to a
	// temporary file, which is read back only once a signature matched.
	InMemory int
	// Spool, when set, is taken (a send) before a body spills to disk and
	// given back (a receive) after; when it is full the body is refused
	// with ErrBusy rather than written. It bounds the disk that unsigned
	// posts can fill.
	Spool chan struct{}
	// TempDir for spooled bodies ("" is the system's).
	TempDir string
}

// DefaultInMemory covers every tag, create, delete and ping delivery with
// room to spare (GitHub's examples are 2–9 KB); a longer body (a release
// with long notes, a large branch push) is spooled to disk while it is
// verified.
const DefaultInMemory = 64 << 10

// ErrBusy means too many long deliveries are being verified at once.
var ErrBusy = errors.New("github webhook: too many large deliveries at once; retry later")

// ReadSigned reads a delivery body from r while computing HMAC-SHA256 of it
// under every secret, and returns the body with the indexes of the secrets
// whose digest equals sig (from CheckSignatureHeader), compared in
// constant time. Nothing but the first opts.InMemory bytes is ever held in
// memory before a signature matched: a body that matches no secret is
// read to its end (so the client gets an answer) and dropped, and
// ErrSignatureMismatch is returned. Read errors (including
// *http.MaxBytesError from a limited body) are returned as they are.
func ReadSigned(r io.Reader, sig []byte, secrets [][]byte, opts ReadOptions) ([]byte, []int, error) {
	if len(secrets) == 0 {
		return nil, nil, ErrNoSecret
	}
	limit := opts.InMemory
	if limit <= 0 {
		limit = DefaultInMemory
	}
	macs := make([]hash.Hash, len(secrets))
	writers := make([]io.Writer, len(secrets))
	for i, s := range secrets {
		if len(s) == 0 {
			return nil, nil, ErrNoSecret
		}
		macs[i] = hmac.New(sha256.New, s)
		writers[i] = macs[i]
	}
	mw := io.MultiWriter(writers...)

	var head bytes.Buffer
	// Read one byte past the in-memory bound to learn whether it holds.
	n, err := io.CopyN(io.MultiWriter(&head, mw), r, int64(limit)+1)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, nil, err
	}
	var spool *os.File
	if n > int64(limit) {
		if opts.Spool != nil {
			select {
			case opts.Spool <- struct{}{}:
				defer func() { <-opts.Spool }()
			default:
				return nil, nil, ErrBusy
			}
		}
		f, err := os.CreateTemp(opts.TempDir, "releasepilot-delivery-*")
		if err != nil {
			return nil, nil, fmt.Errorf("spool delivery: %w", err)
		}
		spool = f
		defer func() {
			spool.Close()
			os.Remove(spool.Name())
		}()
		if _, err := spool.Write(head.Bytes()); err != nil {
			return nil, nil, fmt.Errorf("spool delivery: %w", err)
		}
		head = bytes.Buffer{} // let the head go while the rest streams
		if _, err := io.Copy(io.MultiWriter(spool, mw), r); err != nil {
			return nil, nil, err
		}
	}
	var matched []int
	for i, m := range macs {
		if hmac.Equal(sig, m.Sum(nil)) {
			matched = append(matched, i)
		}
	}
	if len(matched) == 0 {
		return nil, nil, ErrSignatureMismatch
	}
	if spool == nil {
		return head.Bytes(), matched, nil
	}
	if _, err := spool.Seek(0, io.SeekStart); err != nil {
		return nil, nil, err
	}
	body, err := io.ReadAll(spool)
	if err != nil {
		return nil, nil, fmt.Errorf("read spooled delivery: %w", err)
	}
	return body, matched, nil
}
