"""The line budget: every library file (symrnn/, codegen/, runtime/) at most 400 lines.

    python .ci/line_budget.py [--limit 400]

Prints each file over the budget and exits 1 if there is one; tests, benchmarks and
examples are not library code and are not counted.
"""
import argparse
import sys
from pathlib import Path

PACKAGES = ("symrnn", "codegen", "runtime")
ROOT = Path(__file__).resolve().parent.parent


def over_budget(limit: int) -> list[tuple[str, int]]:
    """(path, lines) of every library file longer than `limit` lines."""
    found = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*")):
            if path.suffix in (".py", ".c", ".h", ".cu") and path.is_file():
                lines = len(path.read_text().splitlines())
                if lines > limit:
                    found.append((str(path.relative_to(ROOT)), lines))
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description="library files at most --limit lines")
    parser.add_argument("--limit", type=int, default=400)
    limit = parser.parse_args().limit
    found = over_budget(limit)
    for path, lines in found:
        print(f"{path}: {lines} lines, over the budget of {limit}")
    if not found:
        print(f"line budget: every library file is at most {limit} lines")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
