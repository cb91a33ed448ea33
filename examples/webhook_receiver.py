#!/usr/bin/env python3
"""A pg-catalog-sync webhook receiver with Python's standard library only: it verifies the
Standard Webhooks signature and prints each event. Run: WEBHOOK_SECRET=whsec_... ./webhook_receiver.py 8787
"""
import base64, hashlib, hmac, json, os, sys, time
from http.server import BaseHTTPRequestHandler, HTTPServer

KEY = base64.b64decode(os.environ["WEBHOOK_SECRET"].removeprefix("whsec_"))


class Receiver(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["content-length"]))
        msg_id, timestamp = self.headers["webhook-id"], self.headers["webhook-timestamp"]
        signed = f"{msg_id}.{timestamp}.".encode() + body
        expected = base64.b64encode(hmac.new(KEY, signed, hashlib.sha256).digest()).decode()
        given = [s.removeprefix("v1,") for s in self.headers["webhook-signature"].split()]
        fresh = abs(time.time() - int(timestamp)) <= 300
        if not fresh or not any(hmac.compare_digest(expected, s) for s in given):
            self.send_response(401)
            self.end_headers()
            return
        event = json.loads(body)  # deduplicate on msg_id: delivery is at least once
        print(event["type"], msg_id, json.dumps(event["data"]), flush=True)
        self.send_response(204)
        self.end_headers()


HTTPServer(("127.0.0.1", int(sys.argv[1])), Receiver).serve_forever()
