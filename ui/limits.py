"""The limits whoever runs the server sets: how much work one run, one link or one widget may ask for.

Owns: reading the limits (``streamlit run app.py -- --max-steps N …``, else ``DEEP_INSIDE_MAX_STEPS=N``
…, else the defaults below, safe for a shared CPU server), and clamping a value beyond a limit with a
note, as a link's unusable value gets one. The upload size is Streamlit's own ``server.maxUploadSize``
(``.streamlit/config.toml``), reported here. May import: ``ui.links`` (its notes; lazily, as it imports torch
and ``ui.jobs`` is imported by app.py before a page).
"""
from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import streamlit as st

ENV_PREFIX = "DEEP_INSIDE_"  # DEEP_INSIDE_MAX_STEPS, ...


@dataclass(frozen=True)
class Limits:
    """What one run may ask for, and how many heavy runs the server does at once."""

    max_steps: int = 1000  # class model steps per run: every preset's own count (≤ 512) fits
    max_classes: int = 4  # classes optimised together in one run (one batch: memory and time grow with it)
    max_views: int = 10  # saliency views averaged per map, 1 or 10 (the paper's); the whole-photo view counts as 1
    max_ig_steps: int = 256  # Integrated Gradients steps on the faithfulness page: fixed choices and adaptive's cap (its own is 256)
    heavy_runs: int = max(1, os.cpu_count() or 1)  # long runs at once, server-wide; the rest wait in line

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{option(field.name)} must be a whole number ≥ 1; got {value!r}.")
        if self.max_views not in (1, 10):
            raise ValueError(f"--max-views must be 1 or 10; got {self.max_views}.")


def option(name: str) -> str:
    return "--" + name.replace("_", "-")


def read_limits(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> Limits:
    """The limits from the command line after ``--`` (``--max-steps 500`` or ``--max-steps=500``), else the
    environment (``DEEP_INSIDE_MAX_STEPS=500``), else the defaults; a ValueError names a bad one."""
    argv = sys.argv[1:] if argv is None else list(argv)
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for field in dataclasses.fields(Limits):
        flag, raw = option(field.name), environ.get(ENV_PREFIX + field.name.upper())
        for i, arg in enumerate(argv):
            if arg == flag and i + 1 < len(argv):
                raw = argv[i + 1]
            elif arg.startswith(flag + "="):
                raw = arg.split("=", 1)[1]
        if raw is not None:
            try:
                values[field.name] = int(raw)
            except ValueError:
                raise ValueError(f"{flag} must be a whole number; got {raw!r}.") from None
    return Limits(**values)


_LIMITS: list[Limits] = []  # read once per server process
_PROBLEM: list[str] = []


def limits() -> Limits:
    """This server's limits; an operator's bad value is reported on every page (``show_problem``) and the defaults used."""
    if not _LIMITS:
        try:
            _LIMITS.append(read_limits())
        except ValueError as exc:
            _PROBLEM.append(f"The server's limits could not be read ({exc}); using the defaults.")
            _LIMITS.append(Limits())
    return _LIMITS[0]


def show_problem() -> None:
    limits()
    if _PROBLEM:
        st.sidebar.error(_PROBLEM[0])


def upload_mb() -> int:
    return int(st.get_option("server.maxUploadSize"))


def clamp(key: str, most: Any, *, link: str, what: str, allowed: Sequence | None = None) -> None:
    """Before the widget of ``key``: a value beyond this server's limit becomes ``most`` (a number above it; a
    list, its first ``most``; a choice not in ``allowed``), with a note that stays until the person changes it."""
    from ui.links import URL_NOTES_KEY

    value = st.session_state.get(key)
    if value is None:
        return
    if allowed is not None:
        fitted = value if value in allowed else most
    elif isinstance(value, (list, tuple)):
        fitted = type(value)(value[:most])
    else:
        fitted = min(value, most)
    if fitted == value:
        return
    st.session_state[key] = fitted
    asked = f"{len(value)} {what}" if isinstance(value, (list, tuple)) else f"{value} {what}"
    kept = f"the first {most}" if isinstance(value, (list, tuple)) else str(fitted)
    text = (f"`{link}` asks for {asked}; this server allows at most {most}, so {kept} it is. "
            "Whoever runs the server sets the limits (README, “Limits for operators”).")
    st.session_state.setdefault(URL_NOTES_KEY, {})[key] = {"text": text, "seen": False, "value": fitted}
    st.warning(text, icon=":material/speed:")
