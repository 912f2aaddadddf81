"""Joining a running Ray cluster (``--ray HOST:PORT``) for the folder runs of §3.2 at scale: why it
would fail, found in about a second and said in one line, before ``ray.init`` retries for 20 s or more.

Ray 2.60's token authentication (docs/scaling.md): a cluster whose head was started with token mode on
(``RAY_AUTH_MODE=token``, or unset with a token already on the head) rejects a driver that sends no
token, or another token. With an explicit address Ray turns token mode on for the driver only when
``RAY_AUTH_MODE=token`` is set; the token is then, in Ray's order, ``RAY_AUTH_TOKEN``, the file named
by ``RAY_AUTH_TOKEN_PATH``, or ``~/.ray/auth_token``. A rejected driver saw only Ray's own log lines
about it, then a generic "Failed to connect" after 20 retries; a port where nothing listens kept
``ray.init`` waiting for minutes. Nothing here ever says the token itself, only where it comes from.
"""
from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from pathlib import Path

CONNECT_SECONDS = 5.0  # a head that has not taken a TCP connection by then is unreachable (SYN resent at 1 and 3 s)
GUIDE = "see docs/scaling.md"


def check_cluster(address: str, env: Mapping[str, str] | None = None) -> None:
    """Raise ValueError with one line when joining the cluster at ``address`` ("HOST:PORT") would fail:
    this driver's token setting is broken, the host is unknown, nothing listens there, the head does
    not answer, or it rejects the token. "auto" and ray:// addresses are left to Ray."""
    host_port = _host_port(address)
    if host_port is None:
        return
    env = os.environ if env is None else env
    problem = _token_problem(env) or _reach_problem(*host_port) or _auth_problem(address, env)
    if problem:
        raise ValueError(f"Cannot join the Ray cluster at {address!r}: {problem}")


def join_error(address: str, exc: BaseException, env: Mapping[str, str] | None = None) -> ValueError:
    """The one-line error for ``ray.init(address=address)`` failing with ``exc`` (after its retries):
    a rejected token said as such, not as Ray's "Failed to connect"."""
    from ray.exceptions import AuthenticationError

    env = os.environ if env is None else env
    chain = [exc]  # ray.init's ConnectionError, from the RuntimeError that quotes the last GCS error
    while len(chain) < 8 and (chain[-1].__cause__ or chain[-1].__context__) is not None:
        chain.append(chain[-1].__cause__ or chain[-1].__context__)
    if any("InvalidAuthToken" in str(link) for link in chain):
        why = _rejected(env)
    elif isinstance(exc, AuthenticationError):  # Ray found no token to send
        why = f"{exc.message}: put the cluster's token in ~/.ray/auth_token or in a file named by RAY_AUTH_TOKEN_PATH ({GUIDE})"
    else:
        why = str(exc)
    return ValueError(f"Cannot join the Ray cluster at {address!r}: {why}")


def _host_port(address: str) -> tuple[str, int] | None:
    host, _, port = address.rpartition(":")
    if not host or "://" in address or not port.isdigit():
        return None
    return host.strip("[]"), int(port)


def _token_mode(env: Mapping[str, str]) -> bool:
    return env.get("RAY_AUTH_MODE", "").lower() == "token"


def _token_file(env: Mapping[str, str]) -> Path:
    if env.get("RAY_AUTH_TOKEN_PATH"):
        return Path(env["RAY_AUTH_TOKEN_PATH"])
    return Path(env.get("HOME") or Path.home()) / ".ray" / "auth_token"


def _token_source(env: Mapping[str, str]) -> str:
    """Where Ray takes this driver's token from under RAY_AUTH_MODE=token, in Ray's order."""
    if env.get("RAY_AUTH_TOKEN"):
        return "RAY_AUTH_TOKEN"
    if env.get("RAY_AUTH_TOKEN_PATH"):
        return f"the file RAY_AUTH_TOKEN_PATH names, {_token_file(env)}"
    return str(_token_file(env))


def _token_problem(env: Mapping[str, str]) -> str | None:
    """What is wrong with this driver's token setting, before Ray reads it (Ray's C++ loader aborts the
    whole process on a RAY_AUTH_TOKEN_PATH it cannot read, and on token mode without any token)."""
    if not _token_mode(env) or env.get("RAY_AUTH_TOKEN"):
        return None
    path = _token_file(env)
    try:
        if path.read_text().strip():
            return None
    except (OSError, UnicodeDecodeError):
        pass
    if env.get("RAY_AUTH_TOKEN_PATH"):
        return f"RAY_AUTH_TOKEN_PATH names {path}, which cannot be read or is empty: point it at a copy of the cluster's token ({GUIDE})"
    return (f"RAY_AUTH_MODE=token, but this machine has no token ({path} is missing or empty, and neither "
            f"RAY_AUTH_TOKEN_PATH nor RAY_AUTH_TOKEN is set): copy the cluster's token there ({GUIDE})")


def _reach_problem(host: str, port: int) -> str | None:
    try:
        socket.create_connection((host, port), timeout=CONNECT_SECONDS).close()
    except socket.gaierror:
        return f"the host {host!r} is not known here (no address for that name): check the head's address"
    except ConnectionRefusedError:
        return (f"nothing is listening at {host}:{port}: check the port (`ray start --head --port=PORT` "
                "chooses it, and prints the address to join) and that the head is running")
    except TimeoutError:
        return (f"{host}:{port} did not answer within {CONNECT_SECONDS:g} s: the head machine is down or "
                "unreachable from here (a network or firewall in the way)")
    except OSError as exc:  # no route to the host or its network
        return f"{host}:{port} is unreachable from here ({exc.strerror or exc}): check the address and the network"
    return None


def _auth_problem(address: str, env: Mapping[str, str]) -> str | None:
    """Ask the head's GCS for the cluster id once, as ``ray.init`` does first: a rejected token is an
    AuthenticationError at once, where ``ray.init`` would retry 20 times."""
    try:
        from ray._raylet import GcsClient  # Ray's own client (what ray.init and `ray status` use)
    except ImportError:  # another Ray: leave it to ray.init
        return None
    from ray.exceptions import AuthenticationError, RayError

    try:
        GcsClient(address=address)
    except AuthenticationError:
        return _rejected(env)
    except RayError as exc:
        return (f"something at {address} takes connections but does not answer as a Ray head ({exc}): "
                "check the port (`ray start --head` prints the address to join)")
    return None


def _rejected(env: Mapping[str, str]) -> str:
    if not _token_mode(env):
        return ("the cluster requires a token (token authentication) and this driver sent none: set "
                "RAY_AUTH_MODE=token, with the cluster's token in ~/.ray/auth_token or in a file named by "
                f"RAY_AUTH_TOKEN_PATH ({GUIDE})")
    return (f"the cluster rejected this driver's token (from {_token_source(env)}): it is not the token the "
            f"cluster was started with; copy the head's token ({GUIDE})")
