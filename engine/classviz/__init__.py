"""Class model visualisation, Simonyan, Vedaldi & Zisserman (2013), §2: gradient ascent on the input
image to maximise one class's unnormalised score, and the regularised methods that came after
(Yosinski et al. 2015, Mahendran & Vedaldi 2016, Olah et al. 2017). ``visualise`` is the loop and
its presets, ``step`` the network's part of a step (eager, or replayed from a CUDA graph),
``transforms`` the random jitter / scale / rotation, ``parameterisations`` the pixel and Fourier
images. May import: the core modules of ``engine`` only.
"""
from engine.classviz.visualise import (
                                       CHOICES,
                                       PRESETS,
                                       ClassVisualisation,
                                       ClassVizConfig,
                                       Progress,
                                       animation_gif,
                                       get_preset,
                                       visualise_class,
)

__all__ = ["CHOICES", "PRESETS", "ClassVisualisation", "ClassVizConfig", "Progress", "animation_gif", "get_preset",
           "visualise_class"]
