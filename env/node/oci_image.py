"""Write a one-layer OCI image archive (what `ctr images import` reads) from files on this machine.

    python3 oci_image.py OUT.tar NAME:TAG ENTRYPOINT SRC=DEST [SRC=DEST ...]

Used for the pod sandbox image (a static `pause` binary): no registry can be reached here, so the
image is assembled locally. The layer is reproducible (fixed mtimes, owner 0), so its digest only
changes when a file does.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import sys
import tarfile


def layer(files: list[tuple[str, str]]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for src, dest in files:
            info = tar.gettarinfo(src, dest.lstrip("/"))
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.mtime = 0
            with open(src, "rb") as f:
                tar.addfile(info, f)
    return raw.getvalue()


def main(out: str, name: str, entrypoint: str, *pairs: str) -> None:
    files = [tuple(p.split("=", 1)) for p in pairs]
    diff = layer(files)  # type: ignore[arg-type]
    blob = gzip.compress(diff, mtime=0)
    config = json.dumps({
        "architecture": "amd64", "os": "linux",
        "config": {"Entrypoint": [entrypoint], "User": "65535:65535"},
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(diff).hexdigest()]},
    }).encode()
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": "sha256:" + hashlib.sha256(config).hexdigest(), "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": "sha256:" + hashlib.sha256(blob).hexdigest(), "size": len(blob)}],
    }).encode()
    index = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                       "digest": "sha256:" + hashlib.sha256(manifest).hexdigest(), "size": len(manifest),
                       "annotations": {"io.containerd.image.name": name,
                                       "org.opencontainers.image.ref.name": name.rsplit(":", 1)[-1]}}],
    }).encode()
    with tarfile.open(out, "w") as tar:
        def add(path: str, data: bytes) -> None:
            info = tarfile.TarInfo(path)
            info.size, info.mtime = len(data), 0
            tar.addfile(info, io.BytesIO(data))
        add("oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        add("index.json", index)
        for data in (config, manifest, blob):
            add("blobs/sha256/" + hashlib.sha256(data).hexdigest(), data)


if __name__ == "__main__":
    main(*sys.argv[1:])
