"""Which test evaluates each dashboard panel and alert on a live Prometheus, and why the rest cannot
be evaluated here (docs/monitoring.md, "What the tests cover"). test_dashboard.py checks that every
panel and alert is in exactly one of these; each live test asserts the set it evaluates."""

from __future__ import annotations

# test_live_prometheus.py: a processor host process, scraped as the PodMonitor scrapes pods.
PROCESSOR_PANELS = frozenset({
    "Records in / s", "Records out / s by sink and route", "Errors sink writes / s", "Errors / s by stage and type",
    "Connectors up", "Transformations: in / out / dropped per step", "Sink write latency p95 / p99", "Queue sizes",
    "In-flight records",
})
PROCESSOR_ALERTS = frozenset({"DataFlowNoProgress", "DataFlowConnectorDown", "DataFlowErrorRatioHigh"})

# test_pod_panels.py: a processor pod on the real node, and that kubelet's cAdvisor.
POD_PANELS = frozenset({"Processor CPU", "Processor memory"})

KSM = ("kube-state-metrics cannot be obtained here: the Go module proxy refuses k8s.io/kube-state-metrics/v2 "
       "(403 Forbidden) and Debian has no package; promtool unit tests cover the alerts")
NOT_EVALUABLE = {
    "panel Flows by phase": KSM,
    "panel Processor restarts (1 h)": KSM,
    "alert DataFlowProcessorRestarting": KSM,
    "alert DataFlowInError": KSM,
}
