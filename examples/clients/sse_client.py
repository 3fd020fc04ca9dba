#!/usr/bin/env python3
"""A Server-Sent Events client with only the Python standard library, for caddy-sse.

    python3 sse_client.py http://localhost:8080/news [--last-event-id ID] [--header 'Authorization: Bearer x']

Prints every event, whatever its type, as one JSON line {"id", "type", "data"}. When the stream ends or the
connection breaks it waits the server's retry: delay and reconnects with Last-Event-ID, so it misses nothing
and repeats nothing. A reset event (type "reset") means history was lost: reload your state there. Like a
browser's EventSource, it stops on an answer other than 200 text/event-stream (401, 403 and 400 will not
change by retrying).
"""
import argparse
import json
import sys
import time
import urllib.error
import urllib.request


def events(lines, state):
    """Parses an event stream (WHATWG rules) from an iterator of decoded lines without their line ends."""
    data, event_type, has_data = [], "", False
    for line in lines:
        if line == "":
            if has_data:
                yield {"id": state["last_event_id"], "type": event_type or "message", "data": "\n".join(data)}
            data, event_type, has_data = [], "", False
            continue
        if line.startswith(":"):
            continue  # a comment: the first ": ok" and heartbeats
        field, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if field == "data":
            data.append(value)
            has_data = True
        elif field == "event":
            event_type = value
        elif field == "id" and "\0" not in value:
            state["last_event_id"] = value
        elif field == "retry" and value.isdigit():
            state["retry"] = int(value) / 1000


def split_lines(stream):
    """Yields lines ended by LF, CRLF or CR, as the SSE format allows, from a binary file-like stream."""
    pending = b""
    while True:
        chunk = stream.read1(65536)
        if not chunk:
            return
        pending += chunk
        while True:
            cut = min((i for i in (pending.find(b"\n"), pending.find(b"\r")) if i >= 0), default=-1)
            if cut < 0 or (pending[cut:cut + 1] == b"\r" and cut + 1 == len(pending)):
                break  # no full line yet (a CR at the end may be the first half of CRLF)
            line, sep = pending[:cut], pending[cut:cut + 1]
            pending = pending[cut + (2 if sep == b"\r" and pending[cut + 1:cut + 2] == b"\n" else 1):]
            yield line.decode("utf-8", "replace")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--last-event-id", default="", help="resume after this id on the first connection")
    parser.add_argument("--header", action="append", default=[], help="an extra request header, 'Name: value'")
    args = parser.parse_args()
    state = {"last_event_id": args.last_event_id, "retry": 3.0}
    while True:
        request = urllib.request.Request(args.url, headers={"Accept": "text/event-stream", "Cache-Control": "no-cache"})
        for header in args.header:
            name, _, value = header.partition(":")
            request.add_header(name.strip(), value.strip())
        if state["last_event_id"]:
            request.add_header("Last-Event-ID", state["last_event_id"])
        try:
            # No read timeout would be wrong on a dead connection: heartbeats come every 15 s by default, so a
            # minute without a byte means the connection is gone.
            with urllib.request.urlopen(request, timeout=60) as response:
                if not response.headers.get("Content-Type", "").startswith("text/event-stream"):
                    sys.exit("not an event stream: " + response.headers.get("Content-Type", "no Content-Type"))
                print("connected", "after " + state["last_event_id"] if state["last_event_id"] else "", file=sys.stderr)
                for event in events(split_lines(response), state):
                    print(json.dumps(event), flush=True)
            print("the server ended the stream", file=sys.stderr)
        except urllib.error.HTTPError as err:
            sys.exit(f"HTTP {err.code}: {err.read(200).decode('utf-8', 'replace')}")
        except (OSError, urllib.error.URLError) as err:
            print("connection lost:", err, file=sys.stderr)
        time.sleep(state["retry"])


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        pass
