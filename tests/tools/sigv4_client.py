#!/usr/bin/env python3
"""sigv4_client.py: a small, independent SigV4 client (Python's hmac/hashlib only) for the
cases the AWS CLIs never produce: signed aws-chunked streaming uploads, a chosen X-Amz-Date
(clock skew), a wrong x-amz-content-sha256. Prints "<status>\n<body>" and exits 0.

usage: sigv4_client.py METHOD URL SERVICE [--body FILE] [--chunked SIZE] [--skew SECONDS]
                       [--payload-hash VALUE] [--bad-chunk] [--header 'Name: value']...
"""
import argparse
import datetime
import hashlib
import hmac
import http.client
import os
import urllib.parse


def sha256_hex(data):
    return hashlib.sha256(data).hexdigest()


def hmac256(key, msg):
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def signing_key(secret, date8, region, service):
    k = hmac256(("AWS4" + secret).encode(), date8)
    for part in (region, service, "aws4_request"):
        k = hmac256(k, part)
    return k


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("method")
    ap.add_argument("url")
    ap.add_argument("service")
    ap.add_argument("--body")
    ap.add_argument("--chunked", type=int, default=0)
    ap.add_argument("--skew", type=int, default=0)
    ap.add_argument("--payload-hash")
    ap.add_argument("--bad-chunk", action="store_true")
    ap.add_argument("--header", action="append", default=[])
    a = ap.parse_args()
    akid = os.environ.get("AWS_ACCESS_KEY_ID", "test")
    secret = os.environ.get("AWS_SECRET_ACCESS_KEY", "test")
    region = "us-east-1"
    body = open(a.body, "rb").read() if a.body else b""
    u = urllib.parse.urlsplit(a.url)
    when = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=a.skew)
    amz_date = when.strftime("%Y%m%dT%H%M%SZ")
    date8 = amz_date[:8]
    scope = f"{date8}/{region}/{a.service}/aws4_request"
    headers = {"host": u.netloc, "x-amz-date": amz_date}
    for h in a.header:
        name, value = h.split(":", 1)
        headers[name.strip().lower()] = value.strip()
    if a.chunked:
        payload_hash = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
        headers["content-encoding"] = "aws-chunked"
        headers["x-amz-decoded-content-length"] = str(len(body))
    else:
        payload_hash = a.payload_hash or sha256_hex(body)
    headers["x-amz-content-sha256"] = payload_hash
    # Canonical query: decode, strictly re-encode, sort (the path is sent and signed as is,
    # which is what S3 expects).
    pairs = urllib.parse.parse_qsl(u.query, keep_blank_values=True)
    q = "&".join(f"{urllib.parse.quote(k, safe='-_.~')}={urllib.parse.quote(v, safe='-_.~')}"
                 for k, v in sorted(pairs))
    names = sorted(headers)
    canon = "\n".join([a.method, u.path or "/", q,
                       "".join(f"{n}:{' '.join(headers[n].split())}\n" for n in names),
                       ";".join(names), payload_hash])
    sts = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, sha256_hex(canon.encode())])
    key = signing_key(secret, date8, region, a.service)
    sig = hmac.new(key, sts.encode(), hashlib.sha256).hexdigest()
    headers["authorization"] = (f"AWS4-HMAC-SHA256 Credential={akid}/{scope}, "
                                f"SignedHeaders={';'.join(names)}, Signature={sig}")
    if a.chunked:
        # https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-streaming.html
        out, prev = b"", sig
        pieces = [body[i:i + a.chunked] for i in range(0, len(body), a.chunked)] + [b""]
        for n, piece in enumerate(pieces):
            csts = "\n".join(["AWS4-HMAC-SHA256-PAYLOAD", amz_date, scope, prev,
                              sha256_hex(b""), sha256_hex(piece)])
            csig = hmac.new(key, csts.encode(), hashlib.sha256).hexdigest()
            if a.bad_chunk and n == 1:
                csig = "0" * 64
            out += f"{len(piece):x};chunk-signature={csig}\r\n".encode() + piece + b"\r\n"
            prev = csig
        body = out
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    target = u.path + ("?" + u.query if u.query else "")
    conn.putrequest(a.method, target, skip_host=True, skip_accept_encoding=True)
    for n, v in headers.items():
        conn.putheader(n, v)
    conn.putheader("content-length", str(len(body)))
    conn.endheaders(body)
    r = conn.getresponse()
    print(r.status)
    print(r.read().decode(errors="replace"))


if __name__ == "__main__":
    main()
