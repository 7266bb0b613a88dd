"""Print bench/results.json as one table (the last step of `make bench`): benchmark, figure, value."""

from __future__ import annotations

import json
import sys
from pathlib import Path


def rows(prefix: str, value: object) -> list[tuple[str, str]]:
    if isinstance(value, dict):
        return [row for key, inner in value.items() for row in rows(f"{prefix}.{key}" if prefix else key, inner)]
    if isinstance(value, float):
        return [(prefix, f"{value:.4g}")]
    return [(prefix, json.dumps(value) if isinstance(value, list) else str(value))]


def main() -> None:
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).with_name("results.json")
    results = json.loads(path.read_text())
    table = [(bench, figure, value) for bench, figures in results.items() for figure, value in rows("", figures)
             if figure != "machine"]
    widths = [max(len(row[k]) for row in table) for k in range(2)]
    print(f"{'benchmark':<{widths[0]}}  {'figure':<{widths[1]}}  value")
    for bench, figure, value in table:
        print(f"{bench:<{widths[0]}}  {figure:<{widths[1]}}  {value}")
    machines = {str(figures.get("machine")) for figures in results.values() if isinstance(figures, dict)}
    print("machine: " + "; ".join(sorted(machines - {"None"})))


if __name__ == "__main__":
    main()
