"""Each service's OpenAPI document, from its own ``create_app``, without a database.

``create_app`` only wires routes to its dependencies; it does not call them. So every
required dependency is given a stand-in that fails loudly if it is ever used. The
document is the one the running service serves at ``/openapi.json``: its app's routes
and the operational ones every service adds when it serves (``/health``, ``/ready``,
``/metrics``: ``shared.web.observability.add_operations``).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, NoReturn, cast

from shared.web.observability import add_operations


class Unused:
    """A dependency that must not be used while the API is only being described."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attribute: str) -> Callable[..., NoReturn]:
        def refuse(*_args: Any, **_kwargs: Any) -> NoReturn:
            raise RuntimeError(
                f"create_app used {self._name}.{attribute} while building the app; "
                "it must only wire it (shared.contract_docs.openapi)"
            )

        return refuse


def wired_app(create_app: Callable[..., Any]) -> Any:
    """The app ``create_app`` builds with stand-in dependencies, as a service's
    ``__main__`` hands it to ``shared.web.runner.serve`` (before the operational routes)."""
    required = {
        name: Unused(name)
        for name, parameter in inspect.signature(create_app).parameters.items()
        if parameter.default is inspect.Parameter.empty
        and parameter.kind not in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD)
    }
    return create_app(**required)


def described_app(create_app: Callable[..., Any]) -> Any:
    """The app as it serves, with stand-in dependencies: its routes, documents and role
    table, and the operational routes; never to serve."""
    app = wired_app(create_app)
    add_operations(app, cast(Any, Unused("readiness")), cast(Any, Unused("observer")))
    return app


def openapi_document(create_app: Callable[..., Any]) -> dict[str, Any]:
    """The OpenAPI document of the app ``create_app`` builds with stand-in dependencies."""
    document: dict[str, Any] = described_app(create_app).openapi()
    return document
