"""Filters that read the processor's Deployment and the operator's own Deployment.

- `dataflow_phase(deployment, generation)` turns the processor Deployment into the DataFlow's
  status `{phase, message, observedGeneration}`, with the original operator's phases and messages.
- `dataflow_container_env(deployments, name)` reads an env value (`PROCESSOR_IMAGE`) from the
  operator Deployment's first container, so that changing that Deployment moves every processor to
  a new image even when the operator runs outside the cluster.
"""

from __future__ import annotations

from typing import Any


def dataflow_phase(deployment: dict[str, Any] | None, generation: Any) -> dict[str, Any]:
    gen = int(generation)
    if not deployment:
        return {"phase": "Pending", "message": "Deployment not found", "observedGeneration": gen}
    status = deployment.get("status") or {}
    ready = int(status.get("readyReplicas") or 0)
    wanted = int((deployment.get("spec") or {}).get("replicas", 1))
    if ready > 0:
        phase, message = "Running", "Processor pod is running"
    elif wanted > 0:
        phase, message = "Pending", "Processor pod is starting"
    else:
        phase, message = "Error", "No replicas available"
    return {"phase": phase, "message": message, "observedGeneration": gen}


def dataflow_container_env(deployments: list[dict[str, Any]] | dict[str, Any] | None, name: str) -> str:
    items = deployments if isinstance(deployments, list) else [deployments] if deployments else []
    for dep in items:
        containers = (((dep or {}).get("spec") or {}).get("template") or {}).get("spec", {}).get("containers") or []
        for container in containers[:1]:
            for env in container.get("env") or []:
                if env.get("name") == name and env.get("value"):
                    return str(env["value"])
    return ""


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"dataflow_phase": dataflow_phase, "dataflow_container_env": dataflow_container_env}
