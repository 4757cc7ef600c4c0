"""Filters for the processor Deployment: its image, and the DataFlow phase it shows.

- `dataflow_image(spec_image, operator_image, allowed_prefixes)` picks the processor image and says
  whether the operator may run it: `{image, error}`.
- `dataflow_phase(deployment, generation)` turns the processor Deployment into the DataFlow's
  status `{phase, message, observedGeneration}`.
"""

from __future__ import annotations

from typing import Any

from ansible.utils.unsafe_proxy import wrap_var


def _prefixes(allowed: Any) -> list[str]:
    items = allowed.split(",") if isinstance(allowed, str) else list(allowed or [])
    out = []
    for item in (str(i).strip() for i in items):
        if item:
            # `registry.example.com/team` must not admit `registry.example.com/team-evil/x` or
            # `registry.example.com.evil.org/…`: a prefix ends at a path separator.
            out.append(item if item.endswith(("/", ":", "@")) else item + "/")
    return out


def dataflow_image(spec_image: Any, operator_image: Any, allowed_prefixes: Any = "") -> dict[str, str]:
    """`spec.processorImage` if set and allowed, else the operator's processor image.

    The processor pod runs with the DataFlow's Secret mounted, so the image decides who sees those
    values. A DataFlow may name its own image only where the operator allows it: the operator's own
    processor image always, any image under one of `allowed_prefixes` (comma-separated registry or
    repository prefixes) otherwise. An empty list allows only the operator's own image.
    """
    own = str(operator_image or "")
    wanted = str(spec_image or "")
    if not wanted or wanted == own:
        return {"image": own, "error": ""}
    prefixes = _prefixes(allowed_prefixes)
    if any(wanted.startswith(p) for p in prefixes):
        return {"image": wanted, "error": ""}
    where = ", ".join(prefixes) if prefixes else "none: only the operator's own processor image"
    return {"image": "", "error": f"spec.processorImage: {wanted} is not allowed by this operator "
                                  f"(allowed prefixes: {where})"}


def _condition(status: dict[str, Any], kind: str) -> dict[str, Any] | None:
    for cond in status.get("conditions") or []:
        if cond.get("type") == kind and cond.get("status") == "True":
            return dict(cond)
    return None


def dataflow_phase(deployment: dict[str, Any] | None, generation: Any) -> dict[str, Any]:
    gen = int(generation)
    if not deployment:
        return {"phase": "Pending", "message": "Deployment not found", "observedGeneration": gen}
    status = deployment.get("status") or {}
    ready = int(status.get("readyReplicas") or 0)
    wanted = int((deployment.get("spec") or {}).get("replicas", 1))
    # The deployment controller copies its ReplicaSet's `ReplicaFailure` (FailedCreate: pod security
    # admission, a quota, a missing ServiceAccount …) onto the Deployment: without it a DataFlow
    # whose pods can never be created would sit in Pending with no reason.
    failure = _condition(status, "ReplicaFailure")
    if ready > 0:
        phase, message = "Running", "Processor pod is running"
    elif failure:
        phase = "Error"
        reason = failure.get("reason", "FailedCreate")
        message = f"Processor pod cannot be created: {reason}: {failure.get('message', '')}"
    elif wanted > 0:
        phase, message = "Pending", "Processor pod is starting"
    else:
        phase, message = "Error", "No replicas available"
    return {"phase": phase, "message": message.strip(), "observedGeneration": gen}


class FilterModule:
    def filters(self) -> dict[str, Any]:
        # What these return is built from DataFlow text: marked unsafe, so no later templating pass
        # can evaluate a `{{ … }}` in it (the runtime's markUnsafe covers the input side).
        funcs = (dataflow_phase, dataflow_image)
        return {f.__name__: (lambda *a, _f=f: wrap_var(_f(*a))) for f in funcs}
