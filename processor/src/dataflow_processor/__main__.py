"""``python -m dataflow_processor`` runs the same CLI as the ``dataflow-processor`` script."""

from dataflow_processor.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
