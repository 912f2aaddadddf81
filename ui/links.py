"""Links that reopen a view: a page's inputs kept in its URL's query parameters, and their parsers.

Owns: ``UrlParam``, ``linked`` / ``restore_from_url`` / ``keep_in_url``, the ``run=1`` parameter, the
parsers (``one_of``, ``number_in``, ``list_of``) whose ValueError becomes a note on the page, the sidebar
model's parameters and the "Link to this view" popover. May import: engine, ``ui.state``.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import numpy as np
import streamlit as st

from engine.models import (
    DEFAULT_MODEL,
    MODEL_NAMES,
)
from ui.state import MODEL_KEY, UI_WEIGHTS, WEIGHTS_KEY

# ---------------------------------------------------------------- links that reopen a view
# A page's inputs live in its URL's query parameters: ``with ui.linked(*params):`` around its widgets
# sets them from a link (a fresh browser, a link opened, back and forward) and writes them back after.
# A value this session wrote itself is never read back, so it cannot undo the person's last click; a
# link's unusable value leaves the widget at its default, with a note that says so.
URL_WRITTEN_KEY = "_url_written"  # {state key: the text this session last put in the URL for it, or None}
URL_NOTES_KEY = "_url_notes"  # {state key: {"text", "seen", "value"}}: a link's unusable value and what replaced it


@dataclass(frozen=True)
class UrlParam:
    """A value kept in the URL as ``name``: the widget (or session-state) ``key`` it sets, ``parse`` from
    the URL's text (a ValueError says why a link's value cannot be used), ``dump`` back to text, and the
    ``default``, which is left out of the URL (so is None)."""

    name: str
    key: str
    parse: Callable[[str], Any]
    dump: Callable[[Any], str] = str
    default: Any = None


def restore_from_url(*params: UrlParam, show_notes: bool = True) -> None:
    """Before the widgets: a value a link brings sets its widget's state; an unusable one, the default."""
    written = st.session_state.setdefault(URL_WRITTEN_KEY, {})
    notes = st.session_state.setdefault(URL_NOTES_KEY, {})
    for param in params:
        raw = st.query_params.get(param.name)
        if raw is not None and (raw != written.get(param.key) or param.key not in st.session_state):
            written[param.key] = raw
            try:
                st.session_state[param.key] = param.parse(raw)
                notes.pop(param.key, None)
            except ValueError as exc:
                st.session_state.pop(param.key, None)  # the widget's own default
                notes[param.key] = {"text": f"This link's `{param.name}={raw}` cannot be used: {exc} "
                                            "Showing the default instead.", "seen": False, "value": None}
        note = notes.get(param.key)
        if note is not None and note["seen"] and st.session_state.get(param.key, param.default) != note["value"]:
            del notes[param.key]  # the person has chosen something else since
        elif note is not None and show_notes:
            st.warning(note["text"], icon=":material/link_off:")


def keep_in_url(*params: UrlParam, values: Mapping[str, Any] | None = None) -> None:
    """After the widgets: each value in the URL as text, defaults and None left out. ``values`` (by name)
    stand in for session state where what is shown is not one widget's value (an upload: None)."""
    written = st.session_state.setdefault(URL_WRITTEN_KEY, {})
    notes = st.session_state.get(URL_NOTES_KEY, {})
    for param in params:
        value = values[param.name] if values and param.name in values else st.session_state.get(param.key, param.default)
        text = None if value is None or _same(value, param.default) else param.dump(value)
        if text is None and param.name in st.query_params:
            del st.query_params[param.name]
        elif text is not None and st.query_params.get(param.name) != text:
            st.query_params[param.name] = text
        written[param.key] = text
        if param.key in notes and not notes[param.key]["seen"]:
            notes[param.key].update(seen=True, value=st.session_state.get(param.key, param.default))


@contextmanager
def linked(*params: UrlParam):
    """``with ui.linked(*params):`` around the widgets that ``params`` name: restored before, kept after."""
    restore_from_url(*params)
    try:
        yield
    finally:
        keep_in_url(*params)


RUN_REQUESTED = "requested by a link"  # a run parameter's state when a link has just asked for the run


def run_param(key: str) -> UrlParam:
    """``run=1``: the view is a result that takes a run, and a link to it runs it on arrival, as the page's
    button does. ``key`` holds RUN_REQUESTED when a link asks; the page then sets it to whether a result
    is shown (True: ``run=1`` stays in the URL)."""
    def parse(raw: str) -> str:
        if raw != "1":
            raise ValueError("it must be 1 (run on arrival) or absent.")
        return RUN_REQUESTED
    return UrlParam("run", key, parse, dump=lambda value: "1", default=False)


def _same(value: Any, default: Any) -> bool:
    if isinstance(value, (list, tuple)) and isinstance(default, (list, tuple)):
        return list(value) == list(default)
    return value == default


def one_of(options: Sequence, cast: Callable[[str], Any] = str) -> Callable[[str], Any]:
    """A parser that accepts the text of one of ``options`` (``cast`` turns the text into an option)."""
    def parse(raw: str) -> Any:
        try:
            value = cast(raw)
        except ValueError:
            value = raw
        if value not in options:
            raise ValueError(f"it must be one of {', '.join(map(str, options))}.")
        return options[list(options).index(value)]
    return parse


def number_in(low: float, high: float, cast: Callable[[str], Any] = float) -> Callable[[str], Any]:
    """A parser of a number (``cast``: int or float) within ``low``..``high``."""
    def parse(raw: str) -> Any:
        try:
            value = cast(raw)
        except ValueError:
            raise ValueError(f"it is not {'a whole number' if cast is int else 'a number'}.") from None
        if not (math.isfinite(value) and low <= value <= high):
            raise ValueError(f"it must be between {low} and {high}.")
        return value
    return parse


def list_of(parse_one: Callable[[str], Any], *, most: int | None = None) -> Callable[[str], list]:
    """A parser of comma-separated items, each by ``parse_one``, at most ``most`` of them, no repeats."""
    def parse(raw: str) -> list:
        items = list(dict.fromkeys(parse_one(part) for part in raw.split(",") if part.strip()))
        if most is not None and len(items) > most:
            raise ValueError(f"it names {len(items)}; at most {most} fit.")
        return items
    return parse


def number_text(value: Any) -> str:
    """A number as a link writes it: ints plainly, floats shortest (``0.6``, ``1e-05``)."""
    return str(int(value)) if isinstance(value, (int, np.integer)) or float(value).is_integer() else f"{float(value):g}"


def list_text(values: Sequence) -> str:
    return ",".join(str(v) for v in values)


MODEL_PARAMS = (UrlParam("model", MODEL_KEY, one_of(MODEL_NAMES), default=DEFAULT_MODEL),  # the sidebar's, on every page
                UrlParam("weights", WEIGHTS_KEY, one_of(UI_WEIGHTS), default=UI_WEIGHTS[0]))


def copy_link(container: Any = None) -> None:
    """A "Link to this view" popover: this page's address with its parameters, and the code box's copy button.
    Call it after the page's ``keep_in_url``; ``container`` places it higher up the page."""
    restore_from_url(*MODEL_PARAMS, show_notes=False)  # the sidebar is drawn after the page: its model, now
    keep_in_url(*MODEL_PARAMS)
    query = urlencode(st.query_params.to_dict())
    url = f"{st.context.url or ''}{'?' + query if query else ''}"
    with (container if container is not None else st.container()):
        with st.popover("Link to this view", icon=":material/link:"):
            st.code(url, language=None, wrap_lines=True)
            st.caption("Copy it with the box's copy button. Opened in any browser, it shows this page with these inputs "
                       "and settings; an upload cannot go in a link (the link opens a demo photo instead).")
