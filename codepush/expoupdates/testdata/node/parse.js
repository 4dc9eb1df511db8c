// Parses Expo manifest responses with @expo/multipart-body-parser (the
// parser expo's own server tests use) and checks every expo-signature with
// Node's crypto against the certificate, as expo-updates does: RSA PKCS#1
// v1.5 with SHA-256 over the UTF-8 bytes of the part body, sig in standard
// base64, the header an RFC 8941 dictionary (parsed with structured-headers).
//
// stdin: [{"contentType": "...", "body": "<base64>", "cert": "<PEM>|null"}]
// stdout: [{"parts": [{"name", "headers", "body"}], "signatures": [...]}]
const { parseMultipartMixedResponseAsync } = require('@expo/multipart-body-parser');
const { parseDictionary } = require('structured-headers');
const crypto = require('crypto');

function verify(body, header, cert) {
  const dict = parseDictionary(header);
  const item = (k) => (dict.get(k) ? dict.get(k)[0] : undefined);
  const sig = item('sig');
  const keyid = item('keyid');
  const alg = item('alg');
  const out = { keyid: keyid === undefined ? null : String(keyid), alg: alg === undefined ? null : String(alg), valid: false };
  if (!cert || typeof sig !== 'string') return out;
  const x509 = new crypto.X509Certificate(cert);
  out.valid = crypto.verify('sha256', Buffer.from(body, 'utf8'), { key: x509.publicKey, padding: crypto.constants.RSA_PKCS1_PADDING }, Buffer.from(sig, 'base64'));
  return out;
}

(async () => {
  const input = JSON.parse(require('fs').readFileSync(0, 'utf8'));
  const results = [];
  for (const r of input) {
    const body = Buffer.from(r.body, 'base64');
    const parts = await parseMultipartMixedResponseAsync(r.contentType, body);
    const res = { parts: [], signatures: [] };
    for (const p of parts) {
      const headers = {};
      for (const [k, v] of p.headers) headers[k.toLowerCase()] = v;
      res.parts.push({ name: p.name, headers, body: p.body });
      if (headers['expo-signature']) {
        res.signatures.push({ part: p.name, ...verify(p.body, headers['expo-signature'], r.cert) });
      }
    }
    results.push(res);
  }
  process.stdout.write(JSON.stringify(results));
})().catch((e) => {
  process.stderr.write(String(e && e.stack || e));
  process.exit(1);
});
