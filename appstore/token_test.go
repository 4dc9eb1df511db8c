package appstore_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"

	"github.com/swapjoy/releasepilot/appstore"
	"github.com/swapjoy/releasepilot/appstore/appstoretest"
	"github.com/swapjoy/releasepilot/appstore/appstoretest/specvalidate"
)

func decodeSegment(t *testing.T, seg string) map[string]any {
	t.Helper()
	raw, err := base64.RawURLEncoding.DecodeString(seg)
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(raw, &m))
	return m
}

func TestTokenShape(t *testing.T) {
	t.Parallel()
	fake := appstoretest.New(appstoretest.Options{})
	key, p8, err := fake.NewKey("2X9R4HXF34", "57246542-96fe-1a63-e053-0824d011072a")
	require.NoError(t, err)
	parsed, err := appstore.ParsePrivateKey(p8)
	require.NoError(t, err)
	require.True(t, parsed.Equal(key.PrivateKey))
	loaded, err := appstore.NewKey(key.ID, key.IssuerID, p8)
	require.NoError(t, err)
	require.True(t, loaded.PrivateKey.Equal(key.PrivateKey))
	_, err = appstore.NewKey("", "", p8)
	require.ErrorIs(t, err, appstore.ErrInvalid)

	now := time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)
	ts := &appstore.TokenSource{Key: appstore.Key{ID: key.ID, IssuerID: key.IssuerID, PrivateKey: parsed}, Now: func() time.Time { return now }}
	tok, err := ts.Token()
	require.NoError(t, err)
	parts := strings.Split(tok, ".")
	require.Len(t, parts, 3)
	require.Equal(t, map[string]any{"alg": "ES256", "kid": "2X9R4HXF34", "typ": "JWT"}, decodeSegment(t, parts[0]))
	claims := decodeSegment(t, parts[1])
	require.Equal(t, "appstoreconnect-v1", claims["aud"], "aud must be a plain string, not an array")
	require.Equal(t, "57246542-96fe-1a63-e053-0824d011072a", claims["iss"])
	require.NotContains(t, claims, "sub")
	iat, exp := claims["iat"].(float64), claims["exp"].(float64)
	require.Equal(t, float64(now.Add(-time.Minute).Unix()), iat, "iat is back-dated a minute for clock skew")
	require.Equal(t, float64(now.Add(appstore.DefaultTokenLifetime).Unix()), exp)
	require.LessOrEqual(t, exp-iat, 1200.0)
	require.Greater(t, exp-iat, 0.0)
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	require.NoError(t, err)
	require.Len(t, sig, 64, "ES256 JWS signatures are raw R||S")

	// Cached until close to expiry, then re-minted.
	again, err := ts.Token()
	require.NoError(t, err)
	require.Equal(t, tok, again)
	now = now.Add(14*time.Minute + 30*time.Second)
	fresh, err := ts.Token()
	require.NoError(t, err)
	require.NotEqual(t, tok, fresh)
	require.Equal(t, 2, ts.Minted())

	// Individual keys: sub "user", no iss.
	ind := &appstore.TokenSource{Key: appstore.Key{ID: "IND1", PrivateKey: parsed}, Now: func() time.Time { return now }}
	tok, err = ind.Token()
	require.NoError(t, err)
	claims = decodeSegment(t, strings.Split(tok, ".")[1])
	require.Equal(t, "user", claims["sub"])
	require.NotContains(t, claims, "iss")

	_, err = (&appstore.TokenSource{Key: key, Lifetime: 21 * time.Minute}).Token()
	require.ErrorContains(t, err, "exceeds")
}

func TestKeyNeverPrinted(t *testing.T) {
	t.Parallel()
	fake := appstoretest.New(appstoretest.Options{})
	key, p8, err := fake.NewKey("K1", "issuer")
	require.NoError(t, err)
	d := key.PrivateKey.D.String()
	ts := appstore.NewTokenSource(key)
	_, err = ts.Token()
	require.NoError(t, err)
	printed := []string{fmt.Sprint(key), fmt.Sprintf("%v", key), fmt.Sprintf("%+v", key), fmt.Sprintf("%#v", key), fmt.Sprint(ts)}
	// JSON: the key alone, a pointer to it, a token source, and a struct
	// embedding them (a config dump, an error report).
	for _, v := range []any{key, &key, ts, struct {
		K  appstore.Key
		TS *appstore.TokenSource
	}{key, ts}} {
		b, err := json.Marshal(v)
		require.NoError(t, err)
		require.Contains(t, string(b), "K1")
		printed = append(printed, string(b))
	}
	// slog, JSON and text handlers.
	var logs bytes.Buffer
	for _, h := range []slog.Handler{slog.NewJSONHandler(&logs, nil), slog.NewTextHandler(&logs, nil)} {
		slog.New(h).Info("loaded", "key", key, "tokens", ts, "any", any(key))
	}
	require.Contains(t, logs.String(), "K1")
	printed = append(printed, logs.String())
	for _, s := range printed {
		require.NotContains(t, s, d)
		require.NotContains(t, s, key.PrivateKey.D.Text(16))
		require.NotContains(t, s, "eyJ", "no token")
	}
	_, err = appstore.ParsePrivateKey(p8[:len(p8)-40])
	require.Error(t, err)
	require.NotContains(t, err.Error(), "PRIVATE")
	require.NotContains(t, err.Error(), string(p8[40:80]))
}

// signRaw signs arbitrary header and claims, to build tokens the client
// would never make.
func signRaw(t *testing.T, priv *ecdsa.PrivateKey, header map[string]any, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, claims)
	for k, v := range header {
		tok.Header[k] = v
	}
	s, err := tok.SignedString(priv)
	require.NoError(t, err)
	return s
}

func TestFakeVerifiesJWTLikeApple(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)
	fake := appstoretest.New(appstoretest.Options{Now: func() time.Time { return now }})
	fake.AddApp(appstoretest.App{BundleID: "com.x"})
	key, _, err := fake.NewKey("GOODKID", "issuer-1")
	require.NoError(t, err)
	indKey, _, err := fake.NewKey("INDKID", "")
	require.NoError(t, err)
	other, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	srv := httptest.NewServer(specvalidate.Handler(t, fake))
	t.Cleanup(srv.Close)

	base := func() jwt.MapClaims {
		return jwt.MapClaims{"iss": "issuer-1", "iat": now.Unix(), "exp": now.Add(15 * time.Minute).Unix(), "aud": "appstoreconnect-v1"}
	}
	hdr := map[string]any{"kid": "GOODKID"}
	with := func(k string, v any) jwt.MapClaims {
		c := base()
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
		return c
	}
	cases := []struct {
		name   string
		token  string
		status int
	}{
		{"valid", signRaw(t, key.PrivateKey, hdr, base()), 200},
		{"exactly 20 minutes", signRaw(t, key.PrivateKey, hdr, with("exp", now.Add(20*time.Minute).Unix())), 200},
		{"individual key", signRaw(t, indKey.PrivateKey, map[string]any{"kid": "INDKID"}, jwt.MapClaims{"sub": "user", "iat": now.Unix(), "exp": now.Add(time.Minute).Unix(), "aud": "appstoreconnect-v1"}), 200},
		{"wrong kid", signRaw(t, key.PrivateKey, map[string]any{"kid": "NOPE"}, base()), 401},
		{"no kid", signRaw(t, key.PrivateKey, nil, base()), 401},
		{"wrong key", signRaw(t, other, hdr, base()), 401},
		{"wrong aud", signRaw(t, key.PrivateKey, hdr, with("aud", "appstoreconnect-v2")), 401},
		{"aud as array", signRaw(t, key.PrivateKey, hdr, with("aud", []string{"appstoreconnect-v1"})), 401},
		{"exp too far", signRaw(t, key.PrivateKey, hdr, with("exp", now.Add(20*time.Minute+time.Second).Unix())), 401},
		{"expired", signRaw(t, key.PrivateKey, hdr, jwt.MapClaims{"iss": "issuer-1", "iat": now.Add(-21 * time.Minute).Unix(), "exp": now.Add(-time.Minute).Unix(), "aud": "appstoreconnect-v1"}), 401},
		{"future iat", signRaw(t, key.PrivateKey, hdr, jwt.MapClaims{"iss": "issuer-1", "iat": now.Add(5 * time.Minute).Unix(), "exp": now.Add(15 * time.Minute).Unix(), "aud": "appstoreconnect-v1"}), 401},
		{"no iat", signRaw(t, key.PrivateKey, hdr, with("iat", nil)), 401},
		{"wrong issuer", signRaw(t, key.PrivateKey, hdr, with("iss", "issuer-2")), 401},
		{"team key as user", signRaw(t, key.PrivateKey, hdr, jwt.MapClaims{"sub": "user", "iat": now.Unix(), "exp": now.Add(time.Minute).Unix(), "aud": "appstoreconnect-v1"}), 401},
		{"missing", "", 401},
		{"scope matches", signRaw(t, key.PrivateKey, hdr, with("scope", []string{"GET /v1/apps?filter[bundleId]=com.x"})), 200},
		{"scope elsewhere", signRaw(t, key.PrivateKey, hdr, with("scope", []string{"GET /v1/builds"})), 401},
		{"scope other query", signRaw(t, key.PrivateKey, hdr, with("scope", []string{"GET /v1/apps?filter[bundleId]=com.y"})), 401},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest("GET", srv.URL+"/v1/apps?limit=5&filter[bundleId]=com.x", nil)
			require.NoError(t, err)
			if tc.token != "" {
				req.Header.Set("Authorization", "Bearer "+tc.token)
			}
			resp, err := srv.Client().Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			require.Equal(t, tc.status, resp.StatusCode)
			require.NotEmpty(t, resp.Header.Get("X-Rate-Limit"))
			if tc.status == 401 {
				var body map[string]any
				require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
				require.Equal(t, map[string]any{"errors": []any{map[string]any{
					"status": "401", "code": "NOT_AUTHORIZED",
					"title":  "Authentication credentials are missing or invalid.",
					"detail": "Provide a properly configured and signed bearer token, and make sure that it has not expired. Learn more about Generating Tokens for API Requests https://developer.apple.com/go/?id=api-generating-tokens",
				}}}, body)
			}
		})
	}
}
