"""A webhook endpoint for the quickstart: prints each change event cdc delivers.

Usage: python3 receiver.py [PORT]   (default 18089; listens on 127.0.0.1)
"""

import json
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer


class Receiver(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        event = json.loads(body)
        value = event.get("value") or {}
        meta = event.get("metadata", {})
        print(
            f"{meta.get('topic')}[{meta.get('partition')}]@{meta.get('offset')} "
            f"op={value.get('op')} key={json.dumps(event.get('key'))} "
            f"after={json.dumps(value.get('after'))}",
            flush=True,
        )
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 18089
    HTTPServer(("127.0.0.1", port), Receiver).serve_forever()
