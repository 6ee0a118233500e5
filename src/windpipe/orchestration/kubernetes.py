"""What a run tells Kubernetes about itself: labels naming its turbines and days.

Dagster's ``K8sRunLauncher`` reads the run tag ``dagster-k8s/config`` and puts its labels on the
run's Job and pod, so ``kubectl get pods -l windpipe.io/first-day=2026-01-05`` finds the runs of a
day. Without Kubernetes the tag is ignored. Pure: no dagster-k8s import (the image's extra).
"""

import json
import re
from collections.abc import Sequence
from datetime import date

#: The run tag dagster-k8s reads (``dagster_k8s.job.USER_DEFINED_K8S_CONFIG_KEY``).
K8S_CONFIG_TAG = "dagster-k8s/config"
LABEL_PREFIX = "windpipe.io/"


def label_value(text: str) -> str:
    """``text`` as a Kubernetes label value: 63 characters at most, alphanumeric at both ends."""
    cleaned = re.sub(r"[^A-Za-z0-9_.-]", "_", text)[:63]
    return re.sub(r"^[^A-Za-z0-9]+|[^A-Za-z0-9]+$", "", cleaned)


def run_labels(first: date, last: date, turbines: Sequence[str] | None) -> dict[str, str]:
    """Labels of a run over ``first``..``last`` of ``turbines`` (None: the whole fleet)."""
    labels = {
        f"{LABEL_PREFIX}first-day": first.isoformat(),
        f"{LABEL_PREFIX}last-day": last.isoformat(),
    }
    if turbines is None:
        labels[f"{LABEL_PREFIX}turbines"] = "fleet"
    elif len(turbines) == 1:
        labels[f"{LABEL_PREFIX}turbine"] = label_value(turbines[0])
    else:
        labels[f"{LABEL_PREFIX}turbines"] = str(len(turbines))
    return labels


def k8s_run_tags(first: date, last: date, turbines: Sequence[str] | None) -> dict[str, str]:
    """The ``dagster-k8s/config`` run tag that labels the run's Job and pod."""
    labels = run_labels(first, last, turbines)
    config = {"job_metadata": {"labels": labels}, "pod_template_spec_metadata": {"labels": labels}}
    return {K8S_CONFIG_TAG: json.dumps(config, separators=(",", ":"), sort_keys=True)}
