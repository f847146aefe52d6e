#!/usr/bin/env python3
"""Checks a /metrics scrape against a service's exit summary: offload-serve's
(tests/grpc/operate.sh) or a rank's of offload-run --serve (tests/mpi/service.sh).

The scrape is parsed with prometheus_client's parser of the text format (Debian's
python3-prometheus-client), so it must be valid Prometheus text; every counter of the summary
must equal its metric exactly, per model (Triton's nv_inference_*) and in all.
    check_metrics.py METRICS_TXT SERVICE_LOG [--refused]   (--refused: a call without a token was made)
"""
import re
import sys

from prometheus_client.parser import text_string_to_metric_families

TRITON = ["nv_inference_request_success", "nv_inference_request_failure", "nv_inference_count",
          "nv_inference_exec_count", "nv_inference_request_duration_us", "nv_inference_queue_duration_us",
          "nv_inference_compute_input_duration_us", "nv_inference_compute_infer_duration_us",
          "nv_inference_compute_output_duration_us"]


def main():
    text = open(sys.argv[1]).read()
    log = open(sys.argv[2]).read()
    samples = {}  # (name, frozenset(labels)) -> value
    types = {}
    for family in text_string_to_metric_families(text):
        types[family.name] = family.type
        for s in family.samples:  # (the parser names a counter's samples NAME_total: keyed by the family's name)
            samples[(family.name, frozenset(s.labels.items()))] = s.value
    failures = []

    def expect(what, got, want):
        if got != want:
            failures.append(f"{what}: /metrics has {got}, the summary {want}")

    def value(name, **labels):
        return samples.get((name, frozenset(labels.items())))

    summary = re.search(r"^(?:offload-serve: \w+ after [0-9.]+ s|receiver rank 0: served \d+ session\(s\)): (.*?)(?:, cpu .*)?$",
                        log, re.M)
    if not summary:
        sys.exit("no exit summary in the log")
    counts = {k: int(v) for k, v in re.findall(r"(\w+) (\d+)", summary.group(1))}
    for metric, key in [("offload_requests", "requests"), ("offload_replies", "replies"),
                        ("offload_error_replies", "error_replies"), ("offload_bytes_received", "bytes_in"),
                        ("offload_bytes_sent", "bytes_out"), ("offload_sessions_finished", "peers_finished"),
                        ("offload_sessions_dropped", "peers_dropped")]:
        expect(metric, value(metric), counts[key])
    for reason, key in [("busy", "busy"), ("expired", "expired"), ("malformed", "malformed"),
                        ("handshake", "handshake_failures")]:
        expect(f"offload_refusals_total{{reason={reason}}}", value("offload_refusals", reason=reason), counts[key])
    unauth = int(re.search(r"^(?:offload-serve|receiver rank 0): unauthenticated (\d+)", log, re.M).group(1))
    expect("offload_refusals_total{reason=unauthenticated}", value("offload_refusals", reason="unauthenticated"),
           unauth)
    if "--refused" in sys.argv[3:] and unauth < 1:
        failures.append("the refused call (no token) was not counted")

    models = re.findall(r"^(?:offload-serve|receiver rank 0): model (\S+) version (\S+): success (\d+), failure (\d+), inferences (\d+), "
                        r"executions (\d+)", log, re.M)
    if not models:
        failures.append("the summary lists no model")
    for name in TRITON:
        if types.get(name) != "counter":
            failures.append(f"{name}: not a counter family ({types.get(name)})")
    success_sum = 0
    for name, version, success, failure, inferences, executions in models:
        labels = {"model": name, "version": version}
        expect(f"success of {name}", value("nv_inference_request_success", **labels), int(success))
        expect(f"failure of {name}", value("nv_inference_request_failure", **labels), int(failure))
        expect(f"count of {name}", value("nv_inference_count", **labels), int(inferences))
        expect(f"exec_count of {name}", value("nv_inference_exec_count", **labels), int(executions))
        success_sum += int(success)
        if int(success) > 0:
            for name_us in ["nv_inference_request_duration_us", "nv_inference_queue_duration_us",
                            "nv_inference_compute_infer_duration_us"]:
                if not value(name_us, **labels) > 0:
                    failures.append(f"{name_us} of {name} is not positive")
            if value("nv_inference_request_duration_us", **labels) < value("nv_inference_compute_infer_duration_us",
                                                                          **labels):
                failures.append(f"{name}: a request's duration is below its compute time")
    expect("the models' successes in all", success_sum, counts["replies"])
    for gauge in ["offload_sessions", "offload_resident_memory_bytes", "offload_executor_busy_fraction"]:
        if types.get(gauge) != "gauge":
            failures.append(f"{gauge}: not a gauge")
    if not value("offload_resident_memory_bytes") > 1e6:
        failures.append("resident memory is not plausible")
    for f in failures:
        print("FAIL:", f)
    if failures:
        sys.exit(1)
    print(f"metrics: {len(samples)} samples parsed; requests {counts['requests']}, replies {counts['replies']}, "
          f"unauthenticated {unauth}, {len(models)} model(s): equal to the exit summary")


if __name__ == "__main__":
    main()
