"""Regenerates the README's end-to-end table (between `<!-- e2e-table -->` and
`<!-- /e2e-table -->`) from the latest run recorded in a `benchmarks/results/*-e2e.csv`:
`python benchmarks/e2e_readme.py [CSV] [--readme README.md]`."""

import argparse
import sys
from pathlib import Path

from stylegan_fast.bench.e2e import results

ROOT = Path(__file__).resolve().parent.parent


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("csv", nargs="?", type=Path, help="default: the newest *-e2e.csv")
    p.add_argument("--readme", type=Path, default=ROOT / "README.md")
    args = p.parse_args(argv)
    path = args.csv
    if path is None:
        found = sorted(
            (ROOT / "benchmarks" / "results").glob("*-e2e.csv"), key=lambda f: f.stat().st_mtime
        )
        if not found:
            print("error: no benchmarks/results/*-e2e.csv recorded yet", file=sys.stderr)
            return 2
        path = found[-1]
    try:
        changed = results.update_readme(args.readme, results.readme_table(path))
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{args.readme}: {'updated' if changed else 'already up to date'} from {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
