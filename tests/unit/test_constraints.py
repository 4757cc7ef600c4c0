"""env/constraints.txt is the one lock: it agrees with every requirements pin and covers what ships."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;#]+)")


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(path: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        m = PIN.match(line)
        assert m, f"{path.name}: {line!r} is not an exact pin"
        name = canonical(m[1])
        assert name not in out, f"{path.name}: {name} pinned twice"
        out[name] = m[2]
    return out


def test_requirements_pins_agree_with_the_lock() -> None:
    lock = pins(REPO / "env/constraints.txt")
    disagree = []
    for req in sorted((REPO / "env").glob("requirements-*.txt")):
        for name, version in pins(req).items():
            if lock.get(name) != version:
                disagree.append(f"{req.name}: {name}=={version}, lock: {lock.get(name)}")
    assert not disagree, "run env/lock.sh: " + "; ".join(disagree)


def test_every_shipped_dependency_is_locked() -> None:
    """The image installs the processor with all its extras against the lock; nothing may float."""
    lock = pins(REPO / "env/constraints.txt")
    project = tomllib.loads((REPO / "processor/pyproject.toml").read_text())["project"]
    deps = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        deps.extend(extra)
    # The operator runtime's own packages (Dockerfile) too.
    deps += ["ansible-core", "ansible-runner", "ansible-runner-http", "requests-unixsocket", "ansible"]
    names = {canonical(re.split(r"[\s<>=!~\[;]", d, maxsplit=1)[0]) for d in deps}
    missing = sorted(names - lock.keys())
    assert not missing, f"not in env/constraints.txt: {missing}"
