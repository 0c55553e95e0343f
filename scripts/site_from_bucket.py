"""Serves a bucket of the local AWS server over HTTP as the site's CDN would:
GET /path answers the object at key `path` (`/` is index.html), with its
Content-Type. For the browser test of a deployed site.

Usage: python site_from_bucket.py <bucket>   (prints "ready <port>"; stops when stdin closes)
"""

import http.server
import sys
import threading

import boto3


def main():
    bucket = sys.argv[1]
    s3 = boto3.client("s3")

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            key = self.path.split("?", 1)[0].lstrip("/") or "index.html"
            try:
                obj = s3.get_object(Bucket=bucket, Key=key)
            except s3.exceptions.NoSuchKey:
                self.send_error(404)
                return
            body = obj["Body"].read()
            self.send_response(200)
            self.send_header("Content-Type", obj.get("ContentType", "application/octet-stream"))
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(f"ready {server.server_address[1]}", flush=True)
    sys.stdin.read()
    server.shutdown()


if __name__ == "__main__":
    main()
