"""What every `ais` command shares: the endpoint and config file, the client, `provider://bucket/object`
names, confirmations, and the one-line error.

Endpoint, first found: `--endpoint`, env `AIS_ENDPOINT`, `cluster.url` in the CLI config file
(`$XDG_CONFIG_HOME/ais/cli/cli.json`, default `~/.config/ais/cli/cli.json`; env `AIS_CLI_CONFIG`
names another file), then the local cluster's default `http://127.0.0.1:8080`.

Token (sent as `Authorization: Bearer`): env `AIS_AUTHN_TOKEN`, else the one `ais auth login`
saved (`auth.token` beside the config file; env `AIS_AUTHN_TOKEN_FILE` names another file).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, Mapping

from ais.client import Client, InvalidName, RetryPolicy, StatusError, to_bucket
from ais.client.transport import Timeouts
from ais.names import Bucket

DEFAULT_ENDPOINT = "http://127.0.0.1:8080"


class CommandError(Exception):
    """A one-line error for the user (printed as `ais: <message>`, exit status 1)."""


def config_path() -> str:
    explicit = os.environ.get("AIS_CLI_CONFIG")
    if explicit:
        return explicit
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return os.path.join(base, "ais", "cli", "cli.json")


def load_config() -> dict[str, Any]:
    """The CLI config file, or {} when there is none; a malformed one is an error."""
    path = config_path()
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise CommandError(f"cannot read the CLI config {path}: {exc}") from None
    if not isinstance(doc, dict):
        raise CommandError(f"the CLI config {path} must be a JSON object")
    return doc


def token_path() -> str:
    return os.environ.get("AIS_AUTHN_TOKEN_FILE") or os.path.join(os.path.dirname(config_path()), "auth.token")


def saved_token() -> str:
    """The token `ais auth login` saved (`{"token": ...}`, or the bare token), or ""."""
    path = token_path()
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read().strip()
    except FileNotFoundError:
        return ""
    except OSError as exc:
        raise CommandError(f"cannot read the saved token {path}: {exc}") from None
    if text.startswith("{"):
        try:
            doc = json.loads(text)
        except ValueError:
            raise CommandError(f"the saved token {path} is not valid JSON (run `ais auth login` again)") from None
        return str(doc.get("token") or "") if isinstance(doc, dict) else ""
    return text


def endpoint(args: argparse.Namespace) -> str:
    given = getattr(args, "endpoint", None) or os.environ.get("AIS_ENDPOINT")
    if given:
        return str(given)
    cluster = load_config().get("cluster")
    url = cluster.get("url") if isinstance(cluster, dict) else None
    return str(url or DEFAULT_ENDPOINT)


_clients: list[Client] = []


def client(args: argparse.Namespace) -> Client:
    """The client of this command: few retries, so an unreachable cluster fails in seconds.
    One per command run; `close_clients()` closes it on the way out."""
    if _clients:
        return _clients[0]
    cfg = load_config().get("timeout")
    timeouts = Timeouts()
    if isinstance(cfg, dict):
        timeouts = Timeouts(connect_s=float(cfg.get("connect_s", timeouts.connect_s)),
                            read_s=float(cfg.get("read_s", timeouts.read_s)),
                            control_s=float(cfg.get("control_s", timeouts.control_s)))
    token = None if os.environ.get("AIS_AUTHN_TOKEN") else (saved_token() or None)   # None: the client reads the env
    c = Client(endpoint(args), retry=RetryPolicy(max_attempts=3, backoff_s=0.2), timeouts=timeouts, token=token)
    _clients.append(c)
    return c


def close_clients() -> None:
    while _clients:
        try:
            _clients.pop().close()
        except Exception:   # closing is best effort on the way out; the command's result stands
            pass


# --- names ------------------------------------------------------------------------------------

def split_name(text: str) -> tuple[Bucket, str]:
    """`ais://bucket/dir/obj` -> (bucket, "dir/obj"); a name without `://` is an ais bucket.

    Providers: `ais://`, `s3://`|`aws://`, `gs://`|`gcp://`, `az://`|`azure://`, `oc://`;
    a namespace as `ais://@uuid#ns/bucket/obj`.
    """
    provider, sep, rest = text.partition("://")
    if not sep:
        provider, rest = "ais", text
    ns = ""
    if rest.startswith("@"):
        ns, _, rest = rest.partition("/")
    name, _, obj = rest.partition("/")
    if not name:
        raise CommandError(f"{text!r}: expected provider://bucket[/object]")
    try:
        bck = to_bucket(f"{provider}://{ns + '/' if ns else ''}{name}")
    except InvalidName as exc:
        raise CommandError(f"{text!r}: {exc.message}") from None
    return bck, obj


def bucket_arg(text: str) -> Bucket:
    bck, obj = split_name(text)
    if obj:
        raise CommandError(f"{text!r}: expected a bucket, not an object (provider://bucket)")
    return bck


def object_arg(text: str) -> tuple[Bucket, str]:
    bck, obj = split_name(text)
    if not obj:
        raise CommandError(f"{text!r}: expected an object (provider://bucket/object)")
    return bck, obj


def provider_only(text: str) -> str | None:
    """`ais://` or `s3:` -> the provider (for listing buckets); None for anything else."""
    prov, sep, rest = text.partition("://")
    if sep and not rest.strip("/"):
        return prov
    return None


def bucket_wire(bck: Bucket) -> dict[str, Any]:
    return bck.to_wire()


def unsupported(what: str, exc: StatusError) -> CommandError:
    """A server's refusal of an admin call, as one line: 'not supported' when the route or action
    does not exist there (404, 405, 501, unknown action)."""
    text = exc.message.lower()
    if exc.status in (405, 501) or (exc.status == 404 and "no such route" in text) \
            or (exc.status == 400 and "unknown" in text and "action" in text):
        return CommandError(f"{what}: not supported by this cluster ({exc.status}: {exc.message})")
    return CommandError(f"{what}: {exc.message}")


# --- prompts ----------------------------------------------------------------------------------

def confirm(args: argparse.Namespace, question: str) -> None:
    """Ask `[Y/N]` unless `--yes`; without a terminal to ask on, refuse (say to pass --yes)."""
    if getattr(args, "yes", False):
        return
    if not sys.stdin.isatty():
        raise CommandError(f"{question} (no terminal to confirm on: pass --yes)")
    answer = input(f"{question} [Y/N]: ").strip().lower()
    if answer not in ("y", "yes"):
        raise CommandError("aborted")


def parse_kv(pairs: list[str]) -> dict[str, Any]:
    """`a.b=1 c=true d=text` (or one JSON object) -> {"a.b": 1, "c": True, "d": "text"}."""
    if len(pairs) == 1 and pairs[0].lstrip().startswith("{"):
        try:
            doc = json.loads(pairs[0])
        except ValueError as exc:
            raise CommandError(f"invalid JSON: {exc}") from None
        if not isinstance(doc, dict):
            raise CommandError("expected a JSON object")
        return doc
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise CommandError(f"{pair!r}: expected key=value")
        out[key.strip()] = parse_value(value)
    return out


def parse_value(text: str) -> Any:
    low = text.strip().lower()
    if low in ("true", "false"):
        return low == "true"
    try:
        return json.loads(text)
    except ValueError:
        return text


def nest(flat: Mapping[str, Any]) -> dict[str, Any]:
    """{"a.b": 1, "a.c": 2} -> {"a": {"b": 1, "c": 2}}."""
    out: dict[str, Any] = {}
    for key, value in flat.items():
        node = out
        parts = key.split(".")
        for p in parts[:-1]:
            child = node.setdefault(p, {})
            if not isinstance(child, dict):
                raise CommandError(f"{key!r} conflicts with another key")
            node = child
        node[parts[-1]] = value
    return out
