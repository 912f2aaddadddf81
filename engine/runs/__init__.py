"""Folder-scale work on the paper's §3.2 (Simonyan, Vedaldi & Zisserman 2013): ``batch`` runs a
model stage and a cut stage over many photos in one process (``--jobs``), ``ray_runner`` the same
stages on a Ray cluster (``ray_cluster``: why joining one would fail, in one line),
``localisation`` the ILSVRC localisation protocol, ``segment_folder`` the segmentation of a folder
for review, ``workspace`` the versioned review queue of objects (``workspace_records``, ``workspace_files``:
its records and files), ``import_segmentations`` anyone's masks into it, ``coco`` its export, ``gallery`` the home
page's tiles (the paper at a glance, §2 to §4).
The driver's side imports no torch (only the model stage does, where it runs), so this package
imports none of its members here. May import: core, ``attribution``, ``classviz``, ``segmentation``.
"""
