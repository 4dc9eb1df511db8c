package appstore

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// Wire shapes of JSON:API documents, shared by every resource.

type resourceID struct {
	Type string `json:"type"`
	ID   string `json:"id"`
}

type toOne struct {
	Data *resourceID `json:"data"`
}

type toMany struct {
	Data []resourceID `json:"data"`
}

// relationshipData decodes only the linkage of a relationship object.
type relationshipData struct {
	Data json.RawMessage `json:"data,omitempty"`
}

func (r relationshipData) id() string {
	var one resourceID
	if len(r.Data) > 0 && json.Unmarshal(r.Data, &one) == nil {
		return one.ID
	}
	return ""
}

type resource[A any] struct {
	Type          string                      `json:"type"`
	ID            string                      `json:"id"`
	Attributes    A                           `json:"attributes"`
	Relationships map[string]relationshipData `json:"relationships,omitempty"`
}

type single[A any] struct {
	Data resource[A] `json:"data"`
}

type collection[A any] struct {
	Data  []resource[A] `json:"data"`
	Links struct {
		Next string `json:"next,omitempty"`
	} `json:"links"`
}

// Request documents. Attributes and relationships are typed per call so the
// golden files pin exactly what goes on the wire.

type createData[A any, R any] struct {
	Type          string `json:"type"`
	Attributes    *A     `json:"attributes,omitempty"`
	Relationships R      `json:"relationships"`
}

type updateData[A any] struct {
	Type       string `json:"type"`
	ID         string `json:"id"`
	Attributes A      `json:"attributes"`
}

type document[D any] struct {
	Data D `json:"data"`
}

func one(typ, id string) toOne { return toOne{Data: &resourceID{Type: typ, ID: id}} }

// getAll follows links.next until the collection is exhausted (bounded by
// maxPages so a server loop cannot spin forever).
func getAll[A any](ctx context.Context, c *Client, path string, q url.Values) ([]resource[A], error) {
	const maxPages = 50
	var all []resource[A]
	for page := 0; ; page++ {
		var col collection[A]
		if err := c.do(ctx, request{method: http.MethodGet, path: path, query: q, idempotent: true}, &col); err != nil {
			return nil, err
		}
		all = append(all, col.Data...)
		if col.Links.Next == "" {
			return all, nil
		}
		if page+1 >= maxPages {
			return nil, fmt.Errorf("appstore: GET %s: more than %d pages", path, maxPages)
		}
		// Follow the cursor, but only ever against our own base URL: the
		// next link must not redirect the bearer token to another host.
		u, err := url.Parse(col.Links.Next)
		if err != nil || !strings.HasPrefix(u.Path, "/v1/") {
			return nil, fmt.Errorf("appstore: GET %s: unusable links.next %q", path, col.Links.Next)
		}
		path, q = u.Path, u.Query()
	}
}

func getOne[A any](ctx context.Context, c *Client, path string, q url.Values) (resource[A], error) {
	var doc single[A]
	err := c.do(ctx, request{method: http.MethodGet, path: path, query: q, idempotent: true}, &doc)
	return doc.Data, err
}

func requireID(field, v string) error {
	if strings.TrimSpace(v) == "" {
		return &ValidationError{Field: field, Reason: "must not be empty"}
	}
	if strings.ContainsAny(v, "/?#") {
		return &ValidationError{Field: field, Value: v, Reason: "is not a resource id"}
	}
	return nil
}
