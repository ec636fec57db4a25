"""Peak memory of one command, for benchmarks and tests."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

# A wrapper process runs the command and reports its child's peak: RUSAGE_CHILDREN of a long-lived
# process (pytest, the benchmark runner) would report the largest child it ever had instead.
_WRAPPER = (
    "import resource, subprocess, sys; r = subprocess.run(sys.argv[1:]); "
    "peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss; "
    "print('peak-rss-kb', peak, file=sys.stderr); sys.exit(r.returncode)"
)


def run_with_peak(command: list[str], cwd: Path, timeout: float = 900) -> tuple[subprocess.CompletedProcess, int]:
    """Run `command`; return its result and its peak resident memory in KB."""
    result = subprocess.run(
        [sys.executable, "-c", _WRAPPER, *command], cwd=cwd, capture_output=True, text=True, timeout=timeout
    )
    line = next(line for line in result.stderr.splitlines() if line.startswith("peak-rss-kb"))
    return result, int(line.split()[1])
