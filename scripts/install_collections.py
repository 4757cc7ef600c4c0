#!/usr/bin/env python3
"""Install the Ansible collections of requirements.yml from the `ansible` wheel, without Galaxy.

Galaxy cannot be reached here, and the community `ansible` package on PyPI bundles every collection
(~500 MB). The environment installs that whole package (env/requirements-tools.txt); the image needs
only the collections the operator's roles and playbooks use, so this takes them out of the same
wheel (the version pinned in env/constraints.txt) and fails when a bundled version is not the one
requirements.yml asks for - the image and the environment then run the same kubernetes.core.

    install_collections.py WHEEL REQUIREMENTS_YML DEST
      WHEEL             the ansible-*.whl (`pip download --no-deps ansible==…`)
      DEST              a collections path: DEST/ansible_collections/<namespace>/<name>/
"""

from __future__ import annotations

import json
import sys
import zipfile
from pathlib import Path, PurePosixPath

import yaml


def wanted(requirements: Path) -> dict[str, str]:
    """`{namespace.name: version}` from requirements.yml (every entry must pin an exact version)."""
    doc = yaml.safe_load(requirements.read_text()) or {}
    out: dict[str, str] = {}
    for entry in doc.get("collections", []):
        name, version = entry["name"], str(entry.get("version", ""))
        if not version or not version[0].isdigit():
            raise SystemExit(f"{requirements}: collection {name} needs an exact version, got {version!r}")
        out[name] = version
    return out


def install(wheel: Path, collections: dict[str, str], dest: Path) -> None:
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        for fqcn, version in collections.items():
            namespace, name = fqcn.split(".", 1)
            prefix = f"ansible_collections/{namespace}/{name}/"
            members = [n for n in names if n.startswith(prefix)]
            if not members:
                raise SystemExit(f"{wheel.name} does not bundle the collection {fqcn}")
            manifest = json.loads(zf.read(prefix + "MANIFEST.json"))
            bundled = manifest["collection_info"]["version"]
            if bundled != version:
                raise SystemExit(f"{wheel.name} bundles {fqcn} {bundled}, requirements.yml asks for {version}")
            for member in members:
                # Zip members are relative POSIX paths; refuse anything that would leave DEST.
                if ".." in PurePosixPath(member).parts:
                    raise SystemExit(f"{wheel.name}: unsafe member {member}")
                zf.extract(member, dest)
            print(f"installed {fqcn} {version}")


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    wheel, requirements, dest = (Path(a) for a in argv)
    install(wheel, wanted(requirements), dest)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
