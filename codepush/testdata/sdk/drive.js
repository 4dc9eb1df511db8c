// Drives code-push's AcquisitionManager (the SDK react-native-code-push uses)
// through a list of operations given as JSON in argv[2]; prints the results
// as one JSON array. The HTTP requester is node's http module.
"use strict";
const http = require("http");
const crypto = require("crypto");
const { AcquisitionManager } = require("code-push/script/acquisition-sdk");

const verbs = ["GET", "HEAD", "POST", "PUT", "DELETE", "TRACE", "OPTIONS", "CONNECT", "PATCH"];
const requester = {
  request(verb, url, body, callback) {
    if (typeof body === "function") { callback = body; body = null; }
    const req = http.request(url, { method: verbs[verb], headers: {
      "Accept": "application/json", "Content-Type": "application/json",
      "X-CodePush-Plugin-Name": "react-native-code-push", "X-CodePush-Plugin-Version": "9.0.1",
      "X-CodePush-SDK-Version": "4.2.3" } }, (res) => {
      let data = "";
      res.setEncoding("utf8");
      res.on("data", (c) => { data += c; });
      res.on("end", () => callback(null, { statusCode: res.statusCode, body: data }));
    });
    req.on("error", (e) => callback(e));
    if (body) req.write(body);
    req.end();
  },
};

function download(url) {
  return new Promise((resolve, reject) => {
    http.get(url, (res) => {
      const h = crypto.createHash("sha256");
      res.on("data", (c) => h.update(c));
      res.on("end", () => resolve({ status: res.statusCode, sha256: h.digest("hex") }));
    }).on("error", reject);
  });
}

async function main() {
  const cfg = JSON.parse(process.argv[2]);
  const sdk = new AcquisitionManager(requester, {
    serverUrl: cfg.serverUrl, deploymentKey: cfg.deploymentKey, appVersion: cfg.appVersion,
    clientUniqueId: cfg.clientUniqueId, ignoreAppVersion: false,
  });
  const results = [];
  for (const op of cfg.ops) {
    const cb = (resolve) => (err, value) => resolve({ op: op.op, error: err ? String(err.message || err) : null, value: value === undefined ? null : value });
    switch (op.op) {
      case "check":
        results.push(await new Promise((r) => sdk.queryUpdateWithCurrentPackage(op.current, cb(r))));
        break;
      case "download":
        results.push({ op: "download", value: await download(op.url) });
        break;
      case "reportDownload":
        results.push(await new Promise((r) => sdk.reportStatusDownload(op.package, cb(r))));
        break;
      case "reportDeploy":
        results.push(await new Promise((r) => sdk.reportStatusDeploy(op.package, op.status, op.previousLabelOrAppVersion, op.previousDeploymentKey, cb(r))));
        break;
      default:
        throw new Error("unknown op " + op.op);
    }
  }
  process.stdout.write(JSON.stringify(results));
}
main().catch((e) => { console.error(e); process.exit(1); });
