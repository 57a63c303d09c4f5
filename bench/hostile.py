#!/usr/bin/env python3
"""Hostile load against one `forge serve` on loopback, while a normal client clones and pushes.

Driven by bench/hostile.sh, which starts the server; this script gets its address, its pid,
a token that may push to bench/app, a token of an agent that may only write
mallory/scratch, and where to put its work. For each kind of load and each N it opens the
hostile connections (from 127.0.0.2 and up, as other hosts would), waits for them to be in
place, times the normal client's full clone and 1-commit push (median of REPS), samples the
server's resident memory and open descriptors every 20 ms meanwhile, then closes
everything. Every loop is bounded in count and time; nothing leaves the loopback range.

Loads:
  idle    N TCP connections that send nothing (and N/10 that send half a request head)
  bodies  N anonymous upload-pack POSTs announcing 60 MiB, sending 4 MiB, then silent
  pushes  N receive-pack POSTs by the agent: half send headers only, half send 2 bytes
"""

import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time

ADDR, PID, TOKEN, AGENT, WORK, REPS = sys.argv[1:7]
PID = int(PID)
REPS = int(REPS)
HOST, PORT = ADDR.split(":")
PORT = int(PORT)
LOADS = json.loads(sys.argv[7]) if len(sys.argv) > 7 else {
    "idle": [0, 100, 1000],
    "bodies": [0, 10, 100],
    "pushes": [0, 16, 100],
}


def proc_status(field):
    with open(f"/proc/{PID}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def fds():
    return len(os.listdir(f"/proc/{PID}/fd"))


class Sampler(threading.Thread):
    """Peak resident memory (all, and anonymous: kB) and descriptors of the server while a
    phase runs. Resident memory counts the pages of mapped segments and packs a clone
    reads; anonymous memory is what requests allocate."""

    def __init__(self):
        super().__init__(daemon=True)
        self.stop = threading.Event()
        self.rss = 0
        self.anon = 0
        self.fds = 0

    def run(self):
        while not self.stop.is_set():
            try:
                self.rss = max(self.rss, proc_status("VmRSS"))
                self.anon = max(self.anon, proc_status("RssAnon"))
                self.fds = max(self.fds, fds())
            except OSError:
                pass
            time.sleep(0.02)


def source_address(i):
    # 127.0.0.2 … 127.0.0.254, then round again: loopback only.
    return (f"127.0.0.{2 + i % 253}", 0)


def connect(i):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(10)
    s.bind(source_address(i))
    s.connect((HOST, PORT))
    return s


def open_idle(n):
    socks = []
    for i in range(n):
        s = connect(i)
        if i % 10 == 9:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        socks.append(s)
    return socks


def open_bodies(n):
    socks = []
    head = (b"POST /bench/app.git/git-upload-pack HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/x-git-upload-pack-request\r\n"
            b"Content-Length: 62914560\r\n\r\n")
    chunk = b"0" * (1 << 20)
    for i in range(n):
        s = connect(i)
        try:
            s.sendall(head)
            for _ in range(4):
                s.sendall(chunk)
        except OSError:
            pass
        socks.append(s)
    return socks


def open_pushes(n):
    socks = []
    for i in range(n):
        s = connect(i)
        head = ("POST /mallory/scratch.git/git-receive-pack HTTP/1.1\r\nHost: x\r\n"
                "Content-Type: application/x-git-receive-pack-request\r\n"
                f"Authorization: Bearer {AGENT}\r\nContent-Length: 100000\r\n\r\n").encode()
        try:
            s.sendall(head)
            if i % 2:
                s.sendall(b"00")
        except OSError:
            pass
        socks.append(s)
    return socks


OPENERS = {"idle": open_idle, "bodies": open_bodies, "pushes": open_pushes}
URL = f"http://x:{TOKEN}@{ADDR}/bench/app.git"


def timed(args, cwd=None):
    started = time.monotonic()
    done = subprocess.run(args, cwd=cwd, capture_output=True, timeout=300)
    took = time.monotonic() - started
    if done.returncode != 0:
        return None, done.stderr.decode(errors="replace")[-300:]
    return took, ""


push_round = [0]


def normal_client():
    clones, pushes, errors = [], [], []
    work = os.path.join(WORK, "work")
    for r in range(REPS):
        target = os.path.join(WORK, f"clone-{time.monotonic_ns()}")
        took, err = timed(["git", "clone", "-q", "--bare", URL, target])
        subprocess.run(["rm", "-rf", target])
        (clones.append(took) if took is not None else errors.append("clone: " + err))
        push_round[0] += 1
        with open(os.path.join(work, "load.txt"), "w") as f:
            f.write(f"round {push_round[0]}\n")
        subprocess.run(["git", "-C", work, "commit", "-qam", f"load {push_round[0]}"], check=True)
        took, err = timed(["git", "-C", work, "push", "-q", URL, "HEAD:refs/heads/load"])
        (pushes.append(took) if took is not None else errors.append("push: " + err))
    return clones, pushes, errors


def median(values):
    return statistics.median(values) if values else float("nan")


print("load\tN\tclone_s\tpush_s\tpeak_rss_mib\tpeak_anon_mib\tpeak_fds\tclient_errors", flush=True)
for load, counts in LOADS.items():
    for n in counts:
        sampler = Sampler()
        sampler.start()
        socks = OPENERS[load](n)
        time.sleep(1.0)
        clones, pushes, errors = normal_client()
        sampler.stop.set()
        sampler.join()
        for s in socks:
            try:
                s.close()
            except OSError:
                pass
        print(f"{load}\t{n}\t{median(clones):.3f}\t{median(pushes):.3f}\t"
              f"{sampler.rss / 1024:.1f}\t{sampler.anon / 1024:.1f}\t{sampler.fds}\t{len(errors)}", flush=True)
        for e in errors[:2]:
            print(f"#   {e.strip()}", file=sys.stderr)
        time.sleep(2.0)
