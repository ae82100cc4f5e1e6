#!/usr/bin/env python3
"""PyTorch anchors for convfuse's two workloads, timed in the same run on the same GPU.

For each workload: PyTorch eager (its default: TF32 convolutions), eager with TF32 off
(strict fp32), and torch.compile; then `convfuse bench` for the given backends and math
modes, and a table of convfuse's median time beside PyTorch's as ratios. Appends every row to
a CSV (bench/plot_results.py draws the chart from it).

    python3 bench/torch_anchors.py --tool build/bench/convfuse --csv out/bench.csv \
        [--workloads sub-sub-mish,mish-mish] [--batches 1,8,32,128] [--iters 30]

Timing: CUDA events around each call, 5 warm-up calls, median of --iters; inputs drawn like
torch.rand (never zeros); the tensors are far larger than L2.
"""
import argparse
import csv
import datetime
import os
import statistics
import subprocess
import sys

import torch
import torch.nn.functional as F

WORKLOADS = {
    # name: (batch, C, H, W, K, R, S, epilogue)
    "sub-sub-mish": (128, 8, 256, 256, 64, 3, 3, "sub-sub-mish"),
    "mish-mish": (64, 64, 256, 256, 128, 3, 3, "mish-mish"),
}


class SubSubMish(torch.nn.Module):
    def __init__(self, c, k, r):
        super().__init__()
        self.conv = torch.nn.Conv2d(c, k, r)

    def forward(self, x):
        x = self.conv(x)
        x = x - 0.5
        x = x - 0.2
        return F.mish(x)


class MishMish(torch.nn.Module):
    def __init__(self, c, k, r):
        super().__init__()
        self.conv = torch.nn.Conv2d(c, k, r)

    def forward(self, x):
        return F.mish(F.mish(self.conv(x)))


def time_ms(fn, x, iters, warmup=5):
    for _ in range(warmup):
        fn(x)
    torch.cuda.synchronize()
    times = []
    for _ in range(iters):
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        start.record()
        fn(x)
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


def torch_rows(name, batch, iters, do_compile):
    n, c, h, w, k, r, s, epi = WORKLOADS[name]
    n = batch or n
    cls = SubSubMish if epi == "sub-sub-mish" else MishMish
    model = cls(c, k, r).cuda().eval()
    x = torch.rand(n, c, h, w, device="cuda")
    rows = {}
    with torch.no_grad():
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cuda.matmul.allow_tf32 = True
        rows["torch eager (tf32 conv, default)"] = time_ms(model, x, iters)
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False
        rows["torch eager fp32 (tf32 off)"] = time_ms(model, x, iters)
        torch.backends.cudnn.allow_tf32 = True
        if do_compile:
            try:
                compiled = torch.compile(model)
                rows["torch.compile (tf32 conv)"] = time_ms(compiled, x, iters, warmup=3)
            except Exception as e:  # noqa: BLE001 - report and carry on
                print(f"torch.compile failed on {name}: {e}", file=sys.stderr)
    del x, model
    torch.cuda.empty_cache()
    return n, rows


def convfuse_ms(tool, backend, name, batch, math, iters, csv_path):
    cmd = [tool, "bench", "--backend", backend, "--workload", name, "--math", math,
           "--iters", str(iters)]
    if batch:
        cmd += ["--batch", str(batch)]
    if csv_path:
        cmd += ["--csv", csv_path]
    out = subprocess.run(cmd, capture_output=True, text=True)
    sys.stdout.write(out.stdout)
    sys.stderr.write(out.stderr)
    if out.returncode != 0:
        return None
    for line in out.stdout.splitlines():
        if line.strip().startswith("median"):
            # "median  1.234 ms ..." -> 1.234
            for tok in line.split():
                try:
                    return float(tok)
                except ValueError:
                    continue
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tool", default="build/bench/convfuse")
    ap.add_argument("--workloads", default="sub-sub-mish,mish-mish")
    ap.add_argument("--batches", default="0", help="comma list; 0 = the workload's own batch")
    ap.add_argument("--backends", default="cuda")
    ap.add_argument("--maths", default="fp32,tf32")
    ap.add_argument("--iters", type=int, default=30)
    ap.add_argument("--csv", default="")
    ap.add_argument("--no-compile", action="store_true")
    args = ap.parse_args()

    device = torch.cuda.get_device_name()
    stamp = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    table = []
    for name in args.workloads.split(","):
        for batch in [int(b) for b in args.batches.split(",")]:
            n, anchors = torch_rows(name, batch, args.iters, not args.no_compile)
            for label, ms in anchors.items():
                table.append((name, n, label, ms))
            for backend in args.backends.split(","):
                for math in args.maths.split(","):
                    ms = convfuse_ms(args.tool, backend, name, batch, math, args.iters,
                                     args.csv)
                    table.append((name, n, f"convfuse {backend} {math}", ms))
    if args.csv:
        anchor_csv = os.path.splitext(args.csv)[0] + "_torch.csv"
        new = not os.path.exists(anchor_csv)
        with open(anchor_csv, "a", newline="") as f:
            wr = csv.writer(f)
            if new:
                wr.writerow(["date", "device", "workload", "batch", "impl", "median_ms"])
            for name, n, label, ms in table:
                wr.writerow([stamp, device, name, n, label, "" if ms is None else f"{ms:.4f}"])

    print(f"\n{device}, torch {torch.__version__}, cuDNN {torch.backends.cudnn.version()}, {stamp}")
    print(f"{'workload':<14}{'batch':>6}  {'implementation':<34}{'median ms':>10}"
          f"{'vs eager':>10}{'vs compile':>11}")
    for name in args.workloads.split(","):
        for n in sorted({r[1] for r in table if r[0] == name}):
            rows = [r for r in table if r[0] == name and r[1] == n]
            eager = next((r[3] for r in rows if r[2].startswith("torch eager (tf32")), None)
            comp = next((r[3] for r in rows if r[2].startswith("torch.compile")), None)
            for _, _, label, ms in rows:
                if ms is None:
                    print(f"{name:<14}{n:>6}  {label:<34}{'failed':>10}")
                    continue
                ve = f"{eager / ms:.2f}x" if eager else "-"
                vc = f"{comp / ms:.2f}x" if comp else "-"
                print(f"{name:<14}{n:>6}  {label:<34}{ms:>10.3f}{ve:>10}{vc:>11}")


if __name__ == "__main__":
    main()
