"""Models generated from docs/asyncapi.yaml by Modelina load published records, one class
per event type (end to end, on every record of a demo run: tests/e2e/test_demo.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.contracts.modelina import ROOT, generate, refused
from tests.enrollment.test_publication import published

pytestmark = pytest.mark.integration  # npm installs Modelina the first time


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate(ROOT / "docs/asyncapi.yaml", tmp_path_factory.mktemp("modelina"))


def test_every_message_has_a_model_and_its_data_one_of_its_own(models: Path) -> None:
    made = {p.stem for p in models.glob("*.py")}
    assert {"subject_registered_v1", "subject_registered_v1_data", "subject_died_v1"} <= made
    assert "data" not in made  # no one class for the data of every type


def test_the_models_load_published_enrollment_records(models: Path) -> None:
    records = [event.to_kafka_value().decode() for event in published()]
    assert not refused(models, records)


def test_a_model_refuses_another_types_record(models: Path) -> None:
    registered, consent = published()[:2]
    relabelled = registered.to_kafka_value().decode().replace(registered.type, consent.type, 1)
    assert refused(models, [relabelled])
