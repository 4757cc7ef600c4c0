"""The admission corpus: one DataFlow per file, its first line saying what must happen to it.

`# expect: valid` — admitted; `# expect: <text>` — rejected with a message containing <text>.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

CASES_DIR = Path(__file__).parent / "cases"
# The shipped samples must be admitted too: they are what users copy first.
SAMPLES_DIR = Path(__file__).resolve().parents[2] / "config/samples"


@dataclass(frozen=True)
class Case:
    name: str
    path: Path
    expect: str  # "valid" or a message fragment
    obj: dict[str, Any]

    @property
    def valid(self) -> bool:
        return self.expect == "valid"


def load_cases() -> list[Case]:
    out = []
    for path in sorted(CASES_DIR.glob("*.yaml")):
        text = path.read_text()
        first = text.splitlines()[0]
        assert first.startswith("# expect: "), f"{path.name}: first line must be '# expect: …'"
        out.append(Case(path.stem, path, first.removeprefix("# expect: ").strip(), yaml.safe_load(text)))
    for path in sorted(SAMPLES_DIR.glob("dataflow_v1_*.yaml")):
        name = f"sample-{path.stem.removeprefix('dataflow_v1_')}"
        out.append(Case(name, path, "valid", yaml.safe_load(path.read_text())))
    return out
