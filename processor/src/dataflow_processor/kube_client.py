"""The one place the processor gets a Kubernetes API client from (status counters, checkpoints).

Credentials: the in-cluster service account when ``KUBERNETES_SERVICE_HOST`` is set and its token
file exists, else the file named by ``KUBECONFIG``; with neither there is no client (``None``) and
each caller falls back to what it does outside a cluster. The ``kubernetes`` package is imported
only when a client is made, so a processor run without a cluster never loads it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

TOKEN_FILE = Path("/var/run/secrets/kubernetes.io/serviceaccount/token")


def load_config() -> bool:
    """Load the credentials into the ``kubernetes`` package's default configuration.

    ``False`` without Kubernetes config; raises what the ``kubernetes`` package raises for config
    that is present but unusable.
    """
    in_cluster = bool(os.environ.get("KUBERNETES_SERVICE_HOST")) and TOKEN_FILE.exists()
    kubeconfig = os.environ.get("KUBECONFIG")
    if not in_cluster and not kubeconfig:
        return False
    from kubernetes import config

    if in_cluster:
        config.load_incluster_config()
    else:
        config.load_kube_config(config_file=kubeconfig)
    return True


def core_api() -> Any | None:
    """``CoreV1Api`` (ConfigMaps), or ``None`` without Kubernetes config."""
    if not load_config():
        return None
    from kubernetes import client

    return client.CoreV1Api()


def custom_objects_api() -> Any | None:
    """``CustomObjectsApi`` (the DataFlow status), or ``None`` without Kubernetes config."""
    if not load_config():
        return None
    from kubernetes import client

    return client.CustomObjectsApi()
