"""Arguments and error handling shared by the subcommands."""
from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.catalog import CUDA_MATH, DEFAULT_MODEL, MODEL_NAMES
from engine.images import load_image

if TYPE_CHECKING:
    from engine.models import LoadedModel


def add_model_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default=DEFAULT_MODEL, help=f"one of {', '.join(MODEL_NAMES)} (default: %(default)s)")
    parser.add_argument("--weights", default="pretrained", help="pretrained | random | PATH to a state dict (default: %(default)s)")
    parser.add_argument("--device", default=None, help="cpu | cuda (default: CUDA when present)")
    parser.add_argument("--cuda-math", choices=CUDA_MATH, default="exact", help=(
        "exact: float32 and deterministic cuDNN, reproducible; fast: TF32 and any cuDNN algorithm "
        "(gradients ~1e-1 off float64, runs differ) (default: %(default)s)"))


def model_from_args(args: argparse.Namespace) -> LoadedModel:
    from engine.models import load_model  # torch: only the commands that run a model import it

    return load_model(args.model, args.weights, device=args.device, math=args.cuda_math)


def read_image(path: str) -> np.ndarray:
    try:
        return load_image(path)
    except FileNotFoundError:
        raise ValueError(f"No such file: {path}") from None
    except IsADirectoryError:
        raise ValueError(f"{path} is a folder, not an image file.") from None


def print_json(payload: Any) -> None:
    json.dump(payload, sys.stdout, indent=2)
    sys.stdout.write("\n")
