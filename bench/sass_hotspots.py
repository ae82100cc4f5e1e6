#!/usr/bin/env python3
"""Where a kernel's warps stall, from ncu's source page as CSV (gpu_session.sh stage clsource):
the instructions with the most stall samples, and the samples summed per opcode.
    bench/sass_hotspots.py FILE.csv [top N, default 40]"""
import csv
import re
import sys


def rows_of(path):
    with open(path, newline="") as f:
        lines = f.read().splitlines()
    # ncu prints its own lines (==PROF== ...) and the program's before the table
    start = next(i for i, line in enumerate(lines) if line.startswith('"') and "Source" in line)
    return list(csv.DictReader(lines[start:]))


def number(text):
    text = (text or "").replace(",", "").strip()
    try:
        return float(text)
    except ValueError:
        return 0.0


def main():
    path = sys.argv[1]
    top = int(sys.argv[2]) if len(sys.argv) > 2 else 40
    rows = rows_of(path)
    cols = list(rows[0].keys())
    samples = next(c for c in cols if re.match(r"Warp Stall Sampling \(All", c))
    executed = next((c for c in cols if c.startswith("Instructions Executed")), None)
    total = sum(number(r[samples]) for r in rows) or 1.0
    print(f"{path}: {len(rows)} instructions, {total:.0f} stall samples ({samples})")
    per_op = {}
    for r in rows:
        op = re.sub(r"^@!?U?P\w+\s+", "", r["Source"].strip()).split(" ")[0].split(".")[0]
        per_op[op] = per_op.get(op, 0.0) + number(r[samples])
    print("samples per opcode: " + "  ".join(
        f"{op} {100 * v / total:.1f}%" for op, v in sorted(per_op.items(), key=lambda kv: -kv[1])[:16]))
    for r in sorted(rows, key=lambda r: -number(r[samples]))[:top]:
        ex = f"{number(r[executed]):>12.0f}" if executed else ""
        print(f"{r.get('Address', ''):>8} {100 * number(r[samples]) / total:5.1f}% {ex}  {r['Source'].strip()}")


if __name__ == "__main__":
    main()
