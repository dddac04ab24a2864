#!/usr/bin/env python3
"""Counts instructions and locked instructions per operation under callgrind.

    cargo build --release --example op_count
    python3 benches/count.py [CASE...]

Runs `target/release/examples/op_count CASE N` under valgrind's callgrind at
N = 10,000 and 20,000 and prints, per operation, the difference divided by
10,000: instructions executed, and how many of them were locked
read-modify-writes (a `lock`-prefixed instruction or an `xchg` with memory),
found by address in the binary's disassembly. Counts repeat to the unit for
one binary; timings on a shared VM do not (docs/performance.md). The
exceptions are the `*_wake` and `spawn_join` cases, which run on a worker
thread beside the main one: valgrind interleaves the two differently from
run to run, and their counts move by about a tenth.

Needs valgrind, objdump and python3; not run by CI.
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

BINARY = os.path.join(os.path.dirname(__file__), "..", "target", "release", "examples", "op_count")
CASES = [
    "ours_ready", "peer_ready", "ours_pending", "peer_pending",
    "ours_derive", "peer_derive", "ours_derive_timeout", "peer_derive_timeout",
    "ours_is_done_deadline", "peer_now", "ours_wake", "peer_wake", "spawn_join",
]
LOW, HIGH = 10_000, 20_000


def locked_addresses(binary):
    """Addresses of the binary's locked read-modify-write instructions."""
    listing = subprocess.run(
        ["objdump", "-d", "--no-show-raw-insn", binary],
        capture_output=True, text=True, check=True,
    ).stdout
    locked = set()
    for line in listing.splitlines():
        m = re.match(r"\s*([0-9a-f]+):\s+(lock |xchg\s+%\w+,\S*\()", line)
        if m:
            locked.add(int(m.group(1), 16))
    return locked


def run(case, n, locked, workdir):
    """Total instructions and locked instructions of one run."""
    out = os.path.join(workdir, f"cg.{case}.{n}")
    subprocess.run(
        ["valgrind", "--tool=callgrind", "--dump-instr=yes", "--dump-line=no",
         "--compress-pos=no", "--compress-strings=no",
         f"--callgrind-out-file={out}", BINARY, case, str(n)],
        capture_output=True, check=True,
    )
    total = locked_total = 0
    after_call = False
    with open(out) as f:
        for line in f:
            if line.startswith("calls="):
                # The next cost line is the call's inclusive cost.
                after_call = True
                continue
            m = re.match(r"(0x[0-9a-f]+)\s+(\d+)", line)
            if not m:
                continue
            if after_call:
                after_call = False
                continue
            count = int(m.group(2))
            total += count
            if int(m.group(1), 16) in locked:
                locked_total += count
    return total, locked_total


def main():
    cases = sys.argv[1:] or CASES
    unknown = [case for case in cases if case not in CASES]
    if unknown:
        sys.exit(f"unknown case(s) {', '.join(unknown)}: one of {', '.join(CASES)}")
    if not os.path.exists(BINARY):
        sys.exit("no op_count binary: cargo build --release --example op_count")
    for tool in ("valgrind", "objdump"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} not found: count.py needs valgrind and objdump")
    locked = locked_addresses(BINARY)
    print(f"{'case':<24} {'instructions':>12} {'locked':>7}")
    with tempfile.TemporaryDirectory() as workdir:
        for case in cases:
            low = run(case, LOW, locked, workdir)
            high = run(case, HIGH, locked, workdir)
            per = [(h - l) / (HIGH - LOW) for h, l in zip(high, low)]
            print(f"{case:<24} {per[0]:>12.0f} {per[1]:>7.1f}")


if __name__ == "__main__":
    main()
