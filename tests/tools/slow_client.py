#!/usr/bin/env python3
"""slow_client.py: hostile HTTP clients for the connection tests (Python's standard library
only, so any Debian machine runs it).

  slow_client.py loris HOST PORT SRC N INTERVAL SECONDS
      opens N connections from source address SRC, sends a request line, then one header
      line every INTERVAL seconds for SECONDS seconds; prints "opened=A closed=C" where
      A counts connections the server kept past the first line and C the ones it closed
      (a refused or reset connection counts as closed), and "first_close=S" (seconds from the
      start to the first close of a kept connection, -1 if none)

  slow_client.py hold HOST PORT LENGTH SENT
      sends POST /events headers (with Authorization: $SLOW_AUTH when set) announcing
      LENGTH body bytes, then SENT bytes of it, prints
      "holding" and keeps the connection until killed (holds the server's in-flight budget)
"""
import os
import socket
import sys
import time


def connect(host, port, src):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if src:
        s.bind((src, 0))
    s.settimeout(5)
    s.connect((host, port))
    return s


def alive(s):
    """True while the server has neither closed nor reset the connection."""
    s.setblocking(False)
    try:
        data = s.recv(4096)
        return data != b"" and not data.startswith(b"HTTP/")
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        s.setblocking(True)
        s.settimeout(5)


def loris(host, port, src, n, interval, seconds):
    conns = []
    for _ in range(n):
        try:
            s = connect(host, port, src)
            s.sendall(b"POST /events HTTP/1.1\r\nHost: x\r\n")
            conns.append(s)
        except OSError:
            pass
    time.sleep(0.5)
    kept = [s for s in conns if alive(s)]
    opened = len(kept)
    start = time.monotonic()
    first_close = -1.0
    i = 0
    while time.monotonic() - start < seconds:
        for s in list(kept):
            ok = alive(s)
            if ok:
                try:
                    s.sendall(b"X-Slow-%d: %d\r\n" % (i, i))
                except OSError:
                    ok = False
            if not ok:
                if first_close < 0:
                    first_close = time.monotonic() - start
                kept.remove(s)
                s.close()
        i += 1
        time.sleep(interval)
    print("opened=%d closed=%d first_close=%.1f" % (opened, opened - len(kept), first_close))
    sys.stdout.flush()
    for s in conns:
        s.close()


def hold(host, port, length, sent):
    s = connect(host, port, None)
    auth = os.environ.get("SLOW_AUTH", "")
    head = "POST /events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    if auth:
        head += "Authorization: " + auth + "\r\n"
    head += "Content-Length: %d\r\n\r\n" % length
    s.sendall(head.encode())
    s.sendall(b" " * sent)
    print("holding")
    sys.stdout.flush()
    while True:
        time.sleep(1)


def main():
    mode = sys.argv[1]
    if mode == "loris":
        loris(sys.argv[2], int(sys.argv[3]), sys.argv[4], int(sys.argv[5]),
              float(sys.argv[6]), float(sys.argv[7]))
    elif mode == "hold":
        hold(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
    else:
        sys.exit("unknown mode " + mode)


if __name__ == "__main__":
    main()
