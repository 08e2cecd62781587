#!/usr/bin/python3
"""A Python websockets peer for test_node.mjs's mixed room, run as a child process.

    /usr/bin/python3 tests/e2e/peer_python.py URL NAME COUNT on|off OTHERS

Connects to URL (compression: websockets' default permessage-deflate with "on", none with
"off"), prints "ready EXTENSIONS" and waits for a line on stdin; then sends COUNT chat
messages from NAME (the same JSON, byte for byte, as test_node.mjs's) while it reads the
COUNT messages of each of OTHERS peers, checks each is intact and in order per sender, and
prints one JSON line: {"ok": ..., "got": ..., "error": ...}. Bounded: 20 seconds in all.
"""
import asyncio
import json
import sys

import websockets


def chat(i, sender):
    text = "chat " * (2 if i % 3 == 0 else 400)
    return json.dumps({"from": sender, "i": i, "text": text}, separators=(",", ":"))


async def main(url, name, count, compression, others):
    ws = await websockets.connect(url, compression="deflate" if compression == "on" else None,
                                  max_size=None, ping_interval=None)
    print("ready", ws.response_headers.get("Sec-WebSocket-Extensions", ""), flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)

    async def send_all():
        for i in range(count):
            await ws.send(chat(i, name))

    async def read_all():
        nxt = {}
        for _ in range(count * others):
            raw = await ws.recv()
            m = json.loads(raw)
            want = nxt.get(m["from"], 0)
            if m["i"] != want or raw != chat(m["i"], m["from"]):
                raise ValueError(f"message {m['i']} from {m['from']}: expected {want}, intact")
            nxt[m["from"]] = want + 1
        return sum(nxt.values())

    _, got = await asyncio.gather(send_all(), read_all())
    await ws.close()
    return got


if __name__ == "__main__":
    url, name, count, compression, others = sys.argv[1:6]
    try:
        got = asyncio.run(asyncio.wait_for(
            main(url, name, int(count), compression, int(others)), 20))
        print(json.dumps({"ok": True, "got": got, "error": ""}), flush=True)
    except Exception as e:  # noqa: BLE001  (reported to the Node test)
        print(json.dumps({"ok": False, "got": 0, "error": repr(e)}), flush=True)
        sys.exit(1)
