"""deploy/docker-compose.yml: valid by the Compose Specification, and what the issue asks of
it that a schema cannot see."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from services.projections.stores import COMMAND_SERVICES
from shared.kernel.settings import DEFAULT_PORTS
from tests.deploy.files import (
    CLUSTER_FILE,
    COMPOSE_FILE,
    DEPLOY,
    INFRASTRUCTURE,
    JOBS,
    REFERENCE,
    ROOT,
    TOOLS,
    WITNESS,
    applications,
    environment,
    load_compose,
    mounts,
    runnable_applications,
)

SCHEMA_FILE = Path(__file__).with_name("compose-spec.json")
SCHEMA_SHA256 = "46b7d35f19dd93a05f8fea530291bf84d881c1791ec167ecf0e6fb94e639d496"
KEYS = "/var/lib/trial-ledger/keys"
PYTHON_BASE = "${TL_PYTHON_IMAGE:-python:3.11.14-slim-bookworm}"
# Which services may mount each private key's volume (the keys job writes them all).
PRIVATE_KEY_VOLUMES = {
    "keys_token": {"identity"},
    "keys_record": {"enrollment", "infusion", "adverse_events", "assessments"},
    "keys_checkpoint": {"projections"},
}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load_compose()


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return dict(compose["services"])


def schema_errors(document: dict[str, Any]) -> list[str]:
    schema = json.loads(SCHEMA_FILE.read_text())
    validator = jsonschema.Draft7Validator(schema)
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(document)]


def test_vendored_schema_is_the_recorded_one() -> None:
    assert hashlib.sha256(SCHEMA_FILE.read_bytes()).hexdigest() == SCHEMA_SHA256


def test_compose_file_is_valid_by_the_compose_specification(compose: dict[str, Any]) -> None:
    assert schema_errors(compose) == []


def test_the_schema_check_rejects_an_unknown_start_condition(compose: dict[str, Any]) -> None:
    broken = copy.deepcopy(compose)
    broken["services"]["identity"]["depends_on"] = {"kafka": {"condition": "service_ready"}}
    assert schema_errors(broken)


def test_every_service_package_runs_in_compose(services: dict[str, dict[str, Any]]) -> None:
    assert runnable_applications() <= applications()
    for name in applications():
        assert services[name]["command"] == [f"services.{name}"]
    assert set(services) == applications() | INFRASTRUCTURE | JOBS | TOOLS | WITNESS


def test_every_long_running_container_has_a_healthcheck(
    services: dict[str, dict[str, Any]],
) -> None:
    for name, service in services.items():
        if name in JOBS | TOOLS:
            assert service["restart"] == "no", name
            continue
        check = service.get("healthcheck", {})
        assert check.get("test") and not check.get("disable"), f"{name} has no healthcheck"


def test_each_service_listens_on_its_port_and_checks_its_own_health(
    services: dict[str, dict[str, Any]],
) -> None:
    for name in applications():
        env, port = environment(services[name]), DEFAULT_PORTS[name]
        prefix = f"TL_{name.upper()}"
        # all interfaces of its own container, or the published port reaches nothing
        assert env[f"{prefix}_HTTP_HOST"] == "0.0.0.0"  # noqa: S104
        assert env[f"{prefix}_HTTP_PORT"] == str(port)
        assert services[name]["ports"] == [f"${{TL_BIND_ADDRESS:-127.0.0.1}}:{port}:{port}"]
        assert services[name]["healthcheck"]["test"][-1] == f"http://127.0.0.1:{port}/health"


def test_services_start_after_healthy_infrastructure_and_finished_jobs(
    services: dict[str, dict[str, Any]],
) -> None:
    expected = {name: {"condition": "service_healthy"} for name in INFRASTRUCTURE}
    expected |= {name: {"condition": "service_completed_successfully"} for name in JOBS}
    for name in applications():
        # projections also waits for the witness that cosigns its checkpoints
        wanted = expected | ({"witness": {"condition": "service_healthy"}}
                             if name == "projections" else {})  # fmt: skip
        assert services[name]["depends_on"] == wanted, name
    assert services["topics"]["depends_on"] == {"kafka": {"condition": "service_healthy"}}
    assert services["databases"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}


def test_data_and_keys_live_in_named_volumes(
    compose: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    declared = set(compose["volumes"])
    assert ("kafka_data", "/var/lib/kafka/data", False) in mounts(services["kafka"])
    assert environment(services["kafka"])["KAFKA_LOG_DIRS"] == "/var/lib/kafka/data"
    assert ("postgres_data", "/var/lib/postgresql/data", False) in mounts(services["postgres"])
    used = {source for s in services.values() for source, _, _ in mounts(s)}
    assert declared <= used, "every declared volume is used"
    for name in INFRASTRUCTURE | {"keys"}:
        for source, target, _ in mounts(services[name]):
            assert source in declared, f"{name} keeps {target} in a named volume"


def test_no_secret_is_written_inline(services: dict[str, dict[str, Any]]) -> None:
    assert "PRIVATE KEY" not in COMPOSE_FILE.read_text()
    for name, service in services.items():
        for key, value in environment(service).items():
            if "PASSWORD" in key:
                assert REFERENCE.fullmatch(value), f"{name}: {key} must be a ${{VAR}}"
            for secret in re.findall(r"://[^:/@]+:([^@]+)@", value):
                assert REFERENCE.fullmatch(secret), f"{name}: {key} has a password inline"


def test_each_private_key_is_mounted_only_where_it_signs(
    services: dict[str, dict[str, Any]],
) -> None:
    for volume, users in PRIVATE_KEY_VOLUMES.items():
        mounted = {n for n, s in services.items() for src, _, _ in mounts(s) if src == volume}
        assert mounted == users | {"keys"}, volume
    for name in applications():
        for source, target, read_only in mounts(services[name]):
            # keys, and the witness's published vkey (public too), read-only
            kept = source.startswith("keys_") or source == "witness_public"
            assert kept and read_only, f"{name} mounts {target} writable"


def test_every_key_file_a_service_reads_is_in_a_mounted_volume(
    services: dict[str, dict[str, Any]],
) -> None:
    for name in applications():
        targets = [target for _, target, _ in mounts(services[name])]
        for key, path in environment(services[name]).items():
            if key.endswith("_KEY_FILE"):
                assert path.startswith(KEYS), key
                assert any(path.startswith(f"{t}/") for t in targets), f"{name}: {key}"


def test_each_service_uses_its_own_database_which_the_job_creates(
    services: dict[str, dict[str, Any]],
) -> None:
    created = set(environment(services["databases"])["TL_DATABASES"].split())
    assert created == applications()
    for name in applications():
        urls = {k: v for k, v in environment(services[name]).items()
                if k.endswith("_DATABASE_URL")}  # fmt: skip
        assert list(urls) == [f"TL_{name.upper()}_DATABASE_URL"], "its own database only"
        url = urls[f"TL_{name.upper()}_DATABASE_URL"]
        assert re.fullmatch(rf"postgresql://trial_ledger:\$\{{[^}}]+\}}@postgres:5432/{name}", url)


def test_the_auditor_reads_the_ledger_and_every_store_through_its_service(
    services: dict[str, dict[str, Any]],
) -> None:
    audit = services["audit"]
    assert audit["profiles"] == ["tools"]
    assert audit["entrypoint"] == ["python", "-m", "services.projections.cli"]
    for reader in (audit, services["projections"]):
        env = environment(reader)
        assert {k for k in env if k.endswith("_DATABASE_URL")} == {"TL_PROJECTIONS_DATABASE_URL"}
        for name in COMMAND_SERVICES:  # each store through its own service's API
            port = services[name]["environment"][f"TL_{name.upper()}_HTTP_PORT"]
            assert env[f"TL_{name.upper()}_URL"] == f"http://{name}:{port}"


def test_kafka_is_one_kraft_node_without_topic_auto_creation(
    services: dict[str, dict[str, Any]],
) -> None:
    env = environment(services["kafka"])
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == f"{env['KAFKA_NODE_ID']}@kafka:9093"
    # a Kafka Uuid: 16 bytes, base64url without padding
    assert len(base64.urlsafe_b64decode(env["CLUSTER_ID"] + "==")) == 16
    for key in [k for k in env if k.endswith(("_REPLICATION_FACTOR", "_MIN_ISR"))]:
        assert env[key] == "1", key
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    assert "PLAINTEXT://kafka:9092" in env["KAFKA_ADVERTISED_LISTENERS"]
    for name in applications() | {"topics"}:
        assert environment(services[name])["TL_KAFKA_BOOTSTRAP"] == "kafka:9092"


def official(reference: str, variable: str) -> str:
    """The default of ``${VARIABLE:-default}``: the official image an operator pulls."""
    found = re.fullmatch(rf"\$\{{{variable}:-([^}}]+)\}}", reference)
    assert found, f"{reference!r} is not selected by {variable} with a default"
    return found.group(1)


def test_outside_images_are_official_releases_selected_by_variables(
    services: dict[str, dict[str, Any]],
) -> None:
    kafka = official(services["kafka"]["image"], "TL_KAFKA_IMAGE")
    assert re.fullmatch(r"apache/kafka:\d+\.\d+\.\d+", kafka)
    for name in ("postgres", "databases"):
        postgres = official(services[name]["image"], "TL_POSTGRES_IMAGE")
        assert re.fullmatch(r"postgres:\d+\.\d+-\w+", postgres)
    python = official(PYTHON_BASE, "TL_PYTHON_IMAGE")
    assert re.fullmatch(r"python:3\.11\.\d+-slim-\w+", python)
    for name in applications() | {"topics", "keys"} | TOOLS:
        assert services[name]["build"] == {
            "context": "..",
            "dockerfile": "Dockerfile",
            "args": {"TL_PYTHON_IMAGE": PYTHON_BASE},
        }


def test_the_dockerfiles_default_to_the_same_official_bases(
    services: dict[str, dict[str, Any]],
) -> None:
    """Built by hand (``docker build .``), each image has the base compose defaults to."""
    witness = services["witness"]["build"]["args"]["TL_DEBIAN_IMAGE"]
    for dockerfile, variable, reference in (
        (ROOT / "Dockerfile", "TL_PYTHON_IMAGE", PYTHON_BASE),
        (DEPLOY / "witness" / "Dockerfile", "TL_DEBIAN_IMAGE", witness),
    ):
        assert f"ARG {variable}={official(reference, variable)}\n" in dockerfile.read_text()


def test_the_set_up_jobs_run_the_repository_s_own_tools(
    services: dict[str, dict[str, Any]],
) -> None:
    assert services["topics"]["command"] == ["shared.adapters.create_topics"]
    assert services["keys"]["entrypoint"] == ["python", "/opt/trial-ledger/keygen.py"]
    assert services["keys"]["command"] == [KEYS]
    assert services["databases"]["entrypoint"][-1].endswith("/init-databases.sh")


def test_the_witness_runs_apart_with_its_own_store_and_projections_reads_its_vkey(
    services: dict[str, dict[str, Any]],
) -> None:
    witness, projections = services["witness"], services["projections"]
    assert witness["build"]["dockerfile"] == "deploy/witness/Dockerfile"
    assert ("witness_data", "/var/lib/witness", False) in mounts(witness)
    assert not any(s.startswith(("postgres", "keys_")) for s, _, _ in mounts(witness))
    env = environment(projections)
    assert env["TL_WITNESS_URL"] == "http://witness:7380"
    vkey_folder = env["TL_WITNESS_VKEY_FILE"].rsplit("/", 1)[0]
    assert ("witness_public", vkey_folder, True) in mounts(projections)
    assert environment(services["audit"])["TL_WITNESS_URL"] == "http://witness:7380"


def test_the_cluster_overlay_is_valid_and_makes_three_voting_nodes() -> None:
    """deploy/compose.cluster.yml: three KRaft nodes, each a broker and a voter, that every
    application and the topics job reach, with topics of three replicas acknowledged by
    two (docs/operations.md, "A replicated Kafka cluster")."""
    overlay = load_compose(CLUSTER_FILE)
    assert not schema_errors(overlay)
    nodes = {name: environment(service) for name, service in overlay["services"].items()
             if name.startswith("kafka")}  # fmt: skip
    base = environment(load_compose()["services"]["kafka"])
    ids = {name: (env.get("KAFKA_NODE_ID") or base["KAFKA_NODE_ID"]) for name, env in nodes.items()}
    voters = ",".join(f"{ids[name]}@{name}:9093" for name in sorted(nodes))
    assert len(nodes) == 3 and len(set(ids.values())) == 3, ids
    for name, env in nodes.items():
        assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == voters, name
        assert env["KAFKA_MIN_INSYNC_REPLICAS"] == env["KAFKA_TRANSACTION_STATE_LOG_MIN_ISR"] == "2"
        assert env["KAFKA_DEFAULT_REPLICATION_FACTOR"] == "3"
        if name != "kafka":  # the first node keeps the base file's own settings
            assert f"PLAINTEXT://{name}:9092" in env["KAFKA_ADVERTISED_LISTENERS"]
            assert env["CLUSTER_ID"] == base["CLUSTER_ID"]
            assert [source for source, *_ in mounts(overlay["services"][name])] == [
                f"{name.replace('-', '_')}_data"
            ]
    bootstrap = ",".join(f"{name}:9092" for name in sorted(nodes))
    for name in applications() | {"topics"}:
        env = environment(overlay["services"][name])
        assert env["TL_KAFKA_BOOTSTRAP"] == bootstrap, name
        assert env["TL_TOPIC_REPLICATION"] == "3", name
