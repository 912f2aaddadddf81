"""What an untrusted file or visitor can reach: checkpoints load only as plain tensors
(``weights_only=True``), the UI opens no user-supplied path, XSRF protection stays on.

The over-limit upload and the server's refusal of uploads without the XSRF token are proven live in
tests/e2e/test_browser_bad_input.py.
"""
from __future__ import annotations

import ast
import os
import pickle
import tomllib

import pytest
import torch
from streamlit.testing.v1 import AppTest

from engine.images import MAX_BYTES
from engine.models import ModelLoadError, load_model
from tests.conftest import ROOT

SOURCES = sorted([*(ROOT / "engine").rglob("*.py"), *(ROOT / "pages").glob("*.py"), *(ROOT / "ui").glob("*.py"), ROOT / "app.py"])
PAGES = sorted((ROOT / "pages").glob("*.py"))


class Payload:
    """Unpickling this runs ``os.mkdir(marker)``: the proof that a pickle executed code."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return os.mkdir, (self.marker,)


def _write(kind: str, path, marker) -> None:
    payload = {"features.0.weight": Payload(str(marker))}
    if kind == "torch-zip":
        torch.save(payload, path)
    elif kind == "torch-legacy":
        torch.save({"state_dict": payload}, path, _use_new_zipfile_serialization=False)
    else:
        path.write_bytes(pickle.dumps(payload))


@pytest.mark.parametrize("kind", ["torch-zip", "torch-legacy", "plain-pickle"])
def test_a_malicious_checkpoint_is_refused_and_its_payload_never_runs(tmp_path, kind):
    marker, checkpoint = tmp_path / "payload-ran", tmp_path / "weights.pt"
    _write(kind, checkpoint, marker)
    with pytest.raises(ModelLoadError, match="weights_only=True"):
        load_model("efficientnet_lite0", str(checkpoint), device="cpu")
    assert not marker.exists()
    if kind == "plain-pickle":  # the control: an unsafe load does run the payload
        pickle.loads(checkpoint.read_bytes())
    else:
        torch.load(checkpoint, weights_only=False)
    assert marker.is_dir()


def test_a_plain_state_dict_file_loads(tmp_path):
    source = load_model("efficientnet_lite0", "random", device="cpu").module
    state = {k: v + 1 for k, v in source.state_dict().items() if v.is_floating_point()}
    state |= {k: v for k, v in source.state_dict().items() if not v.is_floating_point()}
    torch.save(state, tmp_path / "weights.pt")
    loaded = load_model("efficientnet_lite0", str(tmp_path / "weights.pt"), device="cpu")
    name, tensor = next(iter(loaded.module.state_dict().items()))
    assert torch.equal(tensor, state[name]) and loaded.weights == "file weights.pt"


def _calls(path):
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Call):
            yield node, ast.unparse(node.func)


def test_every_torch_load_in_the_code_says_weights_only_true():
    loads = [(path, node) for path in SOURCES for node, name in _calls(path) if name == "torch.load"]
    assert loads, "expected the engine's checkpoint loaders"
    for path, node in loads:
        flags = {k.arg: k.value for k in node.keywords}
        assert isinstance(flags.get("weights_only"), ast.Constant) and flags["weights_only"].value is True, (
            f"{path.name}:{node.lineno}")


def test_no_pickle_or_eval_on_untrusted_data():
    unsafe = {"pickle.load", "pickle.loads", "eval", "exec", "torch.jit.load", "joblib.load"}
    found = [f"{p.name}:{n.lineno} {name}" for p in SOURCES for n, name in _calls(p) if name in unsafe]
    for path in SOURCES:
        for node, name in _calls(path):
            if name.endswith("np.load") or name == "numpy.load":
                flags = {k.arg: k.value for k in node.keywords}
                allow = flags.get("allow_pickle")
                if allow is not None and not (isinstance(allow, ast.Constant) and allow.value is False):
                    found.append(f"{path.name}:{node.lineno} np.load(allow_pickle=...)")
    assert not found, found


def test_pages_open_no_file_by_name():
    """Pages get files only through uploaders: no open(), Path(), np.load, load_model on their own."""
    opening = {"open", "Path", "pathlib.Path", "load_model", "torch.load", "np.load"}
    found = [f"{p.name}:{n.lineno} {name}" for p in PAGES for n, name in _calls(p)
             if name in opening or name.endswith((".read_bytes", ".read_text", ".open"))]
    for path in PAGES:  # load_image takes bytes or a path: in a page, only an upload's bytes
        for node, name in _calls(path):
            if name.endswith("load_image") and not (
                    node.args and isinstance(node.args[0], ast.Call)
                    and ast.unparse(node.args[0].func).endswith((".getvalue", ".read"))):
                found.append(f"{path.name}:{node.lineno} {ast.unparse(node)}")
    assert not found, found


def test_no_text_input_asks_for_a_path():
    words = ("path", "file", "folder", "directory", "checkpoint", "weights", "url", ".pt", ".pth")
    for path in [*PAGES, *(ROOT / "ui").glob("*.py"), ROOT / "app.py"]:
        for node, name in _calls(path):
            if name.split(".")[-1] in ("text_input", "text_area", "chat_input"):
                label = ast.unparse(node.args[0]) if node.args else ""
                assert not any(w in label.lower() for w in words), f"{path.name}:{node.lineno} {label}"


@pytest.mark.slow
def test_the_sidebar_offers_only_named_weights():
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=180).run()
    assert not at.exception
    assert list(at.sidebar.radio[0].options) == ["pretrained", "random"]
    assert not at.sidebar.text_input and not at.sidebar.text_area


def test_the_server_config_keeps_xsrf_on_and_the_upload_limit_in_step():
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    server = config["server"]
    assert server["enableXsrfProtection"] is True
    assert server.get("enableCORS", True) is True  # Streamlit turns XSRF off when CORS is off
    assert server["maxUploadSize"] * 2**20 == MAX_BYTES
    assert config["browser"]["gatherUsageStats"] is False
