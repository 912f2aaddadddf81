"""The paper at a glance (Simonyan, Vedaldi & Zisserman 2013), made by this engine: §2 class model images
of the paper's Figure 1 classes, in the paper's preset and a regularised one side by side; §3.1 saliency
maps of the demo photos for their top-1 class; §3.2 the automatic mask and box of the same photos; §4 the
gradient, DeconvNet and guided backprop maps of one photo.

``python -m engine gallery --out DIR`` writes small web-ready tiles and ``manifest.json``: for each tile
the command, model, class, method, preset and settings, seed, and the page and query parameters that
reopen it in the app. Deterministic: fixed seeds, each class image optimised alone (a batch of classes
rounds differently, ``engine.classviz.visualise``), exact math, one CPU thread (``--threads``:
convolutions split their sums by thread, and 20 paper steps of one class on 1 and 2 threads already
differ by up to 167/255). The home page draws the shipped gallery
from the manifest without a model, so reading it imports no torch: the engine functions that make the
tiles are imported when a tile is made.
"""
from __future__ import annotations

import dataclasses
import io
import json
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.catalog import DEFAULT_MODEL

MANIFEST = "manifest.json"
ASSETS = Path(__file__).resolve().parents[2] / "assets"  # the app's demo photos; its shipped gallery is ASSETS / "gallery"
COMMAND = "python -m engine gallery"
SECTIONS = (  # (id, title, what the paper shows there)
    ("2", "Class model visualisation", "Figure 1: the image that maximises each class score, S_c(I) − λ‖I‖², from the zero image"),
    ("3.1", "Image-specific class saliency", "Figure 2: M = max_c |∂S_c/∂I| for the top-1 class, one backward pass"),
    ("3.2", "Weakly supervised segmentation", "Figure 3: saliency seeds colour models, a graph cut separates the object, its box"),
    ("4", "Gradient, DeconvNet, guided backprop", "§4: the three differ only in the backward rule through a ReLU"),
)
# The paper's Figure 1, in its order (names as printed there; the PDF was not at hand to re-check, see
# assets/README.md). Its "husky" is ILSVRC's n02109961 "Eskimo dog, husky" (250 is "Siberian husky").
PAPER_CLASSES = ((543, "dumbbell"), (968, "cup"), (251, "dalmatian"), (945, "bell pepper"), (951, "lemon"),
                 (248, "husky"), (897, "washing machine"), (508, "computer keyboard"), (278, "kit fox"),
                 (99, "goose"), (9, "ostrich"), (627, "limousine"))
CLASSVIZ = (("maco", 128), ("paper", 100))  # (preset, steps), each preset's own steps: the readable preset first (MACO,
# seconds a class on a CPU; the class model page opens on its dumbbell), then the paper's
SEED = 0
PHOTOS = ("cat", "espresso", "astronaut", "grace_hopper", "rocket")  # the demo photos (assets/), the paper's kind first
RULES_PHOTO = "cat"
RULES = ("gradient", "deconvnet", "guided")
SALIENCY_VIEWS = 10  # the paper's 10 sub-images: the map covers the whole photo
TILE_SIDE = 320  # long side of the photo-sized tiles; class images and view maps stay at the network's 224
JPEG = dict(format="JPEG", quality=88, subsampling=0, optimize=True)  # 4:4:4: class images are all fine colour detail

OnStep = Callable[[int, int], "bool | None"]  # (step, steps) within one tile; False stops a class image early


@dataclass(frozen=True)
class TileSpec:
    """What one tile is: enough to make it again."""

    id: str
    section: str
    kind: str  # "classviz", "saliency", "segmentation", "view" (the centre crop) or "rule"
    file: str  # relative to the gallery folder, with "/"
    class_index: int | None = None  # None: the photo's top-1
    photo: str | None = None  # a photo's stem
    preset: str | None = None  # classviz or segmentation preset
    method: str | None = None  # attribution method or backward rule
    views: int | str | None = None
    steps: int | None = None
    seed: int | None = None


@dataclass(frozen=True, eq=False)
class TileImage:
    image_hwc: np.ndarray  # uint8 (H, W, 3) as shipped
    class_index: int | None
    label: str | None
    settings: dict  # what else made it (the preset's knobs, the box, the score)


@dataclass(frozen=True)
class Gallery:
    """A gallery folder as its manifest describes it."""

    folder: Path
    manifest: dict
    tiles: tuple[dict, ...]

    def section(self, section: str) -> tuple[dict, ...]:
        return tuple(t for t in self.tiles if t["section"] == section)

    def path(self, tile: dict) -> Path:
        """The tile's file, which must lie in the gallery's folder (a manifest names no other file)."""
        path = (self.folder / tile["file"]).resolve()
        if not path.is_relative_to(self.folder.resolve()):
            raise ValueError(f"The manifest names {tile['file']!r}, outside the gallery folder.")
        return path

    def picture(self, tile: dict) -> bytes:
        """The tile's JPEG."""
        return self.path(tile).read_bytes()

    def photo(self, tile: dict) -> bytes:
        """The demo photo a tile was made from, beside the gallery folder (``ASSETS``), as a JPEG."""
        if not re.fullmatch(r"[a-z0-9_]+", tile["photo"] or ""):
            raise ValueError(f"The manifest names the photo {tile['photo']!r}, not a demo photo's stem.")
        return (self.folder.parent / f"{tile['photo']}.jpg").read_bytes()


def gallery_specs(*, photos: Sequence[str] = PHOTOS, classviz: Sequence[tuple[str, int]] = CLASSVIZ,
                  classes: Sequence[tuple[int, str]] = PAPER_CLASSES, rules_photo: str = RULES_PHOTO) -> tuple[TileSpec, ...]:
    """Every tile, in the paper's order."""
    specs = [TileSpec(f"classviz-{preset}-{index:03d}", "2", "classviz", f"classviz/{preset}/{index:03d}_{_slug(name)}.jpg",
                      class_index=index, preset=preset, steps=steps, seed=SEED)
             for index, name in classes for preset, steps in classviz]
    specs += [TileSpec(f"saliency-{p}", "3.1", "saliency", f"saliency/{p}.jpg", photo=p, method="gradient", views=SALIENCY_VIEWS)
              for p in photos]
    specs += [TileSpec(f"segmentation-{p}", "3.2", "segmentation", f"segmentation/{p}.jpg", photo=p, preset=_segmentation_default())
              for p in photos]
    specs.append(TileSpec(f"view-{rules_photo}", "4", "view", f"rules/{rules_photo}_view.jpg", photo=rules_photo, views=1))
    specs += [TileSpec(f"rule-{rule}-{rules_photo}", "4", "rule", f"rules/{rules_photo}_{rule}.jpg", photo=rules_photo,
                       method=rule, views=1) for rule in RULES]
    return tuple(specs)


def _segmentation_default() -> str:
    from engine.segmentation.presets import (
        DEFAULT_PRESET,  # numpy, scipy and Pillow only: no torch
    )

    return DEFAULT_PRESET


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def make_tile(model, spec: TileSpec, photos_dir: str | Path, *, on_step: OnStep | None = None) -> TileImage:
    """Make one tile with the engine functions the pages call; ``on_step(step, steps)`` reports progress."""
    makers = {"classviz": _classviz, "saliency": _saliency, "segmentation": _segmentation, "view": _view, "rule": _rule}
    if spec.kind not in makers:
        raise ValueError(f"Unknown tile kind {spec.kind!r}; choose one of {', '.join(makers)}.")
    made = makers[spec.kind](model, spec, photos_dir, on_step)
    if spec.kind != "classviz" and on_step is not None:
        on_step(1, 1)
    return made


def _classviz(model, spec: TileSpec, photos_dir, on_step: OnStep | None) -> TileImage:
    from engine.classviz import get_preset, visualise_class

    config = dataclasses.replace(get_preset(spec.preset), steps=spec.steps)
    report = None if on_step is None else (lambda progress: on_step(progress.step, progress.steps))
    result = visualise_class(model, [spec.class_index], config=config, seed=spec.seed, on_step=report)
    settings = {"steps_run": result.steps_run, "score": round(result.final_scores[0], 3),
                "probability": round(result.final_probabilities[0], 4), **_config_settings(config)}
    return TileImage(result.images_hwc[0], spec.class_index, result.labels[0], settings)


def _config_settings(config) -> dict:
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(config).items()}


def _photo(photos_dir, stem: str) -> np.ndarray:
    from engine.images import load_image

    path = Path(photos_dir) / f"{stem}.jpg"
    if not path.is_file():
        raise ValueError(f"No photo {stem}.jpg in {photos_dir}.")
    return load_image(path)


def _top1(model, photo_hwc: np.ndarray, spec: TileSpec) -> int:
    from engine.attribution import predict

    if spec.class_index is not None:
        return spec.class_index
    return predict(model, photo_hwc, top=1, views=1)[0].index  # the page's top-1: its class picker's default


def _saliency(model, spec: TileSpec, photos_dir, on_step) -> TileImage:
    from engine.attribution import compute_saliency
    from engine.render import colourise, display_shape, fit

    photo = _photo(photos_dir, spec.photo)
    result = compute_saliency(model, photo, target=_top1(model, photo, spec), views=spec.views, method=spec.method)
    heat = colourise(fit(result.saliency_hw, display_shape(photo.shape, TILE_SIDE)))
    return TileImage(heat, result.class_index, result.label, {"reduce": result.reduce, "score": round(result.score, 3)})


def _segmentation(model, spec: TileSpec, photos_dir, on_step) -> TileImage:
    from engine.attribution import compute_saliency
    from engine.render import display_shape, fit, fit_box
    from engine.segmentation import masks
    from engine.segmentation.presets import get_preset, segment_with_preset

    photo, preset = _photo(photos_dir, spec.photo), get_preset(spec.preset)
    saliency = compute_saliency(model, photo, target=_top1(model, photo, spec), views=preset.views, method=preset.method)
    cut = segment_with_preset(photo, saliency.saliency_hw, preset)
    shown_hw = display_shape(photo.shape, TILE_SIDE)
    drawn = masks.draw_result(fit(photo, shown_hw), fit(cut.is_foreground_hw, shown_hw), fit_box(cut.bbox, photo.shape, shown_hw))
    settings = {"bbox": None if cut.bbox is None else list(cut.bbox), "area": cut.area, **preset.settings()}
    return TileImage(drawn, saliency.class_index, saliency.label, settings)


def _view(model, spec: TileSpec, photos_dir, on_step) -> TileImage:
    from engine.attribution.rules import centre_view

    return TileImage(centre_view(model, _photo(photos_dir, spec.photo)), None, None, {})


def _rule(model, spec: TileSpec, photos_dir, on_step) -> TileImage:
    """The max-abs map of one backward rule on the centre view, at the view's size (the rules page shows
    the same map placed on the photo)."""
    import torch

    from engine.attribution import get_method
    from engine.attribution.saliency import reduce_channels
    from engine.models import as_numpy
    from engine.render import colourise
    from engine.views import make_batch

    photo = _photo(photos_dir, spec.photo)
    target = _top1(model, photo, spec)
    batch, _, _ = make_batch(model, photo, 1)
    attribution, scores = get_method(spec.method)(model, batch, torch.as_tensor([target], device=batch.device))
    map_hw = as_numpy(reduce_channels(attribution.float(), "max-abs")[0])
    return TileImage(colourise(map_hw), target, model.categories[target], {"reduce": "max-abs", "score": round(float(scores[0]), 3)})


def encode_tile(image_hwc: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image_hwc)).save(buffer, **JPEG)
    return buffer.getvalue()


def decode_tile(data: bytes) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


# ---------------------------------------------------------------- the manifest
PAGES = {"classviz": "class_model", "saliency": "saliency", "segmentation": "segmentation", "view": "backward_rules",
         "rule": "backward_rules"}  # the app page (its URL path) that reopens each kind of tile


def tile_entry(spec: TileSpec, made: TileImage, model, out_label: str) -> dict:
    """The manifest's record of one tile: what made it, its caption, and the link that reopens it."""
    paper_name = dict(PAPER_CLASSES).get(made.class_index) if spec.kind == "classviz" else None
    entry = {**dataclasses.asdict(spec), "class_index": made.class_index, "label": made.label, "paper_name": paper_name,
             "width": int(made.image_hwc.shape[1]), "height": int(made.image_hwc.shape[0]),
             "model": model.name, "weights": model.weights, "settings": made.settings}
    entry["caption"] = caption(entry)
    entry["command"] = f"{COMMAND} --out {out_label} --only {spec.id}"
    entry["cli"] = _cli(spec, made)
    entry["link"] = link(entry)
    return entry


def caption(tile: dict) -> str:
    """One line: model, class, method and settings."""
    model = tile["model"] + ("" if tile["weights"] == "pretrained" else f" ({tile['weights']})")
    what = f"{tile['label']} ({tile['class_index']})" if tile["label"] else f"{tile['photo']}.jpg"
    if tile.get("paper_name") and tile["paper_name"] != tile["label"]:  # Figure 1's name for an ImageNet label
        what = f"{tile['paper_name']}: {what}"
    if tile["kind"] == "classviz":
        how = f"{tile['preset']} preset, {tile['steps']} steps, seed {tile['seed']}"
    elif tile["kind"] == "saliency":
        how = f"{tile['method']}, max-abs, {tile['views']} views, top-1 of {tile['photo']}.jpg"
    elif tile["kind"] == "segmentation":
        how = f"{tile['preset']} preset, box {tile['settings'].get('bbox')}, top-1 of {tile['photo']}.jpg"
    elif tile["kind"] == "rule":
        how = f"{tile['method']} rule, max-abs, centre view"
    else:
        how = "the centre view the network sees"
    return f"{model} · {what} · {how}"


def link(tile: dict) -> dict:
    """The page and query parameters that open the app on this tile's input (``ui``'s URL parameters)."""
    params: dict[str, str] = {}
    if tile["photo"]:
        params["image"] = tile["photo"]
    if tile["kind"] == "classviz":
        params.update(classes=str(tile["class_index"]), preset=tile["preset"], steps=str(tile["steps"]), seed=str(tile["seed"]), run="1")
    elif tile["class_index"] is not None:
        params["class"] = str(tile["class_index"])
    if tile["kind"] == "saliency":
        params["views"] = str(tile["views"])
    if tile["kind"] == "segmentation":
        params["preset"] = tile["preset"]
    if tile["model"] != DEFAULT_MODEL or tile["weights"] != "pretrained":
        params.update(model=tile["model"], weights=tile["weights"])
    return {"page": PAGES[tile["kind"]], "params": params}


def _cli(spec: TileSpec, made: TileImage) -> str:
    """The single engine command that computes the same result (its own output format)."""
    if spec.kind == "classviz":
        return f"python -m engine classviz {spec.class_index} --preset {spec.preset} --steps {spec.steps} --seed {spec.seed} --out DIR"
    if spec.kind == "saliency":
        return f"python -m engine saliency assets/{spec.photo}.jpg --class {made.class_index} --crops {spec.views} --out MAP.npy"
    if spec.kind == "segmentation":
        return f"python -m engine segment assets/{spec.photo}.jpg --preset {spec.preset} --class {made.class_index} --out MASK.png"
    if spec.kind == "rule":
        return f"python -m engine saliency assets/{spec.photo}.jpg --method {spec.method} --class {made.class_index} --out MAP.npy"
    return ""


def spec_of(tile: dict, *, top1: bool = False) -> TileSpec:
    """The spec a manifest entry was made from. Its class is the one it found; with ``top1``, a photo's
    tile asks again for the top-1 class (of the model it is redone on)."""
    spec = TileSpec(**{f.name: tile.get(f.name) for f in dataclasses.fields(TileSpec)})
    return dataclasses.replace(spec, class_index=None) if top1 and spec.photo is not None else spec


def classviz_tiles(gallery: Gallery, classes: Sequence[int], preset: str, *, model: str, weights: str) -> list[dict]:
    """The shipped class model images of ``classes`` (in their order) made with ``preset`` on ``model``."""
    found = {t["class_index"]: t for t in gallery.section("2") if t["kind"] == "classviz" and t["preset"] == preset
             and t["model"] == model and t["weights"] == weights}
    return [found[c] for c in dict.fromkeys(classes) if c in found]


def read_gallery(folder: str | Path = ASSETS / "gallery") -> Gallery:
    """The gallery in ``folder`` (its manifest); a missing or broken manifest is a ValueError."""
    folder = Path(folder)
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
        tiles = tuple(manifest["tiles"])
    except FileNotFoundError:
        raise ValueError(f"No gallery in {folder}: run `{COMMAND} --out {folder}`.") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"The gallery manifest {folder / MANIFEST} is damaged ({exc}): run `{COMMAND} --out {folder}` again.") from None
    return Gallery(folder, manifest, tiles)


def build_gallery(model, out: str | Path, *, photos_dir: str | Path, specs: Sequence[TileSpec] | None = None,
                  out_label: str | None = None, on_tile: Callable[[int, int, TileSpec], None] | None = None,
                  on_step: OnStep | None = None) -> dict:
    """Make ``specs`` (default: every tile) into ``out`` and write its manifest; tiles already in a manifest
    there and not remade are kept. Returns the manifest."""
    out = Path(out)
    specs = tuple(gallery_specs() if specs is None else specs)
    label = out_label or out.as_posix()
    kept = {}
    if (out / MANIFEST).exists():
        kept = {t["id"]: t for t in read_gallery(out).tiles}
    made = {}
    for i, spec in enumerate(specs):
        if on_tile is not None:
            on_tile(i, len(specs), spec)
        image = make_tile(model, spec, photos_dir, on_step=on_step)
        path = out / spec.file
        path.parent.mkdir(parents=True, exist_ok=True)
        _write(path, encode_tile(image.image_hwc))
        made[spec.id] = tile_entry(spec, image, model, label)
    order = [s.id for s in gallery_specs()]
    tiles = sorted({**kept, **made}.values(), key=lambda t: order.index(t["id"]) if t["id"] in order else len(order))
    manifest = {"generator": COMMAND, "command": f"{COMMAND} --out {label}", "model": model.name, "weights": model.weights,
                "device": str(model.device), "threads": _threads(), "seed": SEED, "tile_format": {k: v for k, v in JPEG.items()},
                "sections": [{"id": s, "title": t, "paper": p} for s, t, p in SECTIONS], "tiles": tiles}
    _write(out / MANIFEST, (json.dumps(manifest, indent=1, ensure_ascii=False) + "\n").encode("utf-8"))
    return manifest


def _threads() -> int:
    import torch

    return torch.get_num_threads()


def _write(path: Path, data: bytes) -> None:
    """Written aside, then renamed: a killed run leaves the old file or the new one."""
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(data)
    os.replace(partial, path)
