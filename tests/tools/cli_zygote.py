"""cli_zygote.py: starts an AWS CLI faster in the integration tests, without changing what runs.

Both `aws` scripts on the machine are the same five lines: import awscli.clidriver, then
sys.exit(awscli.clidriver.main()). Importing took 60% of each call's CPU (0.7 of 1.2 s), and a
run starts the CLIs about two hundred times. This server, run with a CLI's own interpreter,
imports awscli.clidriver once; for each request it forks, and the child takes the caller's
stdin, stdout and stderr (passed over the socket), its environment, folder and arguments, and
runs awscli.clidriver.main() as the script would: a fresh process of the unmodified CLI, only
its imports done before the fork (the forkserver pattern). Before it forks any child, the server
also runs each command the tests use once against a closed port (warm_up): the CLI imports
most of its modules on first use, and those imports then stay shared too (the paths they
derive from HOME, its caches, are set again in each child from the caller's HOME). The
caller, cli_client.py, exits with the child's status.

usage: python cli_zygote.py SOCKET   (SIGTERM ends it)
"""
import gc
import json
import os
import select
import signal
import socket
import shutil
import struct
import sys
import tempfile

_ENV_BEFORE = dict(os.environ)
import awscli.clidriver  # noqa: E402  the import the request children share

# What the import itself put into the environment (Debian's CLI sets AWS_DATA_PATH): a fresh
# process would have it too, so each child gets it on top of the caller's environment.
IMPORT_ENV = {k: v for k, v in os.environ.items() if _ENV_BEFORE.get(k) != v}


def run_child(req, fds, wake):
    signal.set_wakeup_fd(-1)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    for fd in wake:
        os.close(fd)
    for i, fd in enumerate(fds[:3]):
        os.dup2(fd, i)
    for fd in fds:
        os.close(fd)
    os.environ.clear()
    os.environ.update(req["env"])
    for k, v in IMPORT_ENV.items():
        os.environ.setdefault(k, v)
    if os.environ.get("LC_CTYPE", "") == "UTF-8":  # as the aws script does
        os.environ["LC_CTYPE"] = "en_US.UTF-8"
    home = os.path.expanduser("~")
    for names, k, below in HOME_PATHS:
        names[k] = home + below
    os.chdir(req["cwd"])
    sys.argv = req["argv"]
    rc = 255
    try:
        rc = awscli.clidriver.main()
    except SystemExit as e:
        rc = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(rc if isinstance(rc, int) else 0)


# Commands run once in the server before it forks any child: the CLI imports most of its
# modules (plugins, customizations, the HTTP stack) on first use, which cost each child about
# half its CPU again. Each fails at once (a closed port, one attempt, no config files); only the
# modules they import stay (what two commands run in one process would share).
WARM_UP = (["s3", "ls"], ["s3api", "list-buckets"], ["sqs", "list-queues"],
           ["cloudwatch", "list-metrics"], ["sts", "get-caller-identity"])


# Module constants the warm-up's imports derived from its HOME (the CLI's caches: assume-role
# credentials, SSO tokens, history): (module globals, name, path below HOME). A fresh CLI would
# have derived them from the caller's HOME, so each child sets them again from its own.
HOME_PATHS = []


def warm_up():
    saved_env, saved_argv = dict(os.environ), sys.argv
    home = tempfile.mkdtemp(prefix="cli-zygote-home-")
    saved_fds = [os.dup(1), os.dup(2)]
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)
    os.dup2(null, 2)
    os.environ.update(AWS_ACCESS_KEY_ID="warm", AWS_SECRET_ACCESS_KEY="warm",
                      AWS_DEFAULT_REGION="us-east-1", AWS_REGION="us-east-1",
                      AWS_MAX_ATTEMPTS="1", AWS_CONFIG_FILE=os.devnull,
                      AWS_SHARED_CREDENTIALS_FILE=os.devnull, AWS_PAGER="", HOME=home)
    # Every command sets the CRT's native logger; the first set starts its writer thread, which
    # a forked child would not have, and the child's own set then waits for it forever. So the
    # warm-up leaves the logger alone, and each child sets it first, as a fresh CLI does.
    # (Only the Debian CLI has a CRT.)
    crt_logging = getattr(awscli.clidriver, "disable_crt_logging", None)
    if crt_logging:
        awscli.clidriver.disable_crt_logging = lambda: None
    try:
        for args in WARM_UP:
            sys.argv = ["aws", "--endpoint-url", "http://127.0.0.1:1", "--cli-connect-timeout",
                        "1"] + args
            try:
                awscli.clidriver.main()
            except BaseException:  # a failing command is the expected outcome
                pass
    finally:
        if crt_logging:
            awscli.clidriver.disable_crt_logging = crt_logging
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved_fds[0], 1)
        os.dup2(saved_fds[1], 2)
        for fd in saved_fds + [null]:
            os.close(fd)
        os.environ.clear()
        os.environ.update(saved_env)
        sys.argv = saved_argv
        shutil.rmtree(home, ignore_errors=True)
    for mod in list(sys.modules.values()):
        names = getattr(mod, "__dict__", None)
        if isinstance(names, dict):
            HOME_PATHS.extend((names, k, v[len(home):]) for k, v in list(names.items())
                              if isinstance(v, str) and v.startswith(home + os.sep))


def main():
    path = sys.argv[1]
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(128)  # callers queue here while the warm-up runs
    warm_up()
    # Objects of the imports move to the collector's permanent generation: a child's collections
    # then skip them instead of writing to every one (a copy of each page they share: a third
    # more CPU per child for the pip CLI).
    gc.freeze()
    r, w = os.pipe()
    os.set_blocking(w, False)
    signal.set_wakeup_fd(w, warn_on_full_buffer=False)
    signal.signal(signal.SIGCHLD, lambda *a: None)
    waiting = {}  # child pid -> the caller's connection
    while True:  # until SIGTERM (its default action: run-itest.sh removes the socket)
        try:
            ready, _, _ = select.select([srv, r], [], [])
        except InterruptedError:
            ready = []
        if r in ready:
            os.read(r, 4096)
        while waiting:
            try:
                pid, st = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            conn = waiting.pop(pid, None)
            if conn is not None:
                try:
                    conn.sendall(struct.pack("i", os.waitstatus_to_exitcode(st)))
                except OSError:
                    pass
                conn.close()
        if srv in ready:
            conn, _ = srv.accept()
            try:
                msg, fds, _, _ = socket.recv_fds(conn, 1 << 22, 3)
                req = json.loads(msg.decode())
            except (OSError, ValueError):
                conn.close()
                continue
            pid = os.fork()
            if pid == 0:
                srv.close()
                conn.close()
                run_child(req, fds, (r, w))
            for fd in fds:
                os.close(fd)
            waiting[pid] = conn


if __name__ == "__main__":
    main()
