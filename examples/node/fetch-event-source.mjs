// Reads a caddy-sse stream with @microsoft/fetch-event-source, which can send headers (an Authorization
// header, which a browser's EventSource cannot) and hands every event to onmessage whatever its type. Prints
// each event as one JSON line {"id","type","data"}.
//
//   node fetch-event-source.mjs http://localhost:8080/news [--authorization 'Basic YWxpY2U6c2VjcmV0']
//
// Three things it does not do by itself, done here: it does not reconnect when the server ends the stream
// (caddy-sse does on config reloads and stream lifetimes): onclose throws so that it retries; its default
// onopen accepts any status with the right Content-Type and retries a 401 forever: onopen stops on 4xx; it
// calls onmessage for the blank line after a comment or retry:, with no id and no data: skipped.
// It is a browser library: in Node it needs a window and a document, given below.
import { parseArgs } from "node:util";

globalThis.window ??= globalThis;
globalThis.document ??= { hidden: false, addEventListener() {}, removeEventListener() {} };
const { fetchEventSource } = await import("@microsoft/fetch-event-source");

const { values: opt, positionals } = parseArgs({
  allowPositionals: true,
  options: { authorization: { type: "string", default: "" } },
});
const url = positionals[0] || "http://localhost:8080/news";

class Fatal extends Error {}
class StreamEnded extends Error {}

await fetchEventSource(url, {
  headers: opt.authorization ? { Authorization: opt.authorization } : {},
  openWhenHidden: true, // keep the stream when a browser tab is hidden (and in Node, where nothing is)
  async onopen(response) {
    const type = response.headers.get("content-type") || "";
    if (response.ok && type.startsWith("text/event-stream")) {
      console.error("open");
      return;
    }
    const why = `HTTP ${response.status}: ${(await response.text()).slice(0, 200)}`;
    throw response.status >= 400 && response.status < 500 ? new Fatal(why) : new Error(why);
  },
  onmessage(msg) {
    if (!msg.id && !msg.data && !msg.event) return;
    console.log(JSON.stringify({ id: msg.id, type: msg.event || "message", data: msg.data }));
  },
  onclose() {
    throw new StreamEnded("the server ended the stream");
  },
  onerror(err) {
    if (err instanceof Fatal) throw err; // stops: fetchEventSource rejects
    console.error("reconnecting:", err.message);
    // returning nothing waits the server's retry: delay, then reconnects with Last-Event-ID
  },
}).catch((err) => {
  console.error("stopped:", err.message);
  process.exit(1);
});
