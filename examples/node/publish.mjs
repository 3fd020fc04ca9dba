// Publishes one event to JetStream with nats.js (npm "nats"), as an application should for caddy-sse: the SSE
// event type in the Sse-Event header, a msgID (Nats-Msg-Id) so that a retried publish is stored once, and
// retries where the outcome is unknown (timeout) or the stream is not there yet (no responders).
//
//   node publish.mjs --subject orders.42.shipped --event order-shipped --msg-id order-42-shipped '{"order":42}'
//
// Prints the acknowledgement as JSON ({"stream":"ORDERS","seq":7,"duplicate":false}); exits 1 when the event
// could not be stored.
import { parseArgs } from "node:util";
import { connect, headers } from "nats";

const { values: opt, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    url: { type: "string", default: "nats://127.0.0.1:4222" },
    subject: { type: "string" },
    event: { type: "string", default: "" },
    "msg-id": { type: "string", default: "" },
    stream: { type: "string", default: "" },
    attempts: { type: "string", default: "5" },
  },
});
if (!opt.subject || positionals.length !== 1) {
  console.error("usage: node publish.mjs [--url nats://...] --subject S [--event T] [--msg-id ID] [--stream NAME] DATA");
  process.exit(2);
}

const nc = await connect({ servers: opt.url, name: "caddy-sse example publisher" });
const js = nc.jetstream();
const h = headers();
if (opt.event) h.set("Sse-Event", opt.event);
const options = { headers: h, timeout: 2000 };
if (opt["msg-id"]) options.msgID = opt["msg-id"];
if (opt.stream) options.expect = { streamName: opt.stream };

let code = 0;
try {
  const ack = await publishWithRetries(new TextEncoder().encode(positionals[0]), Number(opt.attempts));
  console.log(JSON.stringify({ stream: ack.stream, seq: ack.seq, duplicate: ack.duplicate }));
} catch (err) {
  const hint = isNoResponders(err) ? " (no JetStream stream stores this subject: is Caddy running with a route for it?)" : "";
  console.error("publish failed: " + err.message + hint);
  code = 1;
}
await nc.close();
process.exit(code);

// A timeout leaves the outcome unknown (stored, ack lost?): with a msgID the retry is safe. "No responders"
// (code 503) means no stream stores the subject, maybe not yet. Anything else will not change by retrying.
async function publishWithRetries(data, attempts) {
  let wait = 250;
  for (let attempt = 1; ; attempt++) {
    try {
      return await js.publish(opt.subject, data, options);
    } catch (err) {
      const retriable = isNoResponders(err) || err.code === "TIMEOUT";
      if (!retriable || attempt >= attempts) throw err;
      console.error(`attempt ${attempt}: ${err.message}; retrying in ${wait} ms`);
      await new Promise((r) => setTimeout(r, wait));
      wait *= 2;
    }
  }
}

function isNoResponders(err) {
  return err.code === "503" || /no responders/i.test(err.message);
}
