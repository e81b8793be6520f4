"""A local OpenAI-compatible stand-in: answers /v1/chat/completions after a fixed latency.

It picks the first allowed value of every enum in the requested json_schema and reports usage the way OpenAI does
with automatic prefix caching: the system prompt counts as cached once it has been seen.
Usage: python standin_openai.py PORT LATENCY_SECONDS
"""

from __future__ import annotations

import json
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SEEN_PREFIXES: set[str] = set()
LOCK = threading.Lock()


def tokens(text: str) -> int:
    return max(1, len(text) // 4)


class Handler(BaseHTTPRequestHandler):
    latency = 0.1
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:
        pass

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in two writes; without this, Nagle + delayed ACK add ~40 ms to every reply.
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        time.sleep(self.latency)
        schema = body["response_format"]["json_schema"]["schema"]
        answer = {k: (v["enum"][0] if "enum" in v else "ok") for k, v in schema["properties"].items()}
        system, user = body["messages"][0]["content"], body["messages"][1]["content"]
        with LOCK:
            cached = tokens(system) if system in SEEN_PREFIXES else 0
            SEEN_PREFIXES.add(system)
        prompt = tokens(system) + tokens(user)
        text = json.dumps(answer)
        payload = json.dumps(
            {
                "id": "chatcmpl-standin",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body["model"],
                "choices": [
                    {"index": 0, "message": {"role": "assistant", "content": text, "refusal": None},
                     "finish_reason": "stop", "logprobs": None}
                ],
                "usage": {"prompt_tokens": prompt, "completion_tokens": tokens(text), "total_tokens": prompt + tokens(text),
                          "prompt_tokens_details": {"cached_tokens": cached}},
            }
        ).encode()  # fmt: skip
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


if __name__ == "__main__":
    Handler.latency = float(sys.argv[2])
    server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
    server.daemon_threads = True
    print("ready", flush=True)
    server.serve_forever()
