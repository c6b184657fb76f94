# SPDX-License-Identifier: Apache-2.0
"""Command line: ``python -m lightnorm demo`` runs one training step of the reference model.

It prints, for a realistic BN layer, the statistics the hardware computes and how far the
chosen preset is from float64 batch norm (the tolerance view; RTL-vs-model is exact and
lives in verif/).
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from lightnorm.config import PRESETS, LightNormConfig
from lightnorm.reference import backward, forward_train, ideal_backward, ideal_forward


def _demo(args: argparse.Namespace) -> int:
    cfg = LightNormConfig.from_preset(args.preset)
    rng = np.random.default_rng(args.seed)
    n, c, h, w = args.shape
    x = (rng.standard_normal((n, c, h, w)) * 1.5 + 0.3).astype(np.float32)
    dy = (rng.standard_normal((n, c, h, w)) * 1e-2).astype(np.float32)
    gamma = rng.uniform(0.8, 1.2, c)
    beta = rng.uniform(-0.1, 0.1, c)
    print(f"preset {args.preset}: {cfg}")
    print(f"layer (N, C, H, W) = {tuple(args.shape)}, seed {args.seed}")
    t0 = time.perf_counter()
    fwd = forward_train(x, gamma, beta, cfg, np.zeros(c), np.ones(c))
    t1 = time.perf_counter()
    bwd = backward(dy, fwd, cfg)
    t2 = time.perf_counter()
    y64, mean64, _ = ideal_forward(x, gamma, beta)
    dx64, dg64, _ = ideal_backward(x, dy, gamma)
    k = fwd.constants
    print(
        f"n = {k.count}, chunk length m = {k.chunk_len}, 1/n -> {k.inv_count!r}, "
        f"C(m) -> {k.range_const!r}"
    )
    print(f"channel 0: mean {fwd.mean[0]!r} (float64 {mean64[0]:.6g}), scale {fwd.scale[0]!r}")
    ref_std = float(np.std(y64))
    print(
        f"forward:  y std {float(np.std(fwd.y)):.4f} (float64 BN {ref_std:.4f}), "
        f"max |y - y64| {float(np.max(np.abs(fwd.y - y64))):.4g}  [{t1 - t0:.3f} s]"
    )
    print(
        f"backward: max |dx - dx64| {float(np.max(np.abs(bwd.dx - dx64))):.4g}, "
        f"d_gamma[0] {bwd.d_gamma[0]!r} (float64 {dg64[0]:.6g})  [{t2 - t1:.3f} s]"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lightnorm", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="one training step of the reference model")
    demo.add_argument("--preset", default="lightnorm", choices=sorted(PRESETS))
    demo.add_argument(
        "--shape", type=int, nargs=4, default=[32, 64, 16, 16], metavar=("N", "C", "H", "W")
    )
    demo.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    return _demo(args)


if __name__ == "__main__":
    sys.exit(main())
