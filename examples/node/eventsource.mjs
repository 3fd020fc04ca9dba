// Reads a caddy-sse stream with the npm "eventsource" package, which follows the browser's EventSource API,
// and prints each event as one JSON line {"id","type","data"}.
//
//   node eventsource.mjs http://localhost:8080/news --types headline,reset [--authorization 'Bearer x']
//
// Like the browser's, it delivers an event only to listeners of its type: onmessage sees untyped events
// alone, so every type the app publishes (Sse-Event header) must be listed here, and "reset" too. It
// reconnects by itself with Last-Event-ID after the server's retry: delay, and closes for good on an answer
// other than 200 text/event-stream. A browser's EventSource cannot send headers; this package can, through
// its fetch option (shown with --authorization).
import { parseArgs } from "node:util";
import { EventSource } from "eventsource";

const { values: opt, positionals } = parseArgs({
  allowPositionals: true,
  options: { types: { type: "string", default: "reset" }, authorization: { type: "string", default: "" } },
});
const url = positionals[0] || "http://localhost:8080/news";

const init = {};
if (opt.authorization) {
  init.fetch = (input, request) =>
    fetch(input, { ...request, headers: { ...request.headers, Authorization: opt.authorization } });
}
const source = new EventSource(url, init);
const print = (ev) => console.log(JSON.stringify({ id: ev.lastEventId, type: ev.type, data: ev.data }));
source.onmessage = print;
for (const type of opt.types.split(",").filter(Boolean)) source.addEventListener(type, print);
source.onopen = () => console.error("open");
source.onerror = (err) => {
  if (source.readyState === EventSource.CLOSED) {
    console.error("closed for good:", err.message || err.code || err);
    process.exit(1);
  }
  console.error("reconnecting:", err.message || "stream ended");
};
