"""The measurements behind the Winograd rule (docs/winograd.md): one 3x3 pad-1 Conv (+ a fused
Relu) per shape of the 3x3 layers of ResNet-18, DenseNet-121, Inception-v1, SqueezeNet, VGG-19
and Inception-v2, built three times (direct kernels, F(2x2, 3x3), F(4x4, 3x3)) and timed. A
benchmark to read, not a timed test.

    python benchmarks/winograd.py                           # every shape, one thread
    python benchmarks/winograd.py --shapes 64x64x56,512x512x7 --threads 1 --wall
    python benchmarks/winograd.py --variants 'direct,F(2x2)'       # F(4x4) left out

Time per run is the app's CPU time (user + system, from wait4) over ``--runs`` + 5 runs minus
that of 5 runs, so start-up cancels; best of ``--repeat``. At one thread CPU time is what the
kernel costs even on a loaded machine; ``--wall`` takes the app's own median latency instead
(use it on a quiet machine, and for more than one thread).
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile

import numpy as np
from onnx import helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

import nnbuild                                          # noqa: E402
from nnbuild.ops import winograd                        # noqa: E402

SHAPES = [  # input channels, output channels, image side
    (64, 64, 56), (128, 128, 28), (256, 256, 14), (512, 512, 7),               # ResNet-18
    (128, 32, 56), (128, 32, 28), (128, 32, 14), (128, 32, 7),                 # DenseNet-121
    (96, 128, 28), (128, 192, 28), (96, 208, 14), (160, 320, 7), (192, 384, 7),  # Inception
    (16, 64, 55), (32, 128, 27), (48, 192, 13), (64, 256, 13),                 # SqueezeNet
    (64, 192, 56), (32, 32, 28),
    (64, 64, 224), (128, 128, 112), (256, 256, 56), (512, 512, 28), (512, 512, 14),  # VGG-19
    (64, 96, 28), (96, 96, 28),                                                  # Inception-v2
]
VARIANTS = {"direct": 0, "F(2x2)": 2, "F(4x4)": 4}


def model(c: int, m: int, side: int):
    rng = np.random.default_rng(0)
    w = (rng.standard_normal((m, c, 3, 3)) * np.sqrt(2.0 / (9 * c))).astype(np.float32)
    b = rng.standard_normal(m).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w", "b"], ["y"], pads=[1, 1, 1, 1]),
         helper.make_node("Relu", ["y"], ["z"])], "conv",
        [helper.make_tensor_value_info("x", 1, [1, c, side, side])],
        [helper.make_tensor_value_info("z", 1, [1, m, side, side])],
        [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")])
    onnx_model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx_model.ir_version = 8
    return onnx_model


def _cpu_seconds(cmd: list) -> float:
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    if status:
        raise RuntimeError(f"{cmd[0]} failed")
    return usage.ru_utime + usage.ru_stime


def time_ms(app: str, x_file: str, args) -> float:
    base = [app, "--input", x_file, "--threads", str(args.threads), "--bench"]
    best = float("inf")
    for _ in range(args.repeat):
        if args.wall:
            out = subprocess.run(base + [str(args.runs)], capture_output=True, text=True,
                                 check=True).stdout
            ms = float(re.search(r"median ([0-9.]+) ms", out).group(1))
        else:
            ms = (_cpu_seconds(base + [str(args.runs + 5)]) - _cpu_seconds(base + ["5"])) \
                / args.runs * 1e3
        best = min(best, ms)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shapes", help="CxMxSIDE,... (default: all)")
    parser.add_argument("--target", default="host")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--runs", type=int, default=60)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--wall", action="store_true", help="median latency, not CPU time")
    parser.add_argument("--work", default=None, help="build folder (default: a temporary one)")
    parser.add_argument("--variants", default=",".join(VARIANTS),
                        help="which columns, e.g. direct,F(2x2) (default: all)")
    args = parser.parse_args()
    shapes = SHAPES if not args.shapes else [tuple(int(v) for v in s.split("x"))
                                             for s in args.shapes.split(",")]
    work = args.work or tempfile.mkdtemp(prefix="nnbuild-winograd-")
    os.makedirs(work, exist_ok=True)
    rule = winograd.choose
    variants = {v: VARIANTS[v] for v in args.variants.split(",")}
    print("| C -> M | image | " + " | ".join(f"{v} ms" for v in variants) + " | rule picks |")
    print("|---|---|" + "---|" * (len(variants) + 1))
    for c, m, side in shapes:
        x_file = os.path.join(work, f"x_{c}_{side}.npy")
        np.save(x_file, np.random.default_rng(1).standard_normal((1, c, side, side))
                .astype(np.float32))
        cells = []
        for label, tile in variants.items():
            winograd.choose = lambda g, tile=tile: tile if winograd.applicable(g) else 0
            folder = os.path.join(work, f"{c}_{m}_{side}_{tile}")
            built = nnbuild.build(model(c, m, side), folder, target=args.target, name="wgbench")
            cells.append(time_ms(built.app, x_file, args))
        winograd.choose = rule
        onnx_model = model(c, m, side)
        graph = nnbuild.optimize(nnbuild.translate(onnx_model), opt_level=2)
        picked = graph.nodes[0].attr(winograd.ATTR, 0)
        print(f"| {c} -> {m} | {side}x{side} | " + " | ".join(f"{v:.3f}" for v in cells) +
              f" | {'F(%dx%d)' % (picked, picked) if picked else 'direct'} |", flush=True)


if __name__ == "__main__":
    main()
