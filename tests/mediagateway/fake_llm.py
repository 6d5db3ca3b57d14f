"""A loopback HTTP server speaking just enough of the Anthropic Messages API and the OpenAI chat
completions API to test the generators through their official SDKs."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeLLM:
    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.answers: list[str] = []
        self.status = 200
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))) or b"{}")
                owner.requests.append({"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()}, "body": body})
                if owner.status != 200:
                    return self._send(owner.status, {"type": "error", "error": {"type": "api_error", "message": "model overloaded"}})
                text = owner.answers.pop(0) if owner.answers else "```python\nprint('hi')\n```"
                if self.path.endswith("/messages"):
                    return self._send(200, {"id": "msg_1", "type": "message", "role": "assistant", "model": body.get("model"),
                                            "content": [{"type": "text", "text": text}], "stop_reason": "end_turn",
                                            "stop_sequence": None, "usage": {"input_tokens": 10, "output_tokens": 10}})
                if self.path.endswith("/chat/completions"):
                    return self._send(200, {"id": "c1", "object": "chat.completion", "created": 0, "model": body.get("model"),
                                            "choices": [{"index": 0, "finish_reason": "stop",
                                                         "message": {"role": "assistant", "content": text}}],
                                            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}})
                self._send(404, {"error": {"message": "no such route"}})

            def _send(self, status, doc):
                data = json.dumps(doc).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
