// Regenerates semver-oracle.json with node-semver 7 (the range semantics
// code-push-server and the client use):
//   npm install --no-audit --no-fund semver@7.8.6 && node gen-semver-oracle.js > semver-oracle.json
const semver = require("semver");
const ranges = ["1.2.3", "*", "", "1.2.x", "1.x", "1", "1.2", "x", "~1.2.3", "~1.2", "~1", "~>1.2.3", "^1.2.3",
  "^0.2.3", "^0.0.3", "^0.0", "^0.x", "^1.2.x", "^0.0.x", "^1.2.3-beta.2", "~1.2.3-beta.2", "1.2.3 - 1.2.7",
  "1.2 - 2.3.4", "1.2.3 - 2.3", "1.2.3 - 2", "* - 2", ">=1.2.3 <1.2.7", ">= 1.2.3 < 1.2.7", ">1", ">1.2", "<1.2",
  "<=1.2", ">=1.2", "<1", "<=1", ">*", "<*", ">=*", "1.2.3 || 2.x", "1.0.0 - 1.5.0 || >=2.1.0 <3",
  "=1.2.3", "v1.2.3", "=v1.2.3", "1.2.3-beta", ">=1.2.3-alpha <1.2.3", "1.2.3-alpha.1 - 1.2.3-beta",
  "1.2.3+build", "01.2.3", "1.2.3.4", "abc", "1.2.3 -", ">=", "~ 1.2", "^ 1.2", "1.2.3  -  1.4.0",
  "x.x.x", "1.x.3", "*.2", "1.2.x.x", "1.2.03", ">1.2.3-rc.1", "<2.0.0", "<=2.0.0", "^2.0.0-0", "0.0.0",
  ">=0.0.0", "2.0.0 - 1.0.0", "9007199254740991.0.0", "9007199254740992.0.0", "||", "1.2.3 ||", " ^1.2.3 ",
  "~1.2.3 >=1.2.5", "^1.4.0 <1.4.5", "1.4.0-beta.x", "1.2.3-01"];
const versions = ["0.0.0", "0.0.1", "0.0.3", "0.0.4", "0.1.0", "0.2.3", "0.2.9", "0.3.0", "1.0.0", "1.2.0", "1.2.2",
  "1.2.3", "1.2.4", "1.2.7", "1.2.8", "1.3.0", "1.4.0", "1.4.4", "1.4.5", "1.5.0", "1.9.9", "2.0.0", "2.0.1",
  "2.1.0", "2.3.4", "2.3.5", "2.4.0", "3.0.0", "10.0.0", "1.2.3-alpha", "1.2.3-alpha.1", "1.2.3-beta",
  "1.2.3-beta.2", "1.2.3-beta.10", "1.2.3-rc.1", "1.2.3-rc.2", "1.2.4-beta", "2.0.0-0", "2.0.0-beta",
  "1.3.0-0", "1.4.0-beta.1", "9007199254740991.0.0"];
// Deterministic random ranges from the grammar (a small LCG, seed fixed).
let seed = 42;
const rnd = (n) => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed % n; };
const pick = (a) => a[rnd(a.length)];
const part = () => pick(["0", "1", "2", "3", "x", "*", "10"]);
const pv = () => { const n = 1 + rnd(3); const ps = []; for (let i = 0; i < n; i++) ps.push(part());
  let v = ps.join("."); if (n === 3 && rnd(4) === 0) v += "-" + pick(["0", "beta", "beta.2", "rc.1", "alpha.1"]); return v; };
const comp = () => pick(["", "", "^", "~", ">", ">=", "<", "<=", "=", "~>"]) + pv();
const set = () => { if (rnd(5) === 0) return pv() + " - " + pv(); const n = 1 + rnd(2); const cs = [];
  for (let i = 0; i < n; i++) cs.push(comp()); return cs.join(" "); };
for (let i = 0; i < 400; i++) ranges.push(rnd(6) === 0 ? set() + " || " + set() : set());
const out = { ranges: [], versions };
for (const r of ranges) {
  const e = { range: r, valid: semver.validRange(r) !== null, satisfies: [], gtr: [] };
  for (const v of versions) {
    e.satisfies.push(e.valid ? semver.satisfies(v, r) : false);
    let g = false;
    try { g = e.valid ? semver.gtr(v, r) : false; } catch (err) { g = null; }
    e.gtr.push(g);
  }
  out.ranges.push(e);
}
const vs = ["1.2.3", "v1.2.3", " 1.2.3 ", "=1.2.3", "1.2", "1", "01.2.3", "1.2.3-01", "1.2.3-0a", "1.2.3+b.1",
  "1.2.3-beta+b", "1.2.3.4", "", "a.b.c", "1.2.3-", "1.2.3-a..b", "9007199254740992.0.0"];
out.valid = vs.map((v) => ({ version: v, valid: semver.valid(v) !== null }));
console.log(JSON.stringify(out, null, 1));
