"""What there is to publish, found in the code rather than listed by hand.

- Contract modules: every module of ``shared.contracts``. A module named after a service
  holds one ``*_CONTRACTS`` registry (``shared.kernel.envelope.contract_registry``). A module
  without one (``security``) holds events that every service publishes too.
- What a topic carries: the contracts its service's ``PUBLICATION``
  (``shared.kernel.publication.Publication``, in ``services/<name>/publication.py``) maps its
  stored event classes to; each must be in the service's registry or in ``security``.
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

from shared.kernel.envelope import EventData
from shared.kernel.publication import Publication

CONTRACTS_PACKAGE = "shared.contracts"
SERVICES_PACKAGE = "services"


@dataclass(frozen=True)
class Channel:
    """One service's topic and every event type that may appear on it."""

    service: str
    events: tuple[type[EventData], ...]  # ordered by event type

    @property
    def topic(self) -> str:
        # The default of shared.kernel.settings.ServiceSettings (TL_<SERVICE>_TOPIC overrides it).
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
    """A channel per contract module with a registry, in service order: the contracts
    the service's publication maps its events to."""
    shared_events = {
        contract
        for module in contract_modules().values()
        if registry(module) is None
        for contract in defined_events(module)
    }
    result = []
    for service, module in contract_modules().items():
        events = registry(module)
        if events is None:
            continue
        published = publication_of(service).contracts
        strays = [c.event_type for c in published if c not in {*events.values(), *shared_events}]
        if strays:
            raise LookupError(f"{service} publishes {strays}, in no registry of its own")
        result.append(Channel(service, tuple(published)))
    return result


def publication_of(service: str) -> Publication:
    """The ``PUBLICATION`` of ``services/<service>/publication.py``."""
    name = f"{SERVICES_PACKAGE}.{service}.publication"
    if importlib.util.find_spec(name) is None:
        raise LookupError(f"{CONTRACTS_PACKAGE}.{service} has a registry but {name} is missing")
    found = getattr(importlib.import_module(name), "PUBLICATION", None)
    if not isinstance(found, Publication):
        raise LookupError(f"{name} defines no PUBLICATION (shared.kernel.publication.Publication)")
    return found


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
