package httpapi

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"strings"
)

// Identity is who holds a credential: Subject names the credential itself
// (token:ops), Actor is what the audit log records, Role what it may do.
type Identity struct {
	Subject string
	Actor   string
	Role    Role
}

// Credentials turn a secret a person presents (an API token today, a
// CodePush access key tomorrow) into an identity. Surfaces that keep a
// sign-in for longer than one request (the dashboard's sessions) ask
// Lookup on every request, so a credential removed or demoted since takes
// effect at once.
type Credentials interface {
	// Authenticate returns the identity of secret; ok is false when no
	// credential has that secret. err is for failures to look (a database
	// down), never for a wrong secret.
	Authenticate(ctx context.Context, secret string) (id Identity, ok bool, err error)
	// Lookup returns the current identity of a subject Authenticate
	// returned before; ok is false when the credential is gone.
	Lookup(ctx context.Context, subject string) (id Identity, ok bool, err error)
}

// TokenCredentials are the configured API tokens as Credentials; subjects
// and actors are "token:<name>", as in the API's audit entries.
type TokenCredentials []Token

// Authenticate compares secret with every token in constant time.
func (ts TokenCredentials) Authenticate(_ context.Context, secret string) (Identity, bool, error) {
	if secret == "" {
		return Identity{}, false, nil
	}
	sum := sha256.Sum256([]byte(secret))
	var found *Token
	for i := range ts {
		// Compare every token so that timing says nothing about which.
		if subtle.ConstantTimeCompare(sum[:], ts[i].hash[:]) == 1 {
			found = &ts[i]
		}
	}
	if found == nil {
		return Identity{}, false, nil
	}
	return tokenIdentity(*found), true, nil
}

// Lookup finds a token by subject.
func (ts TokenCredentials) Lookup(_ context.Context, subject string) (Identity, bool, error) {
	name, ok := strings.CutPrefix(subject, "token:")
	if !ok {
		return Identity{}, false, nil
	}
	for _, t := range ts {
		if t.Name == name {
			return tokenIdentity(t), true, nil
		}
	}
	return Identity{}, false, nil
}

func tokenIdentity(t Token) Identity {
	return Identity{Subject: "token:" + t.Name, Actor: "token:" + t.Name, Role: t.Role}
}

// CredentialChain asks each source in turn: the first that knows a secret
// (or a subject) answers.
type CredentialChain []Credentials

// Authenticate implements Credentials.
func (c CredentialChain) Authenticate(ctx context.Context, secret string) (Identity, bool, error) {
	for _, src := range c {
		if id, ok, err := src.Authenticate(ctx, secret); err != nil || ok {
			return id, ok, err
		}
	}
	return Identity{}, false, nil
}

// Lookup implements Credentials.
func (c CredentialChain) Lookup(ctx context.Context, subject string) (Identity, bool, error) {
	for _, src := range c {
		if id, ok, err := src.Lookup(ctx, subject); err != nil || ok {
			return id, ok, err
		}
	}
	return Identity{}, false, nil
}
