"""Summarise a ``py-spy record --format raw`` profile into the few lines a report needs.

A flame graph is the thing to look at, but a report needs text: which threads were busy,
and which functions the samples landed in (self time) or passed through (inclusive time).
The raw format is one collapsed stack per line, root first, frames separated by ``;``,
followed by the number of samples; with ``--threads`` the root frame names the thread.

    python benchmarks/profile_summary.py profile.txt --top 15
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["ProfileSummary", "render", "summarize"]

# "function (path/to/file.py:123)" → ("function", "file.py"); line numbers are dropped so
# that every sample in one function adds up, whichever line it was on.
_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^():]+?)(?::\d+)?\)$")
_THREAD = re.compile(r"^(?:thread|process) \(")


@dataclass
class ProfileSummary:
    """Sample counts of one profile: in total, per thread, per function."""

    samples: int = 0
    threads: Counter[str] = field(default_factory=Counter)
    self_samples: Counter[str] = field(default_factory=Counter)
    inclusive_samples: Counter[str] = field(default_factory=Counter)
    #: (thread, function) → inclusive samples, to tell a thread's entry-point wrappers apart.
    inclusive_by_thread: Counter[tuple[str, str]] = field(default_factory=Counter)

    def inclusive_work(self, *, wrapper_share: float = 0.95) -> Counter[str]:
        """Inclusive samples without the frames that wrap (almost) all of their threads' samples.

        Entry points (``Thread.run``, ``asyncio.run``, the server's ``main``) are on every
        stack of their thread and would fill the top of the table while saying nothing.
        """
        wrappers = {
            name
            for (thread, name), count in self.inclusive_by_thread.items()
            if count >= wrapper_share * self.threads[thread]
        }
        wrappers -= {
            name
            for (thread, name), count in self.inclusive_by_thread.items()
            if count < wrapper_share * self.threads[thread]
        }
        return Counter({n: c for n, c in self.inclusive_samples.items() if n not in wrappers})


def _frame_name(frame: str) -> str:
    match = _FRAME.match(frame.strip())
    if not match:
        return frame.strip()
    file = match["file"].rsplit("/", 1)[-1]
    return f"{match['func']} ({file})"


def summarize(path: Path) -> ProfileSummary:
    """Read a raw (collapsed-stack) py-spy profile.

    Args:
        path: the file ``py-spy record --format raw --threads`` wrote.

    Returns:
        total, per-thread, self and inclusive sample counts, keyed by ``function (file)``.
    """
    summary = ProfileSummary()
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        thread = "all threads"
        while frames and _THREAD.match(frames[0]):
            thread = frames.pop(0)
        summary.samples += count
        summary.threads[thread] += count
        if not frames:
            continue
        names = [_frame_name(f) for f in frames]
        summary.self_samples[names[-1]] += count
        for name in set(names):
            summary.inclusive_samples[name] += count
            summary.inclusive_by_thread[thread, name] += count
    return summary


def render(
    summary: ProfileSummary, *, top: int = 15, duration_s: float | None = None, rate_hz: int = 100
) -> str:
    """Markdown: threads (with their share of wall time when ``duration_s`` is known) and top functions."""
    lines = [
        f"{summary.samples} samples. py-spy counts a thread blocked inside C code as active, so some "
        "leaves are waits rather than work: `_worker (thread.py)` is a pool thread waiting for a job, "
        "`Condition.wait` a sleeping thread, and `Runner.run` uvloop's C loop (socket I/O and epoll)."
    ]
    lines += ["", "| thread | samples | share of wall time |", "|---|---:|---:|"]
    for thread, count in summary.threads.most_common():
        share = f"{count / (duration_s * rate_hz):.0%}" if duration_s else ""
        lines.append(f"| `{thread}` | {count} | {share} |")
    for title, counter in (
        ("self (leaf) samples", summary.self_samples),
        ("inclusive samples, thread entry points left out", summary.inclusive_work()),
    ):
        lines += ["", f"| function ({title}) | samples | % of all |", "|---|---:|---:|"]
        for name, count in counter.most_common(top):
            lines.append(f"| `{name}` | {count} | {count / max(1, summary.samples):.1%} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Print the summary of one raw profile."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("profile", type=Path, help="output of py-spy record --format raw --threads")
    parser.add_argument("--top", type=int, default=15, help="functions listed per table (default 15)")
    parser.add_argument("--duration", type=float, help="seconds recorded, to show each thread's busy share")
    parser.add_argument(
        "--rate", type=int, default=100, help="sampling rate the profile used, Hz (default 100)"
    )
    args = parser.parse_args(argv)
    print(render(summarize(args.profile), top=args.top, duration_s=args.duration, rate_hz=args.rate))


if __name__ == "__main__":
    main()
