#!/usr/bin/env python3
"""A webhook receiver for the tests: Python's own HTTP server, as a paging gateway would run one.

    webhook-receiver.py PORT SECRET_FILE LOG [GENERATION]

Each POST is checked as a receiver must: the X-Vigil-Signature header against the HMAC-SHA256
of the body under the shared secret, and the Idempotency-Key header against the alert's id. One
JSON line per request is appended to LOG (key, id, whether the signature held, GENERATION: which
start of the receiver took it), flushed before the 200 is sent. A bad signature is answered 401
and logged too, so a test sees it. De-duplication by key is the test's to do, as a receiver's.
"""
import hashlib
import hmac
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

port, secret_file, log_path = int(sys.argv[1]), sys.argv[2], sys.argv[3]
generation = sys.argv[4] if len(sys.argv) > 4 else "1"
secret = open(secret_file, "rb").read().rstrip(b"\r\n")
log = open(log_path, "a", buffering=1)


class Receiver(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        expected = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
        signed = hmac.compare_digest(expected, self.headers.get("X-Vigil-Signature", ""))
        try:
            alert_id = json.loads(body).get("id")
        except ValueError:
            alert_id = None
        record = {
            "key": self.headers.get("Idempotency-Key"),
            "id": alert_id,
            "signed": signed,
            "generation": generation,
            "content_type": self.headers.get("Content-Type"),
        }
        log.write(json.dumps(record) + "\n")
        log.flush()
        self.send_response(200 if signed else 401)
        self.end_headers()

    def log_message(self, *args):
        pass


ThreadingHTTPServer(("127.0.0.1", port), Receiver).serve_forever()
