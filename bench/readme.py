"""Copy the latest full run (bench/results/latest.md) into the README's Performance section:
`python -m bench.readme`."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    latest = (ROOT / "bench" / "results" / "latest.md").read_text().strip()
    readme = ROOT / "README.md"
    text = readme.read_text()
    block = f"<!-- bench:begin -->\n{latest}\n<!-- bench:end -->"
    readme.write_text(
        re.sub(r"<!-- bench:begin -->.*?<!-- bench:end -->", lambda _: block, text, flags=re.S)
    )


if __name__ == "__main__":
    main()
