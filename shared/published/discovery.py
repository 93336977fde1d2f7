"""What there is to publish, found in the code rather than listed by hand.

- Contract modules: every module of ``shared.contracts``. A module named after a service
  holds one ``*_CONTRACTS`` registry (``shared.envelope.contract_registry``): the events
  of that service's topic. A module without one (``security``) holds events that other
  services publish too.
- Services with an HTTP API: every package ``services/<name>/`` with an ``api.py`` that
  defines ``create_app``.

Services are imported by name at run time: ``shared`` never depends on them statically.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from shared import publication
from shared.contracts.security import AccessDeniedV1, RecordSignedV1
from shared.envelope import EventData

CONTRACTS_PACKAGE = "shared.contracts"
SERVICES_PACKAGE = "services"

# ``shared.publication.to_published`` maps denials and signatures itself, so a service
# that publishes through it carries these on its topic besides its own registry.
TO_PUBLISHED_ADDS: tuple[type[EventData], ...] = (AccessDeniedV1, RecordSignedV1)


@dataclass(frozen=True)
class Channel:
    """One service's topic and every event type that may appear on it."""

    service: str
    events: tuple[type[EventData], ...]  # ordered by event type

    @property
    def topic(self) -> str:
        # The default of shared.settings.ServiceSettings (TL_<SERVICE>_TOPIC overrides it).
        return f"trialledger.{self.service}.events"

    @property
    def source(self) -> str:
        return f"/trial-ledger/{self.service}"


def _modules(package: str, packages_only: bool = False) -> list[str]:
    root = importlib.import_module(package)
    found = pkgutil.iter_modules(root.__path__)
    return sorted(info.name for info in found if info.ispkg or not packages_only)


def contract_modules() -> dict[str, ModuleType]:
    """Every contract module by its short name (``enrollment``, ``security`` ...)."""
    return {
        name: importlib.import_module(f"{CONTRACTS_PACKAGE}.{name}")
        for name in _modules(CONTRACTS_PACKAGE)
    }


def defined_events(module: ModuleType) -> list[type[EventData]]:
    """The versioned events a module defines itself (not those it imports)."""
    found = [
        value
        for value in vars(module).values()
        if inspect.isclass(value)
        and issubclass(value, EventData)
        and value.__module__ == module.__name__
        and "event_type" in vars(value)
    ]
    return sorted(found, key=lambda contract: contract.event_type)


def registry(module: ModuleType) -> dict[str, type[EventData]] | None:
    """The module's one ``*_CONTRACTS`` registry, or None for a module of shared events."""
    found = [
        value
        for name, value in vars(module).items()
        if name.endswith("_CONTRACTS") and isinstance(value, dict)
    ]
    if len(found) > 1:
        raise LookupError(f"{module.__name__} has {len(found)} *_CONTRACTS registries, not one")
    return found[0] if found else None


def channels() -> list[Channel]:
    """A channel per contract module with a registry, in service order."""
    result = []
    for service, module in contract_modules().items():
        events = registry(module)
        if events is None:
            continue
        carried = {**events}
        if _publishes_through_to_published(service):
            carried.update({contract.event_type: contract for contract in TO_PUBLISHED_ADDS})
        result.append(Channel(service, tuple(carried[name] for name in sorted(carried))))
    return result


def _publishes_through_to_published(service: str) -> bool:
    name = f"{SERVICES_PACKAGE}.{service}.publication"
    if importlib.util.find_spec(name) is None:
        raise LookupError(f"{CONTRACTS_PACKAGE}.{service} has a registry but {name} is missing")
    module = importlib.import_module(name)
    return getattr(module, "to_published", None) is publication.to_published


def app_factories() -> dict[str, Callable[..., Any]]:
    """``create_app`` of every service with an ``api.py``, by service name."""
    factories: dict[str, Callable[..., Any]] = {}
    for service in _modules(SERVICES_PACKAGE, packages_only=True):
        name = f"{SERVICES_PACKAGE}.{service}.api"
        if importlib.util.find_spec(name) is None:
            continue
        factory = getattr(importlib.import_module(name), "create_app", None)
        if not callable(factory):
            raise LookupError(f"{name} defines no create_app(...) -> FastAPI")
        factories[service] = factory
    return factories
