"""Attribution, Simonyan, Vedaldi & Zisserman (2013), §3.1 and §4: from an image and a class to a
per-pixel map. ``registry`` holds the method table (``register``, ``get_method``, ``score_gradient``)
and the paper's plain gradient, and imports none of its members; ``rules`` adds DeconvNet and guided
backprop (§4: only the ReLU's backward rule differs), ``methods`` SmoothGrad, Integrated Gradients
and Grad-CAM, ``saliency`` the map ``max_c |∂S_c/∂I|`` over views, ``sanity`` the randomisation and
deletion/insertion checks. Importing this package imports the members, so that they register.
May import: the core modules of ``engine`` only.
"""
from engine.attribution import methods, registry, rules, saliency  # noqa: F401  (rules and methods register here)
from engine.attribution.registry import METHODS, get_method, register, score_gradient
from engine.attribution.saliency import REDUCTIONS, SaliencyMap, compute_saliencies, compute_saliency, predict

__all__ = ["METHODS", "REDUCTIONS", "SaliencyMap", "compute_saliencies", "compute_saliency", "get_method", "predict",
           "register", "score_gradient"]
