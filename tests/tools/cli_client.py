"""cli_client.py: runs one AWS CLI command through cli_zygote.py (see there), as if the CLI had
been started here: same arguments, environment, folder, stdin, stdout and stderr, and the same
exit status. Started with `python3 -S` (no site packages: a few milliseconds).

usage: python3 -S cli_client.py SOCKET CLI-PATH ARGS...   (CLI-PATH becomes argv[0]; when the
socket does not answer, the CLI itself is run instead)
"""
import json
import os
import socket
import struct
import sys


def main():
    path, cli, args = sys.argv[1], sys.argv[2], sys.argv[3:]
    req = json.dumps({"argv": [cli] + args, "env": dict(os.environ), "cwd": os.getcwd()})
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(path)
        socket.send_fds(s, [req.encode()], [0, 1, 2])
    except OSError:
        os.execv(cli, [cli] + args)  # no zygote: the CLI as it is
    data = b""
    while len(data) < 4:
        chunk = s.recv(4 - len(data))
        if not chunk:
            sys.exit(255)
        data += chunk
    sys.exit(struct.unpack("i", data)[0] & 0xFF)


if __name__ == "__main__":
    main()
