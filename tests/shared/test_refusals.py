"""One error registry: every refusal a service raises is in a family whose HTTP status
``shared.web.http.STATUSES`` gives; a refusal left out of the families would answer a
bare 400 that no operation documents."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import services
from shared.kernel import errors
from shared.kernel.errors import Refusal
from shared.web.http import STATUSES, family_of, refusals_in


def _every_service_module() -> list[str]:
    names = [m.name for m in pkgutil.walk_packages(services.__path__, "services.")]
    modules = [name for name in names if not name.endswith(".__main__")]
    for name in modules:
        importlib.import_module(name)
    return modules


SERVICE_MODULES = _every_service_module()
SERVICE_REFUSALS = sorted(refusals_in("services"), key=lambda cls: cls.__qualname__)


def test_the_services_have_refusals_to_check() -> None:
    assert len(SERVICE_REFUSALS) > 50


@pytest.mark.parametrize("refusal", SERVICE_REFUSALS, ids=lambda cls: cls.__qualname__)
def test_a_service_refusal_is_in_a_family_with_a_status(refusal: type[Refusal]) -> None:
    family = family_of(refusal)
    assert family not in (None, Refusal), (
        f"{refusal.__module__}.{refusal.__qualname__} subclasses no family of "
        "shared.kernel.errors that shared.web.http.STATUSES maps to a status"
    )


def test_every_family_of_the_kernel_has_its_own_status() -> None:
    families = [
        value
        for value in vars(errors).values()
        if isinstance(value, type) and issubclass(value, Refusal)
    ]
    assert families and all(family in STATUSES for family in families)
