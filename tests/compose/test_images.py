"""The service image, container by container, started with testcontainers on the real
engine: each service answers ``/ready`` on Kafka and PostgreSQL, runs as a user that is
not root, reads its keys from files, and stops with a message naming what is missing when
they are not there. The containers share a bridge network of the test's own and publish
nothing: the test reaches them at their address on that network."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from testcontainers.core.config import testcontainers_config
from testcontainers.core.container import DockerContainer
from testcontainers.core.network import Network

from tests.compose.stack import APPLICATIONS, Compose, require_engine
from tests.deploy.files import DEPLOY, ROOT, environment, load_compose, mounts

pytestmark = pytest.mark.compose

# Ryuk, testcontainers' reaper, is an image on Docker Hub, out of reach here: each fixture
# stops what it started instead.
testcontainers_config.ryuk_disabled = True

SERVICES = load_compose()["services"]
KEYS = "/var/lib/trial-ledger/keys"
UID = "10001"  # the Dockerfile's `ledger` user
WITNESS_SETTINGS = ("TL_WITNESS_URL", "TL_WITNESS_VKEY_FILE")  # optional: both or neither
INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?[-?]([^}]*))?\}")


def configured(service: str, values: dict[str, str]) -> dict[str, str]:
    """A service's environment as compose gives it, ``${VAR}`` filled from ``values`` or
    its default."""
    return {
        key: INTERPOLATION.sub(lambda m: values.get(m.group(1), m.group(2) or ""), value)
        for key, value in environment(SERVICES[service]).items()
        if key not in WITNESS_SETTINGS
    }


def address(container: DockerContainer, network: Network) -> str:
    container.get_wrapped_container().reload()
    networks = container.get_wrapped_container().attrs["NetworkSettings"]["Networks"]
    ip: str = networks[network.name]["IPAddress"]
    return ip


def exited(container: DockerContainer, timeout: float = 120) -> tuple[int, str]:
    """Wait for the container to stop: its exit code and its output."""
    answer: dict[str, Any] = container.get_wrapped_container().wait(timeout=timeout)
    stdout, stderr = container.get_logs()
    return answer["StatusCode"], (stdout + stderr).decode(errors="replace")


def until(check: Any, what: str, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {timeout}s")
        time.sleep(2)


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """The service image as compose builds it (stand-in bases where TL_*_IMAGE say so),
    and the settings it was built with."""
    require_engine()
    stack = Compose.create(tmp_path_factory.mktemp("image"))
    stack.write_env({"TL_IMAGE_TAG": "ci-image"})
    stack.run("build", "identity")
    yield stack.env()


@pytest.fixture(scope="module")
def network() -> Iterator[Network]:
    with Network() as created:
        yield created


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The key volumes' content, made by the `keys` job's own script, owned by the
    service user as in the volumes."""
    root = tmp_path_factory.mktemp("keys")
    subprocess.run([sys.executable, str(DEPLOY / "keygen.py"), str(root)], cwd=ROOT,  # noqa: S603
                   check=True, capture_output=True)  # fmt: skip
    for path in [root, *root.rglob("*")]:
        os.chown(path, int(UID), int(UID))
    return root


def started(container: DockerContainer, network: Network, alias: str) -> DockerContainer:
    return container.with_network(network).with_network_aliases(alias).start()


def infrastructure_container(name: str, settings: dict[str, str]) -> DockerContainer:
    """Kafka or PostgreSQL: the image this run uses (TL_<NAME>_IMAGE), compose's settings."""
    image = settings[f"TL_{name.upper()}_IMAGE"]
    return DockerContainer(image).with_envs(**configured(name, settings))


@pytest.fixture(scope="module")
def infrastructure(image: dict[str, str], network: Network) -> Iterator[dict[str, str]]:
    """PostgreSQL with the roles and databases (the `databases` job), and Kafka with the
    topics (the `topics` job), configured by the compose file."""
    postgres = started(infrastructure_container("postgres", image), network, "postgres")
    kafka = started(infrastructure_container("kafka", image), network, "kafka")
    try:
        until(lambda: postgres.exec(["pg_isready", "--host=127.0.0.1"]).exit_code == 0,
              "PostgreSQL ready")  # fmt: skip
        databases = started(
            DockerContainer(image["TL_POSTGRES_IMAGE"], user="postgres",
                            entrypoint=["bash", "/opt/trial-ledger/postgres/init-databases.sh"])
            .with_envs(**configured("databases", image))
            .with_volume_mapping(str(DEPLOY / "postgres"), "/opt/trial-ledger/postgres"),
            network, "databases")  # fmt: skip
        assert exited(databases)[0] == 0
        databases.stop()
        until(lambda: kafka.exec(["/opt/kafka/bin/kafka-broker-api-versions.sh",
                                  "--bootstrap-server", "localhost:9092"]).exit_code == 0,
              "Kafka ready")  # fmt: skip
        yield image
    finally:
        kafka.stop()
        postgres.stop()


def service_container(name: str, settings: dict[str, str], keys: Path | None) -> DockerContainer:
    """The service as compose runs it; with ``keys``, its key volumes mounted from there."""
    container = DockerContainer(f"trial-ledger:{settings['TL_IMAGE_TAG']}")
    container.with_command(f"services.{name}").with_envs(**configured(name, settings))
    for source, target, read_only in mounts(SERVICES[name]):
        if keys is not None and source.startswith("keys_"):
            folder = keys / source.removeprefix("keys_")
            container.with_volume_mapping(str(folder), target, "ro" if read_only else "rw")
    return container


@pytest.mark.parametrize("name", APPLICATIONS)
def test_each_service_answers_ready_as_a_user_that_is_not_root(
    name: str, infrastructure: dict[str, str], network: Network, keys: Path
) -> None:
    container = started(service_container(name, infrastructure, keys), network, name)
    try:
        port = configured(name, infrastructure)[f"TL_{name.upper()}_HTTP_PORT"]
        url = f"http://{address(container, network)}:{port}/ready"

        def ready() -> bool:
            try:
                return httpx.get(url, timeout=5).status_code == 200
            except httpx.HTTPError:
                return False

        until(ready, f"{name} /ready")
        assert container.exec(["id", "-u"]).output.decode().strip() == UID
    finally:
        container.stop()


@pytest.mark.parametrize("name", APPLICATIONS)
def test_a_service_without_its_key_files_stops_and_names_them(
    name: str, infrastructure: dict[str, str], network: Network
) -> None:
    container = started(service_container(name, infrastructure, None), network, name)
    try:
        code, output = exited(container)
    finally:
        container.stop()
    assert code != 0
    files = [v for k, v in configured(name, infrastructure).items() if k.endswith("_KEY_FILE")]
    assert any(f"cannot read key file {path}" in output for path in files), output[-2000:]
