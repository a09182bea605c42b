"""Drives oras-py (the ORAS project's Python client) for testkit's `oras` module.

    python oras_driver.py push HOST REPO:TAG [--file PATH[:TYPE]]... [--config PATH:TYPE]
                          [--chunk-size N] [--annotation K=V]... [--subject TYPE@DIGEST@SIZE]
    python oras_driver.py pull HOST REPO:TAG OUTDIR
    python oras_driver.py tags HOST REPO

Run in the directory holding the files (oras-py refuses paths outside it). Credentials come from
ORAS_USER / ORAS_PASS and the auth backend from ORAS_AUTH (`token`, oras-py's default, which
answers a Bearer challenge at its realm; or `basic`). Prints one JSON object on stdout; errors
leave a non-zero exit and oras-py's message on stderr.
"""

import argparse
import json
import os
import sys

import oras.client
import oras.oci


def client(host):
    c = oras.client.OrasClient(
        hostname=host, insecure=True, auth_backend=os.environ.get("ORAS_AUTH", "token")
    )
    user, password = os.environ.get("ORAS_USER"), os.environ.get("ORAS_PASS")
    if user and password:
        c.auth.set_basic_auth(user, password)
    return c


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    push = sub.add_parser("push")
    push.add_argument("host")
    push.add_argument("target")
    push.add_argument("--file", action="append", default=[])
    push.add_argument("--config")
    push.add_argument("--chunk-size", type=int)
    push.add_argument("--annotation", action="append", default=[])
    push.add_argument("--subject")
    pull = sub.add_parser("pull")
    pull.add_argument("host")
    pull.add_argument("target")
    pull.add_argument("outdir")
    tags = sub.add_parser("tags")
    tags.add_argument("host")
    tags.add_argument("repo")
    a = p.parse_args()

    c = client(a.host)
    if a.cmd == "push":
        subject = None
        if a.subject:
            media_type, digest, size = a.subject.split("@")
            subject = oras.oci.Subject(mediaType=media_type, digest=digest, size=int(size))
        r = c.push(
            subject=subject,
            target=f"{a.host}/{a.target}",
            files=a.file,
            manifest_config=a.config,
            manifest_annotations=dict(kv.split("=", 1) for kv in a.annotation) or None,
            do_chunked=a.chunk_size is not None,
            chunk_size=a.chunk_size or 1 << 24,
            quiet=True,
        )
        out = {
            "status": r.status_code,
            "digest": r.headers.get("Docker-Content-Digest"),
            "oci_subject": r.headers.get("OCI-Subject"),
        }
    elif a.cmd == "pull":
        files = c.pull(target=f"{a.host}/{a.target}", outdir=a.outdir)
        out = {"files": sorted(os.path.relpath(f, a.outdir) for f in files)}
    else:
        out = {"tags": c.get_tags(f"{a.host}/{a.repo}")}
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
