"""`ais auth ...`: the AuthN service: log in and out, and manage users, roles, registered
clusters and tokens.

The service's URL: env `AIS_AUTHN_URL`, else `auth.url` in the CLI config, else
`http://127.0.0.1:52001`. `ais auth login` saves the token (mode 0600) where every later `ais`
command picks it up (common.py: `token_path`); management commands send it, or
`AIS_AUTHN_TOKEN` when set. Plain HTTP through urllib: a handful of small JSON calls.
"""

from __future__ import annotations

import argparse
import base64
import getpass
import json
import os
import sys
import time
import urllib.error
import urllib.request
from typing import Any, Callable
from urllib.parse import quote

from ais.authn.config import parse_lifetime_s
from ais.cli import render
from ais.cli.common import CommandError, bucket_arg, load_config, saved_token, token_path
from ais.cli.render import table
from ais.tls import user_context

DEFAULT_AUTHN_URL = "http://127.0.0.1:52001"
TIMEOUT_S = 30.0


def authn_url() -> str:
    url = os.environ.get("AIS_AUTHN_URL")
    if not url:
        auth = load_config().get("auth")
        url = auth.get("url") if isinstance(auth, dict) else None
    return str(url or DEFAULT_AUTHN_URL).rstrip("/")


def call(method: str, path: str, body: Any = None, *, token: str | None = None, base: str = "") -> Any:
    """One JSON call to AuthN (the saved or `AIS_AUTHN_TOKEN` token unless `token` is given);
    a failure becomes one CommandError line."""
    base = base or authn_url()
    headers = {"Accept": "application/json"}
    token = (os.environ.get("AIS_AUTHN_TOKEN") or saved_token()) if token is None else token
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    req = urllib.request.Request(base + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=TIMEOUT_S, context=user_context()) as resp:
            text = resp.read().decode()
    except urllib.error.HTTPError as exc:
        raise CommandError(_error_text(exc, token)) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise CommandError(f"cannot reach AuthN at {base} (set AIS_AUTHN_URL): {reason}") from None
    return json.loads(text) if text.strip() else None


def _error_text(exc: urllib.error.HTTPError, token: str) -> str:
    raw = exc.read().decode(errors="replace")
    try:
        message = str(json.loads(raw).get("message") or raw)
    except (ValueError, AttributeError):
        message = raw.strip() or exc.reason
    message = message.removeprefix("authn: ")
    if exc.code == 401 and not token:
        return f"{message} (log in first: ais auth login USER)"
    return message


def _password(a: argparse.Namespace, prompt: str) -> str:
    if a.password:
        return str(a.password)
    if not sys.stdin.isatty():
        raise CommandError("no terminal to ask for the password on: pass --password")
    password = getpass.getpass(prompt)
    if not password:
        raise CommandError("empty password")
    return password


# --- login, logout, revoke ----------------------------------------------------------------------

def cmd_login(a: argparse.Namespace) -> int:
    body: dict[str, Any] = {"password": _password(a, f"password for {a.user}: ")}
    if a.expires:
        try:
            body["expires_in"] = int(parse_lifetime_s(a.expires) * 1_000_000_000)
        except ValueError as exc:
            raise CommandError(f"--expires: {exc} (e.g. 24h, 30m, 7d)") from None
    token = str(call("POST", f"/v1/users/{quote(a.user, safe='')}", body, token="")["token"])
    path = token_path()
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump({"token": token}, f)
    os.chmod(path, 0o600)
    print(f"logged in as {a.user}; token saved to {path}{_expiry(token)}")
    return 0


def _expiry(token: str) -> str:
    claims = _claims(token)
    exp = claims.get("exp") if claims else None
    return f" (expires {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(exp))})" if isinstance(exp, int) else ""


def _claims(token: str) -> dict[str, Any]:
    """A token's claims, unverified (for display only)."""
    try:
        part = token.split(".")[1]
        doc = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    except (IndexError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


def cmd_logout(a: argparse.Namespace) -> int:
    """Revoke the saved token at AuthN (best effort) and forget it."""
    token = saved_token()
    path = token_path()
    if not token:
        raise CommandError(f"not logged in (no token in {path})")
    try:
        call("DELETE", "/v1/tokens", {"token": token}, token=token)
    except CommandError as exc:
        print(f"warning: the token was not revoked at AuthN: {exc}", file=sys.stderr)
    os.unlink(path)
    print(f"logged out ({path} removed)")
    return 0


def cmd_revoke(a: argparse.Namespace) -> int:
    token = a.token
    if os.path.isfile(token):
        with open(token, encoding="utf-8") as f:
            text = f.read().strip()
        try:
            token = str(json.loads(text).get("token", "")) if text.startswith("{") else text
        except (ValueError, AttributeError):
            raise CommandError(f"{a.token}: expected a token or {{\"token\": ...}}") from None
    call("DELETE", "/v1/tokens", {"token": token})
    print("token revoked")
    return 0


# --- users --------------------------------------------------------------------------------------

def cmd_add_user(a: argparse.Namespace) -> int:
    password = _password(a, f"password for the new user {a.user}: ")
    call("POST", "/v1/users", {"id": a.user, "pass": password, "roles": [{"name": r} for r in a.roles]})
    print(f"added user {a.user}" + (f" with roles {', '.join(a.roles)}" if a.roles else ""))
    return 0


def cmd_update_user(a: argparse.Namespace) -> int:
    body: dict[str, Any] = {"id": a.user}
    if a.password is not None:
        body["pass"] = a.password
    if a.roles:
        body["roles"] = [{"name": r} for r in a.roles]
    if len(body) == 1:
        raise CommandError("nothing to update: give --password or roles")
    call("PUT", f"/v1/users/{quote(a.user, safe='')}", body)
    print(f"updated user {a.user}")
    return 0


def cmd_show_user(a: argparse.Namespace) -> int:
    if a.name:
        users = {a.name: call("GET", f"/v1/users/{quote(a.name, safe='')}")}
    else:
        users = call("GET", "/v1/users") or {}
    if a.json:
        render.print_json(users if not a.name else users[a.name])
        return 0
    rows = [[uid, ", ".join(r["name"] for r in (u.get("roles") or []))] for uid, u in sorted(users.items())]
    print(table(["name", "roles"], rows, no_headers=a.no_headers))
    return 0


def cmd_rm_user(a: argparse.Namespace) -> int:
    call("DELETE", f"/v1/users/{quote(a.name, safe='')}")
    print(f"removed user {a.name}")
    return 0


# --- roles --------------------------------------------------------------------------------------

def _role_perms(a: argparse.Namespace) -> dict[str, Any]:
    """`clusters`/`buckets` of a role from `CLUSTER [PERM...] [--bucket B]` (the cluster by id or alias)."""
    if not a.cluster:
        if a.perms or a.bucket:
            raise CommandError("permissions and --bucket need a CLUSTER (its id or alias)")
        return {}
    if not a.perms:
        raise CommandError(f"no permissions for cluster {a.cluster!r}: e.g. ro, rw, su, "
                           "cluster-ro, GET,PUT (see `ais auth add role --help`)")
    try:
        from ais.authn import access   # here: it pulls in the JWT stack, which other commands never need
        perm = access.parse(",".join(a.perms))
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    clusters = (call("GET", f"/v1/clusters/{quote(a.cluster, safe='')}") or {}).get("clusters") or {}
    cluster_id = next(iter(clusters), a.cluster)
    if a.bucket:
        bck = bucket_arg(a.bucket)
        wire = {"name": bck.name, "provider": bck.provider,
                "namespace": {"uuid": bck.namespace.uuid or cluster_id, "name": bck.namespace.name}}
        return {"buckets": [{"bck": wire, "perm": str(perm)}]}
    return {"clusters": [{"id": cluster_id, "perm": str(perm)}]}


def cmd_add_role(a: argparse.Namespace) -> int:
    body = {"name": a.role, "desc": a.desc or "", "admin": a.admin, **_role_perms(a)}
    call("POST", "/v1/roles", body)
    print(f"added role {a.role}")
    return 0


def cmd_update_role(a: argparse.Namespace) -> int:
    body: dict[str, Any] = {"name": a.role, **_role_perms(a)}
    if a.desc is not None:
        body["desc"] = a.desc
    if a.admin is not None:
        body["admin"] = a.admin
    if len(body) == 1:
        raise CommandError("nothing to update: give --desc, --admin/--no-admin, or CLUSTER PERM...")
    call("PUT", f"/v1/roles/{quote(a.role, safe='')}", body)
    print(f"updated role {a.role}")
    return 0


def cmd_show_role(a: argparse.Namespace) -> int:
    roles = [call("GET", f"/v1/roles/{quote(a.name, safe='')}")] if a.name else (call("GET", "/v1/roles") or [])
    if a.json:
        render.print_json(roles[0] if a.name else roles)
        return 0
    from ais.authn import access
    rows = []
    for r in roles:
        grants = [f"{c['id']}: {access.describe(int(c['perm']))}" for c in r.get("clusters") or []]
        grants += [f"{_bucket_name(b['bck'])}: {access.describe(int(b['perm']))}" for b in r.get("buckets") or []]
        rows.append([r["name"], "yes" if r.get("admin") else "", "; ".join(grants), r.get("desc", "")])
    print(table(["role", "admin", "permissions", "description"], rows, no_headers=a.no_headers))
    return 0


def _bucket_name(bck: dict[str, Any]) -> str:
    ns = bck.get("namespace") or {}
    scheme = {"aws": "s3", "gcp": "gs", "azure": "az"}.get(bck.get("provider", ""), bck.get("provider", "ais"))
    at = f"@{ns.get('uuid', '')}#{ns.get('name', '')}/" if ns.get("uuid") or ns.get("name") else ""
    return f"{scheme}://{at}{bck.get('name', '')}"


def cmd_rm_role(a: argparse.Namespace) -> int:
    call("DELETE", f"/v1/roles/{quote(a.name, safe='')}")
    print(f"removed role {a.name}")
    return 0


# --- clusters -----------------------------------------------------------------------------------

def cluster_uuid(url: str) -> str:
    """The uuid of the cluster at `url`, from its cluster map (as the SDK does on registration)."""
    try:
        smap = call("GET", "/v1/daemon?what=smap", base=url.rstrip("/"),
                    token=os.environ.get("AIS_AUTHN_TOKEN") or saved_token())
    except CommandError as exc:
        raise CommandError(f"cannot get the cluster's uuid from {url} (or pass --id): {exc}") from None
    uuid = smap.get("uuid") if isinstance(smap, dict) else None
    if not uuid:
        raise CommandError(f"{url} sent no cluster uuid (is it an ais proxy? or pass --id)")
    return str(uuid)


def cmd_add_cluster(a: argparse.Namespace) -> int:
    cluster_id = a.id or cluster_uuid(a.urls[0])
    call("POST", "/v1/clusters", {"id": cluster_id, "alias": a.alias, "urls": a.urls})
    print(f"registered cluster {cluster_id} as {a.alias!r}")
    return 0


def cmd_update_cluster(a: argparse.Namespace) -> int:
    if not a.alias and not a.urls:
        raise CommandError("nothing to update: give URLs or --alias")
    call("PUT", f"/v1/clusters/{quote(a.cluster, safe='')}", {"alias": a.alias, "urls": a.urls or None})
    print(f"updated cluster {a.cluster}")
    return 0


def cmd_show_cluster(a: argparse.Namespace) -> int:
    path = f"/v1/clusters/{quote(a.name, safe='')}" if a.name else "/v1/clusters"
    clusters = (call("GET", path) or {}).get("clusters") or {}
    if a.json:
        render.print_json(next(iter(clusters.values())) if a.name and clusters else clusters)
        return 0
    rows = [[cid, c.get("alias", ""), ", ".join(c.get("urls") or [])] for cid, c in sorted(clusters.items())]
    print(table(["cluster id", "alias", "urls"], rows, no_headers=a.no_headers))
    return 0


def cmd_rm_cluster(a: argparse.Namespace) -> int:
    call("DELETE", f"/v1/clusters/{quote(a.name, safe='')}")
    print(f"unregistered cluster {a.name}")
    return 0


# --- the command tree ---------------------------------------------------------------------------

Builder = Callable[..., argparse.ArgumentParser]


def build(ap: argparse.ArgumentParser, group: Builder, leaf: Builder,
          out_opts: Callable[[argparse.ArgumentParser], None]) -> None:
    """`ais auth ...` under `ap`, made with main.py's builders (main.build_parser calls this)."""
    g = group(ap, "auth", "AuthN: log in and out; users, roles, clusters and tokens (AIS_AUTHN_URL)",
              ["ais auth login admin", "ais auth add cluster prod http://10.0.0.1:8080",
               "ais auth add role readers prod ro --bucket ais://data", "ais auth add user alice readers",
               "ais auth show user", "ais auth logout"])
    p = leaf(g, "login", cmd_login, "log in and save the token for later `ais` commands",
             ["ais auth login admin", "ais auth login alice --password PASS --expires 8h"], remote=False)
    p.add_argument("user")
    p.add_argument("--password", "-p", help="the password (asked for on a terminal when left out)")
    p.add_argument("--expires", metavar="DURATION", help="token lifetime, e.g. 30m, 24h, 7d (default: the service's)")
    leaf(g, "logout", cmd_logout, "revoke the saved token and forget it", ["ais auth logout"], remote=False)
    p = leaf(g, "revoke", cmd_revoke, "revoke a token: clusters refuse it from then on",
             ["ais auth revoke eyJhbGciOi...", "ais auth revoke ./token.json"], remote=False)
    p.add_argument("token", help="the token, or a file holding it")

    add = group(g, "add", "add a user, a role, or register a cluster",
                ["ais auth add user alice readers", "ais auth add role readers prod ro",
                 "ais auth add cluster prod http://10.0.0.1:8080"])
    p = leaf(add, "user", cmd_add_user, "add a user with roles",
             ["ais auth add user alice Guest-prod --password PASS"], remote=False)
    p.add_argument("user")
    p.add_argument("roles", nargs="*", metavar="ROLE")
    p.add_argument("--password", "-p", help="the password (asked for on a terminal when left out)")
    p = leaf(add, "role", cmd_add_role, "add a role: permissions on a cluster, or on one of its buckets",
             ["ais auth add role readers prod ro --desc 'read everything'",
              "ais auth add role writers prod rw --bucket ais://data",
              "ais auth add role ops prod cluster-rw,ro", "ais auth add role admins --admin"], remote=False)
    _role_args(p)
    p.set_defaults(admin=False)
    p = leaf(add, "cluster", cmd_add_cluster, "register a cluster (its uuid is read from the first URL)",
             ["ais auth add cluster prod http://10.0.0.1:8080 http://10.0.0.2:8080",
              "ais auth add cluster prod http://10.0.0.1:8080 --id CLUSTER_UUID"], remote=False)
    p.add_argument("alias")
    p.add_argument("urls", nargs="+", metavar="URL", help="proxy URLs")
    p.add_argument("--id", help="the cluster's uuid (read from the cluster when left out)")

    upd = group(g, "update", "change a user, a role or a registered cluster",
                ["ais auth update user alice --password NEW", "ais auth update role readers prod rw",
                 "ais auth update cluster prod http://10.0.0.3:8080"])
    p = leaf(upd, "user", cmd_update_user, "change a user's password or roles",
             ["ais auth update user alice --password NEW", "ais auth update user alice readers writers"], remote=False)
    p.add_argument("user")
    p.add_argument("roles", nargs="*", metavar="ROLE", help="the user's roles from now on")
    p.add_argument("--password", "-p")
    p = leaf(upd, "role", cmd_update_role, "change a role's description or permissions",
             ["ais auth update role readers --desc 'read-only'", "ais auth update role readers prod rw"],
             remote=False)
    _role_args(p)
    p.add_argument("--no-admin", dest="admin", action="store_false", help="no longer an admin role")
    p.set_defaults(admin=None)
    p = leaf(upd, "cluster", cmd_update_cluster, "change a registered cluster's URLs or alias",
             ["ais auth update cluster prod http://10.0.0.3:8080", "ais auth update cluster CLUSTER_UUID --alias prod"],
             remote=False)
    p.add_argument("cluster", help="the cluster's id or alias")
    p.add_argument("urls", nargs="*", metavar="URL", help="proxy URLs (replace the old ones)")
    p.add_argument("--alias")

    show = group(g, "show", "show users, roles or registered clusters",
                 ["ais auth show user", "ais auth show role readers --json", "ais auth show cluster"])
    for name, fn in (("user", cmd_show_user), ("role", cmd_show_role), ("cluster", cmd_show_cluster)):
        p = leaf(show, name, fn, f"show every {name}, or one", [f"ais auth show {name}", f"ais auth show {name} NAME"],
                 remote=False)
        p.add_argument("name", nargs="?", default="")
        out_opts(p)

    rm = group(g, "rm", "remove a user or a role, or unregister a cluster",
               ["ais auth rm user alice", "ais auth rm role readers", "ais auth rm cluster prod"])
    for name, fn in (("user", cmd_rm_user), ("role", cmd_rm_role), ("cluster", cmd_rm_cluster)):
        p = leaf(rm, name, fn, f"remove a {name}", [f"ais auth rm {name} NAME"], remote=False)
        p.add_argument("name")


def _role_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("role")
    p.add_argument("cluster", nargs="?", default="", metavar="CLUSTER", help="the cluster's id or alias")
    p.add_argument("perms", nargs="*", metavar="PERM",
                   help="ro, rw, su, cluster-ro, cluster-rw, bucket-admin, or bits: GET, PUT, LIST-OBJECTS... "
                        "(joined by spaces or commas)")
    p.add_argument("--bucket", help="grant on this bucket of the cluster only (provider://name)")
    p.add_argument("--desc", "--description", dest="desc", help="what the role is for")
    p.add_argument("--admin", action="store_true", default=None, help="an admin role (AuthN and cluster admin)")
