"""The science of Simonyan, Vedaldi & Zisserman (2013), "Deep Inside Convolutional Networks", and of
the methods that came after it, as plain functions over numpy and torch; never imports streamlit.

Layers, each importing only from the ones before it:

- core (this folder's modules): ``catalog`` (model names, torch-free), ``models`` (loading, the
  shared read-only network), ``images`` (decoding any photo to RGB), ``views`` (crops, the paper's
  10 views), ``render`` (colour maps and display sizes), ``figures`` (a view laid out as a figure for slides);
- ``attribution``: §3.1 saliency and §4's backward rules, with SmoothGrad, Integrated Gradients,
  Grad-CAM and the sanity checks;
- ``classviz``: §2 class model visualisation; ``segmentation``: §3.2 seeds, colour models, graph cut;
- ``runs``: folder-scale work (localisation, segment-folder, Ray, review workspaces, COCO);
- ``cli``: ``python -m engine``, a thin layer over the same functions the pages call.
"""
