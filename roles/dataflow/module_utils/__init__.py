"""The role's module_utils: each holds the work of the module (and action plugin) of its name.

Ansible never imports this file (modules import `ansible.module_utils.<name>`); it makes the
directory a package for mypy, whose one run over `roles/` would otherwise see two modules named
`dataflow_apply` (here and in `library/`).
"""
