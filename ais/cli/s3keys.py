"""`ais s3 keys add|ls|rm`: the access keys the S3 front end verifies SigV4 signatures with."""

from __future__ import annotations

import argparse
from urllib.parse import quote

from ais.cli import render
from ais.cli.common import client


def cmd_add(a: argparse.Namespace) -> int:
    body = {k: v for k, v in (("access_key", a.access_key), ("secret_key", a.secret_key)) if v}
    key = client(a).request("POST", "/v1/s3/keys", body=body, idempotent=False).json() or {}
    print(f"access key: {key['access_key']}\nsecret key: {key['secret_key']}")
    print("(the secret is not shown again; S3 requests must now be signed with a configured key)")
    return 0


def cmd_ls(a: argparse.Namespace) -> int:
    keys = client(a).request("GET", "/v1/s3/keys").json() or []
    if a.json:
        render.print_json(keys)
    elif keys:
        print(render.table(["ACCESS KEY"], ([k["access_key"]] for k in keys), no_headers=a.no_headers))
    else:
        print("no S3 access keys: anonymous S3 access is allowed")
    return 0


def cmd_rm(a: argparse.Namespace) -> int:
    client(a).request("DELETE", f"/v1/s3/keys/{quote(a.key, safe='')}")
    print(f"removed access key {a.key}")
    return 0
