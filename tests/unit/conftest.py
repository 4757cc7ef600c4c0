"""Ansible's plugin loader, set up once per session (a second ``init_plugin_loader`` warns)."""

from __future__ import annotations

from pathlib import Path

import pytest

ROLE = Path(__file__).resolve().parents[2] / "roles/dataflow"


@pytest.fixture(scope="session")
def role_plugins() -> None:
    """Ansible's own plugins plus the role's (its filters), as a templar in the role sees them."""
    from ansible.plugins.loader import add_all_plugin_dirs, init_plugin_loader

    init_plugin_loader()
    add_all_plugin_dirs(str(ROLE))
