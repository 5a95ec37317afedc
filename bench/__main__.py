"""Run every benchmark and print one table: `python -m bench [--quick] [--only NAME ...]`.

Targets come from the issues; a row says whether this machine met it. Nothing here is a test: speed is
measured and reported, not asserted.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable

from .bulk import MIB, bulk_transfer, idle_connection_memory

Row = tuple[str, str, str]


def stack_rows(quick: bool) -> list[Row]:
    size = 8 * MIB if quick else 64 * MIB
    label = f"{size // MIB} MiB"
    rows: list[Row] = []
    r = bulk_transfer(size, checksum=True, trace_memory=False)
    rows.append((f"bulk {label}, checksums computed+verified", f"{r.mb_per_s:.1f} MB/s", ">= 50 MB/s"))
    rows.append(("  per segment (send + receive side)", f"{r.us_per_segment:.1f} us", ""))
    r = bulk_transfer(size, checksum=False)
    rows.append((f"bulk {label}, checksum offload", f"{r.mb_per_s:.1f} MB/s", ">= 120 MB/s"))
    r = bulk_transfer(size, checksum=True, loss=0.01)
    ok = "intact" if r.intact else "CORRUPTED"
    rows.append((f"bulk {label}, 1% loss, checksums", f"{r.mb_per_s:.1f} MB/s ({ok})", ""))
    r = bulk_transfer(min(size, 16 * MIB), checksum=True, trace_memory=True)
    rows.append(("peak traced memory of a bulk run", f"{r.peak_bytes / MIB:.1f} MiB", ""))
    per = idle_connection_memory(2_000 if quick else 10_000)
    rows.append(("memory per idle ESTABLISHED connection", f"{per / 1024:.1f} KB", "<= 10 KB"))
    return rows


def optional(module: str) -> Callable[[bool], list[Row]] | None:
    try:
        mod = importlib.import_module(module)
    except ImportError:
        return None
    fn = getattr(mod, "rows", None)
    return fn if callable(fn) else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller transfers (8 MiB) for a fast look")
    parser.add_argument("--only", nargs="*", choices=["stack", "ui", "tun"], help="run only these groups")
    args = parser.parse_args(argv)
    groups: list[tuple[str, Callable[[bool], list[Row]] | None]] = [
        ("stack", stack_rows),
        ("ui", optional("bench.ui_bench")),
        ("tun", optional("bench.tun_bulk")),
    ]
    table: list[Row] = []
    for name, fn in groups:
        if args.only and name not in args.only:
            continue
        if fn is None:
            table.append((f"[{name}]", "not available", ""))
            continue
        try:
            table.extend(fn(args.quick))
        except Exception as exc:  # a benchmark that cannot run here says why and the others go on
            table.append((f"[{name}]", f"skipped: {exc}", ""))
    width = max(len(r[0]) for r in table)
    vwidth = max(len(r[1]) for r in table)
    print(f"{'benchmark':<{width}}  {'measured':<{vwidth}}  target")
    print(f"{'-' * width}  {'-' * vwidth}  ------")
    for name, value, target in table:
        print(f"{name:<{width}}  {value:<{vwidth}}  {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
