"""Labels a run puts on its Kubernetes Job: valid label values for any turbine id."""

import json
import re
from datetime import date

from windpipe.catalog import TURBINE_ID
from windpipe.orchestration.kubernetes import K8S_CONFIG_TAG, k8s_run_tags, label_value

#: Kubernetes' label value syntax (empty, or 63 characters alphanumeric at both ends).
LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")


def test_any_turbine_id_becomes_a_valid_label_value() -> None:
    for turbine in ("WTG01", "a" * 64, "T-1.", "x_" * 32):
        assert re.fullmatch(TURBINE_ID, turbine)
        value = label_value(turbine)
        assert len(value) <= 63 and LABEL_VALUE.fullmatch(value), value


def test_the_tag_labels_the_job_and_the_pod() -> None:
    tags = k8s_run_tags(date(2026, 1, 5), date(2026, 1, 6), ["WTG01", "WTG02"])
    config = json.loads(tags[K8S_CONFIG_TAG])
    for part in ("job_metadata", "pod_template_spec_metadata"):
        assert config[part]["labels"] == {
            "windpipe.io/first-day": "2026-01-05",
            "windpipe.io/last-day": "2026-01-06",
            "windpipe.io/turbines": "2",
        }
    fleet = json.loads(k8s_run_tags(date(2026, 1, 5), date(2026, 1, 5), None)[K8S_CONFIG_TAG])
    assert fleet["job_metadata"]["labels"]["windpipe.io/turbines"] == "fleet"
