"""`python -m engine`: JSON out, files out, one-line errors and a non-zero exit on bad input."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from engine.__main__ import main
from tests.conftest import ASSETS, ROOT


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_predict_prints_index_label_probability_logit(capsys):
    code, out, _ = run_cli(capsys, "predict", str(ASSETS / "espresso.jpg"), "--top", "3")
    rows = json.loads(out)
    assert code == 0 and len(rows) == 3
    assert set(rows[0]) == {"index", "label", "probability", "logit"}
    assert rows[0]["label"] == "espresso"


def test_saliency_writes_a_float32_map_at_the_image_resolution(capsys, tmp_path):
    out_path = tmp_path / "map.npy"
    code, out, _ = run_cli(capsys, "saliency", str(ASSETS / "cat.jpg"), "--weights", "random",
                           "--class", "Egyptian cat", "--crops", "10", "--reduce", "l2", "--out", str(out_path))
    summary = json.loads(out)
    saliency = np.load(out_path)
    assert code == 0 and saliency.dtype == np.float32 and saliency.shape == (300, 451)
    assert summary["class_index"] == 285 and summary["label"] == "Egyptian cat" and summary["views"] == 10


def test_cuda_math_is_an_option_and_leaves_a_cpu_run_alone(capsys):
    flags = torch.backends.cudnn.allow_tf32, torch.backends.cudnn.deterministic
    code, out, _ = run_cli(capsys, "predict", str(ASSETS / "cat.jpg"), "--weights", "random", "--device", "cpu", "--cuda-math", "fast")
    assert code == 0 and len(json.loads(out)) == 5
    assert (torch.backends.cudnn.allow_tf32, torch.backends.cudnn.deterministic) == flags  # set only for CUDA models


@pytest.mark.parametrize("args, message", [
    (["predict", "/no/such.png"], "No such file"),
    (["predict", str(ROOT / "pyproject.toml")], "not an image"),
    (["predict", str(ASSETS / "cat.jpg"), "--model", "torchvision:vgg99"], "Unknown model"),
    (["predict", str(ASSETS / "cat.jpg"), "--top", "0"], "top must be"),
    (["saliency", str(ASSETS / "cat.jpg"), "--class", "unicorn", "--out", "/tmp/x.npy"], "No ImageNet class"),
])
def test_bad_input_gives_exit_1_and_one_line_on_stderr(capsys, args, message):
    code, out, err = run_cli(capsys, *args)
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and err.startswith("error: ") and message in err


def test_the_module_runs_as_a_program(tmp_path):
    done = subprocess.run([sys.executable, "-m", "engine", "--help"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0
    for command in ("predict", "saliency"):
        assert command in done.stdout
