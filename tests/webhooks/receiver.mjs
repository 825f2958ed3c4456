// receiver.mjs: the webhook receiver of tests/blackbox/test_webhooks.py.
//
// It checks every delivery with the Standard Webhooks reference library
// (npm package `standardwebhooks`), not with setforge's own code, so a
// signature that only our code accepts fails the tests. It records what it
// got and answers as its mode says.
//
//   node receiver.mjs PORT SECRET [MODE]
//     MODE ok (default): 204 to a delivery that verifies, 400 otherwise
//          fail500: 500 to everything (the delivery is still recorded)
//          redirect: 307 to /elsewhere
//          hang: never answers (the delivery is still recorded)
//   GET  /_log        {"deliveries": [{id, timestamp, signature, verified,
//                     verify_error, payload, content_type, answered}]}
//   POST /_mode/NAME  switches the mode
// Prints "listening PORT" once it accepts connections. Binds 127.0.0.1 only.
import http from "node:http";
import { Webhook } from "standardwebhooks";

const [port, secret, initialMode] = process.argv.slice(2);
let mode = initialMode || "ok";
const wh = new Webhook(secret);
const deliveries = [];

const server = http.createServer((req, res) => {
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", () => {
    const body = Buffer.concat(chunks).toString("utf8");
    if (req.method === "GET" && req.url === "/_log") {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ deliveries }));
      return;
    }
    if (req.method === "POST" && req.url.startsWith("/_mode/")) {
      mode = req.url.slice("/_mode/".length);
      res.writeHead(204);
      res.end();
      return;
    }
    const rec = {
      path: req.url,
      id: req.headers["webhook-id"] || null,
      timestamp: req.headers["webhook-timestamp"] || null,
      signature: req.headers["webhook-signature"] || null,
      content_type: req.headers["content-type"] || null,
      verified: false,
      verify_error: null,
      payload: null,
      answered: 0,
    };
    try {
      rec.payload = wh.verify(body, {
        "webhook-id": rec.id,
        "webhook-timestamp": rec.timestamp,
        "webhook-signature": rec.signature,
      });
      rec.verified = true;
    } catch (e) {
      rec.verify_error = String(e && e.message ? e.message : e);
    }
    if (mode === "fail500") rec.answered = 500;
    else if (mode === "redirect") rec.answered = 307;
    else rec.answered = rec.verified ? 204 : 400;
    deliveries.push(rec);
    if (mode === "hang") return;
    if (rec.answered === 307) res.writeHead(307, { location: "/elsewhere" });
    else res.writeHead(rec.answered, { "content-type": "text/plain" });
    res.end(rec.answered === 500 ? "receiver is failing on purpose" : "");
  });
});
server.listen(Number(port), "127.0.0.1", () => {
  console.log("listening " + server.address().port);
});
// Hanging requests would hold close() up: exit at once.
process.on("SIGTERM", () => process.exit(0));
