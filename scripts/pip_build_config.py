#!/usr/bin/env python3
"""Write the host's pip settings for an image build: OUT/pip.conf and, if pip trusts a CA file, OUT/pip-ca.

`scripts/build_image.sh` passes both to `podman build` as the secrets `pip-conf` and `pip-ca`, which the
Dockerfile mounts for its pip steps only, so pip in the build reaches the index the host's pip reaches
(same index URLs, same proxy, same CA) and none of it is left in the image. Only settings about where
and how to reach an index are taken: host paths such as `find-links` mean nothing inside the build.

    pip_build_config.py OUT
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

# pip config keys that say how to reach an index (`pip config list` names, without the section).
KEYS = ("index-url", "extra-index-url", "trusted-host", "proxy", "cert", "timeout", "default-timeout", "retries")
CA_IN_BUILD = "/run/secrets/pip-ca"
LINE = re.compile(r"^(?P<section>[^.]*)\.(?P<key>[a-z-]+)='(?P<value>.*)'$")


def host_settings() -> dict[str, str]:
    """The host's effective pip settings; environment variables win over files, as in pip."""
    out = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True,
                         check=True).stdout
    found: dict[str, tuple[int, str]] = {}
    for line in out.splitlines():
        m = LINE.match(line.strip())
        if not m or m["key"] not in KEYS:
            continue
        rank = {":env:": 3, "install": 2, "global": 1}.get(m["section"], 0)
        key = "timeout" if m["key"] == "default-timeout" else m["key"]
        if key not in found or rank > found[key][0]:
            found[key] = (rank, m["value"])
    return {k: v for k, (_, v) in found.items()}


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    out = Path(argv[0])
    out.mkdir(parents=True, exist_ok=True)
    settings = host_settings()
    cert = settings.pop("cert", "")
    if cert and Path(cert).is_file():
        shutil.copyfile(cert, out / "pip-ca")
        settings["cert"] = CA_IN_BUILD
    if settings:
        body = "".join(f"{k} = {v}\n" for k, v in sorted(settings.items()))
        (out / "pip.conf").write_text("[global]\n" + body)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
