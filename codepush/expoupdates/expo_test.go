package expoupdates_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/swapjoy/releasepilot/codepush"
	"github.com/swapjoy/releasepilot/codepush/expoupdates"
)

// npm packages of the independent checks: the multipart parser expo's own
// server tests use, and an RFC 8941 parser for expo-signature.
var nodePackages = []string{"@expo/multipart-body-parser@2.0.0", "structured-headers@2.1.0"}

// installParser installs the npm packages into testdata/node once (the
// directory's node_modules is ignored by git); later runs reuse them.
func installParser(t *testing.T) (node, dir string) {
	t.Helper()
	node, err := exec.LookPath("node")
	require.NoError(t, err, "node is required to parse responses with @expo/multipart-body-parser")
	dir, err = filepath.Abs(filepath.Join("testdata", "node"))
	require.NoError(t, err)
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "structured-headers", "package.json")); err == nil {
		if _, err := os.Stat(filepath.Join(dir, "node_modules", "@expo", "multipart-body-parser", "package.json")); err == nil {
			return node, dir
		}
	}
	npm, err := exec.LookPath("npm")
	require.NoError(t, err, "npm is required to install %v", nodePackages)
	cmd := exec.Command(npm, append([]string{"install", "--no-audit", "--no-fund", "--no-save", "--no-package-lock"}, nodePackages...)...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "npm install failed:\n%s", out)
	return node, dir
}

// response is a recorded manifest response.
type response struct {
	status int
	header http.Header
	body   []byte
}

type parsedPart struct {
	Name    string            `json:"name"`
	Headers map[string]string `json:"headers"`
	Body    string            `json:"body"`
}

type parsedSig struct {
	Part  string  `json:"part"`
	KeyID *string `json:"keyid"`
	Alg   *string `json:"alg"`
	Valid bool    `json:"valid"`
}

type parsed struct {
	Parts      []parsedPart `json:"parts"`
	Signatures []parsedSig  `json:"signatures"`
}

func (p parsed) part(t *testing.T, name string) parsedPart {
	t.Helper()
	for _, x := range p.Parts {
		if x.Name == name {
			return x
		}
	}
	t.Fatalf("no %q part in %+v", name, p.Parts)
	return parsedPart{}
}

// parseAll runs every response through the Node parser in one process.
func parseAll(t *testing.T, cert string, rs ...response) []parsed {
	t.Helper()
	node, dir := installParser(t)
	var in []map[string]any
	for _, r := range rs {
		var c any
		if cert != "" {
			c = cert
		}
		in = append(in, map[string]any{"contentType": r.header.Get("Content-Type"), "body": base64.StdEncoding.EncodeToString(r.body), "cert": c})
	}
	b, err := json.Marshal(in)
	require.NoError(t, err)
	cmd := exec.Command(node, filepath.Join(dir, "parse.js"))
	cmd.Dir = dir
	cmd.Stdin = bytes.NewReader(b)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "node parse.js: %s", stderr.String())
	var res []parsed
	require.NoError(t, json.Unmarshal(out, &res))
	require.Len(t, res, len(rs))
	return res
}

// codeSigning makes a key and a self-signed certificate as
// `npx expo-updates codesigning:generate` does: RSA-2048, keyUsage
// digitalSignature, extKeyUsage codeSigning.
func codeSigning(t testing.TB) (*rsa.PrivateKey, string) {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "Acme"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().AddDate(10, 0, 0), KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	require.NoError(t, err)
	return k, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

type bundle struct {
	cp   *codepush.Service
	srv  *httptest.Server
	dist *expoupdates.Dist
	cert string
}

func setup(t *testing.T) *bundle {
	t.Helper()
	ctx := context.Background()
	clock := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	cp, err := codepush.New(ctx, codepush.Config{Blobs: codepush.DirBlobs{Dir: t.TempDir()},
		Now: func() time.Time { clock = clock.Add(time.Minute); return clock }})
	require.NoError(t, err)
	for _, a := range []string{"rp-ios", "rp-android"} {
		_, err := cp.CreateApp(ctx, a, false)
		require.NoError(t, err)
	}
	key, cert := codeSigning(t)
	srv := expoupdates.NewServer(expoupdates.Config{CodePush: cp, Apps: map[string]expoupdates.App{
		"rp":       {CodePushApps: map[string]string{"ios": "rp-ios", "android": "rp-android"}, Signer: &expoupdates.Signer{Key: key, KeyID: "main"}},
		"unsigned": {CodePushApps: map[string]string{"ios": "rp-ios", "android": "rp-android"}},
	}})
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	d, err := expoupdates.OpenDist(os.DirFS(filepath.Join("testdata", "expo-export")))
	require.NoError(t, err)
	return &bundle{cp: cp, srv: hs, dist: d, cert: cert}
}

// client is one install of an app: the headers expo-updates 57 sends.
type client struct {
	platform, runtime, embedded, current, id, channel string
	signed                                            bool
}

func (b *bundle) get(t *testing.T, app string, c client, extra map[string]string) response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, b.srv.URL+"/expo/manifest/"+app, nil)
	require.NoError(t, err)
	h := map[string]string{
		"Accept": "multipart/mixed,application/expo+json,application/json", "Expo-Platform": c.platform,
		"Expo-Protocol-Version": "1", "Expo-API-Version": "1", "Expo-Updates-Environment": "BARE", "Expo-JSON-Error": "true",
		"EAS-Client-ID": c.id, "Expo-Runtime-Version": c.runtime, "Expo-Current-Update-ID": c.current, "Expo-Embedded-Update-ID": c.embedded,
	}
	if c.channel != "" {
		h["expo-channel-name"] = c.channel
	}
	if c.signed {
		h["expo-expect-signature"] = `sig, keyid="main", alg="rsa-v1_5-sha256"`
	}
	for k, v := range extra {
		h[k] = v
	}
	for k, v := range h {
		if v != "" {
			req.Header.Set(k, v)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return response{status: resp.StatusCode, header: resp.Header, body: body}
}

type manifest struct {
	ID             string `json:"id"`
	CreatedAt      string `json:"createdAt"`
	RuntimeVersion string `json:"runtimeVersion"`
	LaunchAsset    asset  `json:"launchAsset"`
	Assets         []asset
	Metadata       map[string]any `json:"metadata"`
	Extra          struct {
		ExpoClient map[string]any `json:"expoClient"`
	} `json:"extra"`
}

type asset struct {
	Hash          string `json:"hash"`
	Key           string `json:"key"`
	ContentType   string `json:"contentType"`
	FileExtension string `json:"fileExtension"`
	URL           string `json:"url"`
}

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// requireProtocolHeaders checks the headers every manifest response needs.
func requireProtocolHeaders(t *testing.T, r response) {
	t.Helper()
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	require.Equal(t, "1", r.header.Get("expo-protocol-version"))
	require.Equal(t, "0", r.header.Get("expo-sfv-version"))
	require.Equal(t, "private, max-age=0", r.header.Get("Cache-Control"), "Android caches manifests in a 50 MiB HTTP cache")
	require.True(t, strings.HasPrefix(r.header.Get("Content-Type"), "multipart/mixed; boundary="), r.header.Get("Content-Type"))
}

func decodeManifest(t *testing.T, p parsed) manifest {
	t.Helper()
	mp := p.part(t, "manifest")
	require.Contains(t, mp.Headers["content-type"], "application/json")
	var m manifest
	require.NoError(t, json.Unmarshal([]byte(mp.Body), &m))
	require.Regexp(t, uuidRE, m.ID, "Android parses the id with UUID.fromString; clients send it back lower-cased")
	_, err := time.Parse("2006-01-02T15:04:05.000Z", m.CreatedAt)
	require.NoError(t, err, "createdAt needs milliseconds: %s", m.CreatedAt)
	return m
}

func directive(t *testing.T, p parsed) map[string]any {
	t.Helper()
	var d map[string]any
	require.NoError(t, json.Unmarshal([]byte(p.part(t, "directive").Body), &d))
	return d
}

func b64sha(b []byte) string {
	s := sha256.Sum256(b)
	return base64.RawURLEncoding.EncodeToString(s[:])
}

// v2Dist is the fixture with a changed bundle, as a second export would be.
func v2Dist(t testing.TB, marker string) *expoupdates.Dist {
	t.Helper()
	m := fstest.MapFS{}
	root := filepath.Join("testdata", "expo-export")
	require.NoError(t, filepath.Walk(root, func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if strings.HasSuffix(rel, ".hbc") {
			b = append(append([]byte(nil), b...), []byte(marker)...)
		}
		m[filepath.ToSlash(rel)] = &fstest.MapFile{Data: b}
		return nil
	}))
	d, err := expoupdates.OpenDist(m)
	require.NoError(t, err)
	return d
}

func (b *bundle) release(t *testing.T, d *expoupdates.Dist, dep string, rollout int) codepush.Release {
	t.Helper()
	r, _, err := expoupdates.Release(context.Background(), b.cp, expoupdates.ReleaseInput{App: "rp-android", Deployment: dep, Dist: d,
		Platform: "android", Rollout: rollout, Commit: "c1"})
	require.NoError(t, err)
	return r
}

// TestExpoClientSequence follows one Android install and a few others
// through the protocol: first launch, an update, a staged rollout seen from
// two buckets, a rollback, and a rollback to the embedded update past the
// first release, every response signed and parsed independently.
func TestExpoClientSequence(t *testing.T) {
	b := setup(t)
	const embedded = "0a1b2c3d-0000-4000-8000-00000000e0e0"
	dev := client{platform: "android", runtime: "1.0.0", embedded: embedded, current: embedded, id: "4f4e3c2a-1111-4a2b-9c8d-7e6f5a4b3c2d", signed: true}
	var rs []response

	// 0. First launch before any release: nothing to do.
	rs = append(rs, b.get(t, "rp", dev, nil))

	// 1. The export is released; the first launch gets it.
	v1 := b.release(t, b.dist, codepush.Production, 100)
	require.Equal(t, "1.0.0", v1.AppVersion, "runtime version from expoConfig.json's appVersion policy")
	rs = append(rs, b.get(t, "rp", dev, nil))
	ps := parseAll(t, b.cert, rs...)
	for _, r := range rs {
		requireProtocolHeaders(t, r)
	}
	require.Equal(t, "noUpdateAvailable", directive(t, ps[0])["type"])
	m1 := decodeManifest(t, ps[1])
	require.Equal(t, "1.0.0", m1.RuntimeVersion)
	require.Equal(t, "rp-fixture", m1.Extra.ExpoClient["slug"])
	ext := ps[1].part(t, "extensions")
	require.JSONEq(t, `{"assetRequestHeaders":{}}`, ext.Body)
	for i, p := range ps {
		require.NotEmpty(t, p.Signatures, "response %d is signed", i)
		for _, s := range p.Signatures {
			require.True(t, s.Valid, "response %d part %s: the signature verifies against the certificate", i, s.Part)
			require.Equal(t, "main", *s.KeyID)
			require.Equal(t, "rsa-v1_5-sha256", *s.Alg)
		}
	}

	// The assets: content-addressed URLs serving the exact bytes with the
	// right types, as the manifest's hashes say.
	bundlePath := filepath.Join("testdata", "expo-export", "_expo", "static", "js", "android", "index-ea140fdf9508d0cd335e96f3aaf0fa94.hbc")
	bundleBytes, err := os.ReadFile(bundlePath)
	require.NoError(t, err)
	md := md5.Sum(bundleBytes)
	require.Equal(t, hex.EncodeToString(md[:]), m1.LaunchAsset.Key)
	require.Equal(t, b64sha(bundleBytes), m1.LaunchAsset.Hash)
	require.Equal(t, "application/javascript", m1.LaunchAsset.ContentType)
	require.Len(t, m1.Assets, 1)
	require.Equal(t, "cb975bba2216ce10a60e6c0ffe9941a2", m1.Assets[0].Key, "the key is the export's asset name (its md5)")
	require.Equal(t, ".png", m1.Assets[0].FileExtension, "Android drops assets without fileExtension")
	require.Equal(t, "image/png", m1.Assets[0].ContentType)
	for _, a := range append([]asset{m1.LaunchAsset}, m1.Assets...) {
		resp, err := http.Get(a.URL)
		require.NoError(t, err)
		got, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.Equal(t, a.Hash, b64sha(got), "base64url SHA-256 of the body is the manifest's hash")
		require.Equal(t, a.ContentType, resp.Header.Get("Content-Type"))
		require.Equal(t, "public, max-age=31536000, immutable", resp.Header.Get("Cache-Control"))
	}

	// 2. Running v1, the install is up to date.
	dev.current = m1.ID
	r := b.get(t, "rp", dev, nil)
	requireProtocolHeaders(t, r)
	require.Equal(t, "noUpdateAvailable", directive(t, parseAll(t, b.cert, r)[0])["type"])

	// 3. v2 goes to 50 % of installs: the bucket is eas-client-id, hashed
	// as CodePush rollouts are; one install gets it, another does not.
	v2 := b.release(t, v2Dist(t, "// v2"), codepush.Production, 50)
	var in, out string
	for i := 0; in == "" || out == ""; i++ {
		id := strings.ToLower(strings.Replace("a1b2c3d4-0000-4000-8000-0000000000xx", "xx", hex.EncodeToString([]byte{byte(i)}), 1))
		if codepush.InRollout(id, 50, v2.Label) {
			in = id
		} else {
			out = id
		}
	}
	inDev, outDev := dev, dev
	inDev.id, outDev.id = strings.ToUpper(in), out // iOS sends upper-case UUIDs
	rIn, rOut := b.get(t, "rp", inDev, nil), b.get(t, "rp", outDev, nil)
	ps = parseAll(t, b.cert, rIn, rOut)
	m2 := decodeManifest(t, ps[0])
	require.NotEqual(t, m1.ID, m2.ID)
	require.NotEqual(t, m1.LaunchAsset.Hash, m2.LaunchAsset.Hash)
	require.Equal(t, m1.Assets, m2.Assets, "unchanged assets keep their keys and URLs (clients do not download them again)")
	require.Equal(t, "noUpdateAvailable", directive(t, ps[1])["type"], "outside the rollout, v1 stays")
	newDev := outDev
	newDev.current = embedded
	ps = parseAll(t, b.cert, b.get(t, "rp", newDev, nil))
	require.Equal(t, m1.ID, decodeManifest(t, ps[0]).ID, "a fresh install outside the rollout gets v1")

	// 4. v2 is rolled back: installs running it get a new update with v1's
	// content, newer than v2 so that the client takes it.
	rb, err := b.cp.Rollback(context.Background(), "rp-android", codepush.Production, "")
	require.NoError(t, err)
	inDev.current = m2.ID
	ps = parseAll(t, b.cert, b.get(t, "rp", inDev, nil))
	m3 := decodeManifest(t, ps[0])
	require.NotEqual(t, m2.ID, m3.ID)
	require.Equal(t, m1.LaunchAsset, m3.LaunchAsset)
	require.Greater(t, m3.CreatedAt, m2.CreatedAt)
	require.Equal(t, codepush.MethodRollback, rb.Method)

	// 5. Rollback past the first update, on Staging: once its only update is
	// disabled, an install running it goes back to the embedded update; one
	// already on the embedded update has nothing to do.
	s1 := b.release(t, b.dist, codepush.Staging, 100)
	stg := dev
	stg.channel, stg.current = codepush.Staging, embedded
	ps = parseAll(t, b.cert, b.get(t, "rp", stg, nil))
	ms := decodeManifest(t, ps[0])
	_, changed, err := b.cp.Patch(context.Background(), "rp-android", codepush.Staging, codepush.PackageInfo{Label: s1.Label, Disabled: ptr(true)})
	require.NoError(t, err)
	require.True(t, changed)
	onIt, onEmbedded := stg, stg
	onIt.current = ms.ID
	r1, r2 := b.get(t, "rp", onIt, nil), b.get(t, "rp", onEmbedded, nil)
	requireProtocolHeaders(t, r1)
	ps = parseAll(t, b.cert, r1, r2)
	d := directive(t, ps[0])
	require.Equal(t, "rollBackToEmbedded", d["type"])
	ct := d["parameters"].(map[string]any)["commitTime"].(string)
	_, err = time.Parse("2006-01-02T15:04:05.000Z", ct)
	require.NoError(t, err)
	require.Greater(t, ct, ms.CreatedAt, "the directive is newer than the update it withdraws")
	require.Equal(t, "noUpdateAvailable", directive(t, ps[1])["type"])
	for _, p := range ps {
		require.Len(t, p.Signatures, 1)
		require.True(t, p.Signatures[0].Valid, "directives are signed too")
	}
	// Protocol 0 has no directives: the same request answers with no parts.
	r0 := b.get(t, "rp", onIt, map[string]string{"Expo-Protocol-Version": "0"})
	require.Equal(t, "0", r0.header.Get("expo-protocol-version"))
	require.Empty(t, parseAll(t, b.cert, r0)[0].Parts)
}

func ptr[T any](v T) *T { return &v }

func TestExpoSigningAndRequestRules(t *testing.T) {
	b := setup(t)
	b.release(t, b.dist, codepush.Production, 100)
	dev := client{platform: "ios", runtime: "1.0.0", embedded: "e0e0e0e0-0000-4000-8000-000000000000", id: "C0FFEE00-1111-4A2B-9C8D-7E6F5A4B3C2D"}
	// ios has no release yet; android does.
	dev.platform = "android"

	// Unsigned when not asked; a keyid the client sends is echoed.
	r := b.get(t, "rp", dev, nil)
	requireProtocolHeaders(t, r)
	p := parseAll(t, b.cert, r)[0]
	require.Empty(t, p.Signatures)
	r = b.get(t, "rp", dev, map[string]string{"expo-expect-signature": `sig, keyid="root", alg="rsa-v1_5-sha256"`})
	p = parseAll(t, b.cert, r)[0]
	require.Len(t, p.Signatures, 1)
	require.Equal(t, "root", *p.Signatures[0].KeyID)
	require.True(t, p.Signatures[0].Valid)
	// A certificate other than the app's does not verify the signature.
	_, otherCert := codeSigning(t)
	require.False(t, parseAll(t, otherCert, r)[0].Signatures[0].Valid)

	// Signing requested from an app without a key: 400.
	signed := dev
	signed.signed = true
	r = b.get(t, "unsigned", signed, nil)
	require.Equal(t, http.StatusBadRequest, r.status, string(r.body))
	require.Contains(t, string(r.body), "code signing requested")

	// Single-JSON form: the manifest is the body, the signature a response
	// header over those exact bytes.
	r = b.get(t, "rp", signed, map[string]string{"Accept": "application/expo+json"})
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	require.Equal(t, "application/expo+json", r.header.Get("Content-Type"))
	require.NotEmpty(t, r.header.Get("expo-signature"))
	var m manifest
	require.NoError(t, json.Unmarshal(r.body, &m))
	require.Regexp(t, uuidRE, m.ID)
	require.True(t, verifyGo(t, b.cert, r.body, r.header.Get("expo-signature")))
	// ... and no update is a 204 that says its protocol version.
	upToDate := dev
	upToDate.current = m.ID
	r = b.get(t, "rp", upToDate, map[string]string{"Accept": "application/json"})
	require.Equal(t, http.StatusNoContent, r.status)
	require.Equal(t, "1", r.header.Get("expo-protocol-version"), "Android refuses a 204 without it")

	for name, tc := range map[string]struct {
		app    string
		c      client
		extra  map[string]string
		method string
		status int
		msg    string
	}{
		"platform":         {app: "rp", c: client{platform: "web", runtime: "1.0.0"}, status: 400, msg: "expo-platform"},
		"runtime version":  {app: "rp", c: client{platform: "ios"}, status: 400, msg: "expo-runtime-version"},
		"protocol version": {app: "rp", c: dev, extra: map[string]string{"Expo-Protocol-Version": "2"}, status: 400, msg: "expo-protocol-version"},
		"unknown app":      {app: "nope", c: dev, status: 404, msg: "no Expo app"},
		"unknown channel":  {app: "rp", c: client{platform: "ios", runtime: "1.0.0", channel: "Beta"}, status: 404, msg: "no channel"},
		"accept":           {app: "rp", c: dev, extra: map[string]string{"Accept": "text/html"}, status: 406, msg: "accept"},
		"bad signature ask": {app: "rp", c: dev, extra: map[string]string{"expo-expect-signature": `sig, alg="ecdsa-p256"`}, status: 400,
			msg: "rsa-v1_5-sha256"},
		"method": {app: "rp", c: dev, method: http.MethodPost, status: 405, msg: "not allowed"},
	} {
		t.Run(name, func(t *testing.T) {
			var r response
			if tc.method != "" {
				resp, err := http.Post(b.srv.URL+"/expo/manifest/"+tc.app, "application/json", nil)
				require.NoError(t, err)
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				r = response{status: resp.StatusCode, header: resp.Header, body: body}
			} else {
				r = b.get(t, tc.app, tc.c, tc.extra)
			}
			require.Equal(t, tc.status, r.status, string(r.body))
			require.Contains(t, string(r.body), tc.msg)
			require.Equal(t, "application/json; charset=utf-8", r.header.Get("Content-Type"))
		})
	}

	// An unknown asset is a 404, and a path cannot leave the store.
	for _, p := range []string{"/expo/assets/" + strings.Repeat("0", 64) + ".png", "/expo/assets/..%2F..%2Fetc%2Fpasswd"} {
		resp, err := http.Get(b.srv.URL + p)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusNotFound, resp.StatusCode, p)
	}
}

// verifyGo checks a single-JSON signature with the standard library.
func verifyGo(t *testing.T, certPEM string, body []byte, header string) bool {
	t.Helper()
	m := regexp.MustCompile(`sig="([^"]+)"`).FindStringSubmatch(header)
	require.Len(t, m, 2, header)
	sig, err := base64.StdEncoding.DecodeString(m[1])
	require.NoError(t, err)
	blk, _ := pem.Decode([]byte(certPEM))
	c, err := x509.ParseCertificate(blk.Bytes)
	require.NoError(t, err)
	return c.CheckSignature(x509.SHA256WithRSA, body, sig) == nil
}
