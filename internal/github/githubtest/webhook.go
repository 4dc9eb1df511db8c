package githubtest

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// Delivery is a webhook delivery as GitHub sends it: the JSON body and the
// headers, signed with the hook's secret.
type Delivery struct {
	Event  string
	ID     string
	Body   []byte
	Header http.Header
}

// NewDelivery builds a delivery of event with body, signed with secret the
// way GitHub signs it: X-Hub-Signature (HMAC-SHA1) and X-Hub-Signature-256
// (HMAC-SHA256) over the raw body. An empty secret sends no signatures, as
// GitHub does for a hook without a secret.
func NewDelivery(event string, body []byte, secret []byte) Delivery {
	id := newGUID()
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("User-Agent", "GitHub-Hookshot/7d2c7e1")
	h.Set("X-GitHub-Event", event)
	h.Set("X-GitHub-Delivery", id)
	h.Set("X-GitHub-Hook-ID", "123456789")
	h.Set("X-GitHub-Hook-Installation-Target-Type", "repository")
	h.Set("X-GitHub-Hook-Installation-Target-ID", "987654321")
	if len(secret) > 0 {
		m1 := hmac.New(sha1.New, secret)
		m1.Write(body)
		h.Set("X-Hub-Signature", "sha1="+hex.EncodeToString(m1.Sum(nil)))
		m256 := hmac.New(sha256.New, secret)
		m256.Write(body)
		h.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(m256.Sum(nil)))
	}
	return Delivery{Event: event, ID: id, Body: body, Header: h}
}

// SHA1Only returns a copy of d without its SHA-256 signature, as an old
// GitHub Enterprise Server would send it.
func (d Delivery) SHA1Only() Delivery {
	d.Header = d.Header.Clone()
	d.Header.Del("X-Hub-Signature-256")
	return d
}

// Unsigned returns a copy of d without any signature.
func (d Delivery) Unsigned() Delivery {
	d.Header = d.Header.Clone()
	d.Header.Del("X-Hub-Signature-256")
	d.Header.Del("X-Hub-Signature")
	return d
}

// Request builds the POST GitHub would make to url.
func (d Delivery) Request(ctx context.Context, url string) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(d.Body))
	if err != nil {
		return nil, err
	}
	req.Header = d.Header.Clone()
	return req, nil
}

func newGUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// ZeroSHA is what GitHub sends for a ref that does not exist on one side.
const ZeroSHA = "0000000000000000000000000000000000000000"

func repository(fullName string) map[string]any {
	owner, name, _ := strings.Cut(fullName, "/")
	return map[string]any{
		"id": 987654321, "node_id": "R_kgDOAAAAAA", "name": name, "full_name": fullName, "private": true,
		"owner":          map[string]any{"login": owner, "id": 1001, "type": "Organization"},
		"html_url":       "https://github.com/" + fullName,
		"url":            "https://api.github.com/repos/" + fullName,
		"default_branch": "main", "master_branch": "main",
	}
}

var sender = map[string]any{"login": "release-manager", "id": 42, "type": "User"}

func pusher() map[string]any {
	return map[string]any{"name": "release-manager", "email": "rm@example.com"}
}

func headCommit(fullName, id, message string) map[string]any {
	who := map[string]any{"name": "Release Bot", "email": "bot@example.com", "username": "release-bot"}
	return map[string]any{
		"id": id, "tree_id": strings.Repeat("e", 40), "distinct": true, "message": message,
		"timestamp": "2026-01-01T10:00:00Z", "url": "https://github.com/" + fullName + "/commit/" + id,
		"author": who, "committer": who, "added": []string{}, "removed": []string{}, "modified": []string{},
	}
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		return []byte("{}")
	}
	return b
}

// TagPushPayload is the push event of a new lightweight tag: after is the
// commit and head_commit describes it.
func TagPushPayload(fullName, tag, commit string) []byte {
	return mustJSON(map[string]any{
		"ref": "refs/tags/" + tag, "before": ZeroSHA, "after": commit,
		"created": true, "deleted": false, "forced": false, "base_ref": "refs/heads/main",
		"compare": "https://github.com/" + fullName + "/compare/" + tag,
		"commits": []any{}, "head_commit": headCommit(fullName, commit, "Release "+tag),
		"repository": repository(fullName), "pusher": pusher(), "sender": sender,
	})
}

// AnnotatedTagPushPayload is the push event of a new annotated tag: after
// is the tag object's SHA and head_commit.id the tagged commit.
func AnnotatedTagPushPayload(fullName, tag, tagObject, commit string) []byte {
	return mustJSON(map[string]any{
		"ref": "refs/tags/" + tag, "before": ZeroSHA, "after": tagObject,
		"created": true, "deleted": false, "forced": false, "base_ref": "refs/heads/main",
		"compare": "https://github.com/" + fullName + "/compare/" + tag,
		"commits": []any{}, "head_commit": headCommit(fullName, commit, "Release "+tag),
		"repository": repository(fullName), "pusher": pusher(), "sender": sender,
	})
}

// TagDeletePayload is the push event of a deleted tag: after is all zeros,
// deleted is true and head_commit is null.
func TagDeletePayload(fullName, tag, before string) []byte {
	return mustJSON(map[string]any{
		"ref": "refs/tags/" + tag, "before": before, "after": ZeroSHA,
		"created": false, "deleted": true, "forced": false, "base_ref": nil,
		"compare": "https://github.com/" + fullName + "/compare/" + short(before) + "...000000000000",
		"commits": []any{}, "head_commit": nil,
		"repository": repository(fullName), "pusher": pusher(), "sender": sender,
	})
}

// BranchPushPayload is a push of one commit to a branch.
func BranchPushPayload(fullName, branch, before, after string) []byte {
	hc := headCommit(fullName, after, "Fix login button")
	return mustJSON(map[string]any{
		"ref": "refs/heads/" + branch, "before": before, "after": after,
		"created": false, "deleted": false, "forced": false, "base_ref": nil,
		"compare": "https://github.com/" + fullName + "/compare/" + short(before) + "..." + short(after),
		"commits": []any{hc}, "head_commit": hc,
		"repository": repository(fullName), "pusher": pusher(), "sender": sender,
	})
}

// TagCreatePayload is the create event of a tag; it carries no commit.
func TagCreatePayload(fullName, tag string) []byte {
	return mustJSON(map[string]any{
		"ref": tag, "ref_type": "tag", "master_branch": "main", "description": nil, "pusher_type": "user",
		"repository": repository(fullName), "sender": sender,
	})
}

// ReleasePublishedPayload is the release event with action "published".
func ReleasePublishedPayload(fullName, tag, targetCommitish string) []byte {
	return mustJSON(map[string]any{
		"action": "published",
		"release": map[string]any{
			"id": 555, "node_id": "RE_kwDOAAAA", "tag_name": tag, "target_commitish": targetCommitish,
			"name": tag, "body": "Release notes", "draft": false, "prerelease": false,
			"created_at": "2026-01-01T10:00:00Z", "published_at": "2026-01-01T10:05:00Z",
			"html_url": "https://github.com/" + fullName + "/releases/tag/" + tag,
			"author":   sender, "assets": []any{},
		},
		"repository": repository(fullName), "sender": sender,
	})
}

// PingPayload is the ping GitHub sends when a repository hook is created.
func PingPayload(fullName string, hookID int64) []byte {
	return mustJSON(map[string]any{
		"zen": "Design for failure.", "hook_id": hookID,
		"hook": map[string]any{
			"type": "Repository", "id": hookID, "name": "web", "active": true,
			"events": []string{"push", "create", "release"},
			"config": map[string]any{"content_type": "json", "insecure_ssl": "0", "url": "https://releasepilot.example.com/webhooks/github"},
		},
		"repository": repository(fullName), "sender": sender,
	})
}

func short(sha string) string {
	if len(sha) > 12 {
		return sha[:12]
	}
	return sha
}

// NewFormDelivery is NewDelivery for a hook whose content type is
// application/x-www-form-urlencoded, GitHub's default for a hook made in a
// repository's settings page: the body is "payload=" and the URL-encoded
// JSON, and the signatures cover that body as sent.
func NewFormDelivery(event string, payload []byte, secret []byte) Delivery {
	body := []byte(url.Values{"payload": {string(payload)}}.Encode())
	d := NewDelivery(event, body, secret)
	d.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return d
}

// examples are real deliveries from npm @octokit/webhooks-examples
// (source and version: testdata/README.md at the module root).
//
//go:embed testdata/octokit-webhooks-examples/*.json
var examples embed.FS

// Example returns an example payload of @octokit/webhooks-examples by its
// file name without extension, e.g. "push.0" (the first push example, a tag
// created). It panics on a name that is not there: examples are fixed.
func Example(name string) []byte {
	b, err := examples.ReadFile("testdata/octokit-webhooks-examples/" + name + ".json")
	if err != nil {
		panic("githubtest: no example " + name)
	}
	return b
}

// Examples lists the example names Example accepts, sorted.
func Examples() []string {
	ents, _ := examples.ReadDir("testdata/octokit-webhooks-examples")
	var out []string
	for _, e := range ents {
		out = append(out, strings.TrimSuffix(e.Name(), ".json"))
	}
	return out
}
