"""`spectrum PHOTOS --out FILE`: the natural images' mean amplitude spectrum MACO keeps fixed (class model
visualisation, §2's successors); the app ships it as assets/spectrum/natural_224.npy."""
from __future__ import annotations

from engine.cli.common import print_json


def register(subparsers) -> None:
    parser = subparsers.add_parser("spectrum", help="mean amplitude spectrum of a folder of photos, for the maco preset")
    parser.add_argument("photos", help="folder of photos (.jpg, .jpeg, .png; subfolders are not read)")
    parser.add_argument("--out", required=True, help="the .npy file to write (the app's: assets/spectrum/natural_224.npy)")
    parser.add_argument("--side", type=int, default=224, help="image side the spectrum is measured at (default: %(default)s)")
    parser.add_argument("--every", type=int, default=1, help="use every N-th photo in name order (default: all)")
    parser.set_defaults(run=run)


def run(args) -> None:
    from engine.classviz import parameterisations
    from engine.classviz.spectrum import mean_spectrum, photo_paths, save_spectrum

    if args.side < 8:
        raise ValueError(f"--side must be at least 8; got {args.side}.")
    paths = photo_paths(args.photos, every=args.every)
    spectrum = mean_spectrum(paths, parameterisations.COLOUR_CORRELATION, side=args.side)
    out = save_spectrum(spectrum, args.out)
    print_json({"out": str(out), "photos": len(paths), "side": args.side, "shape": list(spectrum.shape),
                "mean_colour_z": [round(float(v), 4) for v in spectrum[:, 0, 0] / args.side]})
