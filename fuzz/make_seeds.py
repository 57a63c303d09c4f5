#!/usr/bin/env python3
"""Writes the seed corpora under fuzz/seeds/<target>/ from real data.

Run from the repository root:  python3 fuzz/make_seeds.py [path/to/forge]

* pkt-line requests are what git 2.47 sends (captured with GIT_TRACE_PACKET from a v2 clone
  with --depth and --filter, a v0 clone with --depth, and a push with --atomic and push
  options, all between local copies in a temporary directory);
* git objects are `git cat-file` bodies of this repository (HEAD, its tree) and of a small
  repository made here (an annotated tag, a commit with a parent, a subtree), plus a few
  hand-written odd forms;
* the segment is one `forge import` writes for that small repository (its 8-byte header cut
  off, as the target adds it), with whole, zlib and delta entries; the forge binary defaults
  to target/release/forge;
* deltas are git's own, taken from the small repository's pack with `git verify-pack`
  offsets, and deltas made by hand;
* tokens: hand-made base64url strings and narrowing blocks' Datalog (no minted token).
"""
import base64
import os
import re
import subprocess
import sys
import tempfile
import zlib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SEEDS = os.path.join(ROOT, "fuzz", "seeds")
FORGE = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "target", "release", "forge")
GIT_ENV = dict(os.environ, GIT_CONFIG_NOSYSTEM="1", GIT_AUTHOR_NAME="A U Thor",
               GIT_AUTHOR_EMAIL="author@example.com", GIT_COMMITTER_NAME="C O Mitter",
               GIT_COMMITTER_EMAIL="committer@example.com",
               GIT_AUTHOR_DATE="1764633600 +0100", GIT_COMMITTER_DATE="1764633600 +0100")


def git(*args, cwd=None, env=None, check=True):
    return subprocess.run(["git", *args], cwd=cwd, env=env or GIT_ENV, check=check,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE).stdout


def write(target, name, data):
    os.makedirs(os.path.join(SEEDS, target), exist_ok=True)
    with open(os.path.join(SEEDS, target, name), "wb") as f:
        f.write(data)


def pkt(payload):
    return b"%04x" % (len(payload) + 4) + payload


def from_trace(path, who):
    """The requests `who` sent, as pkt-line bytes: a list of lists of packets."""
    packets = []
    pattern = re.compile(r"packet:\s+%s> (.*)$" % re.escape(who))
    for line in open(path, encoding="utf-8", errors="surrogateescape"):
        m = pattern.search(line.rstrip("\n"))
        if not m:
            continue
        text = m.group(1).encode("utf-8", "surrogateescape")
        if text == b"0000":
            packets.append(b"0000")
        elif text == b"0001":
            packets.append(b"0001")
        else:
            packets.append(pkt(text.replace(b"\\0", b"\0") + b"\n"))
    return packets


def split_at_flush(packets):
    requests, current = [], []
    for p in packets:
        current.append(p)
        if p == b"0000":
            requests.append(current)
            current = []
    if current:
        requests.append(current)
    return requests


def main():
    tmp = tempfile.mkdtemp(prefix="forge-seeds-")
    src = os.path.join(tmp, "src.git")
    git("clone", "-q", "--bare", ROOT, src)
    git("config", "uploadpack.allowFilter", "true", cwd=src)

    # --- protocol requests -------------------------------------------------------------
    v2 = os.path.join(tmp, "v2.trace")
    git("-c", "protocol.version=2", "clone", "-q", "--no-local", "--depth=3",
        "--filter=blob:limit=1k", "file://" + src, os.path.join(tmp, "c2"),
        env=dict(GIT_ENV, GIT_TRACE_PACKET=v2))
    v0 = os.path.join(tmp, "v0.trace")
    git("-c", "protocol.version=0", "clone", "-q", "--no-local", "--depth=2",
        "file://" + src, os.path.join(tmp, "c0"), env=dict(GIT_ENV, GIT_TRACE_PACKET=v0))
    full = os.path.join(tmp, "full")
    git("clone", "-q", "--no-local", "file://" + src, full)
    git("commit", "-q", "--allow-empty", "-m", "x", cwd=full)
    remote = os.path.join(tmp, "remote.git")
    git("init", "-q", "--bare", remote)
    git("config", "receive.advertisePushOptions", "true", cwd=remote)
    push = os.path.join(tmp, "push.trace")
    git("push", "-q", "--atomic", "-o", "ci.skip", "-o", "reviewer=alice", "file://" + remote,
        "HEAD:refs/heads/main", "HEAD~1:refs/heads/other", cwd=full,
        env=dict(GIT_ENV, GIT_TRACE_PACKET=push), check=False)

    v2_requests = split_at_flush(from_trace(v2, "clone") + from_trace(v2, "fetch"))
    for i, request in enumerate(v2_requests):
        body = b"".join(request[:40] + ([b"0000"] if len(request) > 40 else []))
        write("pktline", "v2-request-%d" % i, body)
        if b"0001" in request:
            args = request[request.index(b"0001") + 1:]
            if args and args[0].startswith(b"0011command=fetch") is False:
                args = args[:20] + ([b"0000"] if len(args) > 20 else [])
                if any(b"want " in a for a in args):
                    write("upload_request", "v2-fetch-args-%d" % i, b"".join(args))
    v0_packets = from_trace(v0, "clone")
    write("pktline", "v0-request", b"".join(v0_packets))
    write("upload_request", "v0-request", b"".join(v0_packets))
    head = git("rev-parse", "HEAD", cwd=full).strip()
    parent = git("rev-parse", "HEAD~1", cwd=full).strip()
    negotiation = (v0_packets[:1] + [b"0000", pkt(b"have " + head + b"\n"),
                   pkt(b"have " + parent + b"\n"), b"0000", pkt(b"done\n")])
    write("upload_request", "v0-haves", b"".join(negotiation))
    for spec in [b"blob:none", b"blob:limit=1k", b"tree:0"]:
        write("upload_request", "filter-" + spec.decode().replace(":", "-"), spec)

    push_packets = from_trace(push, "push")
    pack_start = b"PACK\0\0\0\x02\0\0\0\x01"
    write("push_request", "push-atomic-options", b"".join(push_packets) + pack_start)
    write("pktline", "push-atomic-options", b"".join(push_packets))
    first = push_packets[0][4:]
    shallow = pkt(b"shallow " + parent + b"\n")
    write("push_request", "push-shallow", shallow + pkt(first) + b"0000" + pack_start)
    write("push_request", "probe", b"0000")

    # --- git objects -----------------------------------------------------------------------
    small = os.path.join(tmp, "small")
    git("init", "-q", small)
    os.makedirs(os.path.join(small, "src"))
    lines = ["line %d: %s" % (i, "abcdefgh" * 5) for i in range(80)]
    with open(os.path.join(small, "src", "lib.rs"), "w") as f:
        f.write("\n".join(lines) + "\n")
    with open(os.path.join(small, "README"), "w") as f:
        f.write("hello\n")
    git("add", "-A", cwd=small)
    git("commit", "-q", "-m", "first", cwd=small)
    lines[10] = "line ten"
    lines[50] = "line fifty"
    with open(os.path.join(small, "src", "lib.rs"), "w") as f:
        f.write("\n".join(lines) + "\n")
    with open(os.path.join(small, "README"), "a") as f:
        f.write("more\n")
    git("commit", "-q", "-am", "second\n\nwith a body", cwd=small)
    git("tag", "-a", "v1", "-m", "release 1", cwd=small)
    git("gc", "-q", "--aggressive", cwd=small)

    for name, rev, repo in [("commit-forge-head", "HEAD", ROOT),
                            ("tree-forge-root", "HEAD^{tree}", ROOT),
                            ("commit-with-parent", "HEAD", small),
                            ("tree-with-subtree", "HEAD^{tree}", small),
                            ("tree-sub", "HEAD:src", small),
                            ("tag-annotated", "v1", small)]:
        kind = git("cat-file", "-t", rev, cwd=repo).strip().decode()
        write("git_objects", name, git("cat-file", kind, rev, cwd=repo))
    tree = git("rev-parse", "HEAD^{tree}", cwd=small).strip()
    write("git_objects", "commit-merge-gpgsig",
          b"tree " + tree + b"\nparent " + head + b"\nparent " + parent +
          b"\nauthor A <a@x> 1700000000 +0530\ncommitter C <c@x> 1700000001 -0700\n"
          b"encoding ISO-8859-1\ngpgsig -----BEGIN PGP SIGNATURE-----\n \n abc\n"
          b" -----END PGP SIGNATURE-----\n\nsubject\n\nbody\n")
    write("git_objects", "tag-signed",
          b"object " + head + b"\ntype commit\ntag v2\ntagger T <t@x> 1 +0000\n\nmsg\n"
          b"-----BEGIN SSH SIGNATURE-----\nabc\n-----END SSH SIGNATURE-----\n")
    write("git_objects", "tree-gitlink-dotgit",
          b"160000 sub\0" + bytes(range(20)) + b"40000 .git\0" + bytes(20) +
          b"100644 .gitmodules\0" + bytes(range(1, 21)))
    # Blobs a tree names .gitmodules / .gitattributes (their content is checked too).
    write("git_objects", "blob-gitmodules",
          b'[submodule "lib/a"]\n\tpath = lib/a\n\turl = https://example.com/a.git\n'
          b'[submodule "b"]\r\n\tpath = "b c" ; comment\r\n\turl = ../b.git\r\n'
          b'\tupdate = rebase\n[core]\n\tbare = false \\\n continued\n')
    write("git_objects", "blob-gitattributes",
          b"*.png binary\n# comment\n*.rs text eol=lf diff=rust\n[attr]custom -text\n")

    # --- deltas: git's own from the small pack, and by hand -------------------------------------
    pack = [p for p in os.listdir(os.path.join(small, ".git", "objects", "pack"))
            if p.endswith(".pack")][0]
    pack_path = os.path.join(small, ".git", "objects", "pack", pack)
    pack_bytes = open(pack_path, "rb").read()
    verify = git("verify-pack", "-v", pack_path[:-5] + ".idx").decode()
    offsets = {}
    for line in verify.splitlines():
        f = line.split()
        if len(f) >= 5 and re.fullmatch(r"[0-9a-f]{40}", f[0]):
            offsets[f[0]] = (int(f[4]), f[5:] if len(f) > 5 else None, f[1])
    n = 0
    for sha, (off, rest, kind) in offsets.items():
        if rest and len(rest) >= 2:  # depth, base sha
            base_sha = rest[1]
            pos = off
            c = pack_bytes[pos]
            pos += 1
            while c & 0x80:
                c = pack_bytes[pos]
                pos += 1
            if (pack_bytes[off] >> 4) & 7 == 7:  # REF_DELTA
                pos += 20
            elif (pack_bytes[off] >> 4) & 7 == 6:  # OFS_DELTA
                c = pack_bytes[pos]
                pos += 1
                while c & 0x80:
                    c = pack_bytes[pos]
                    pos += 1
            delta = zlib.decompressobj().decompress(pack_bytes[pos:])
            base = git("cat-file", kind, base_sha, cwd=small)
            split = len(base)
            if split < 65536:
                write("delta_apply", "git-delta-%d" % n,
                      split.to_bytes(2, "little") + base + delta)
                n += 1

    def varint(v):
        out = b""
        while v >= 0x80:
            out += bytes([v & 0x7f | 0x80])
            v >>= 7
        return out + bytes([v])

    base = b"The quick brown fox jumps over the lazy dog.\n" * 4
    # copy 40 bytes at offset 4, insert 5 bytes, copy the rest from 44
    delta = (varint(len(base)) + varint(40 + 5 + len(base) - 44) + bytes([0x91, 4, 40]) +
             bytes([5]) + b"HELLO" + bytes([0x91, 44, len(base) - 44]))
    write("delta_apply", "hand-copy-insert", len(base).to_bytes(2, "little") + base + delta)
    bomb = varint(0) + varint(1 << 40) + bytes([0x80]) * 8
    write("delta_apply", "hand-bomb", (0).to_bytes(2, "little") + bomb)

    # --- the segment forge writes for the small repository ------------------------------------
    data = os.path.join(tmp, "forge-data")
    subprocess.run([FORGE, "--data", data, "import", "fuzz/small", small], check=True,
                   stdout=subprocess.DEVNULL)
    for dirpath, _, files in os.walk(data):
        for f in files:
            if f.endswith(".seg"):
                seg = open(os.path.join(dirpath, f), "rb").read()
                assert seg[:8] == b"FSEG\x01\0\0\0"
                write("segment_entry", "import-small", seg[8:])
    # One hand-made entry of each storage: whole (uncompressed), DeltaOf, a zlib tree.
    content = b"hello\n"
    whole = bytes([0x80 | 1]) + varint(len(content)) + varint(len(content)) + content
    write("segment_entry", "hand-whole-blob", whole)
    delta_of = (bytes([0x80 | 2 << 4 | 1]) + varint(10) + bytes(range(32)) + varint(4) +
                varint(4) + b"\x06\x0a\x04abcd"[:4])
    write("segment_entry", "hand-delta-of", delta_of)
    z = zlib.compress(b"\x00\x00")
    write("segment_entry", "hand-zlib-tree", bytes([2]) + varint(2) + varint(len(z)) + z)

    # --- tokens ------------------------------------------------------------------------------
    write("token", "base64url-text", base64.urlsafe_b64encode(b"\x08\x01\x12\x20" + bytes(32)))
    write("token", "empty", b"")
    write("token", "narrow-ops", b'check if operation("read");\n')
    write("token", "narrow-all",
          b'check if scope("acme/widgets") or scope("acme/*");\n'
          b'check if operation("read") or operation("write");\n'
          b'check if ref_op(false) or ref($r), $r.extern::glob("refs/heads/agent/**");\n'
          b'check if time($t), $t <= 2030-01-01T00:00:00Z;\n')
    write("token", "authority-like",
          b'identity("agent-42");\nright("acme/widgets", "write");\nno_ref_limit(true);\n')
    print("seeds written under", SEEDS, "(scratch in", tmp + ")")


if __name__ == "__main__":
    main()
