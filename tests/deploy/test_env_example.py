"""deploy/.env.example: the template of the one file that holds the stack's secrets."""

from __future__ import annotations

import re

from tests.deploy.files import COMPOSE_FILE, REFERENCE, ROOT, env_example, run


def compose_variables() -> set[str]:
    return set(REFERENCE.findall(COMPOSE_FILE.read_text()))


def required_variables() -> set[str]:
    """Those written ``${VAR:?message}``: compose refuses to start without them."""
    return set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*):?\?", COMPOSE_FILE.read_text()))


def test_env_example_lists_every_variable_the_compose_file_uses() -> None:
    assert compose_variables() - set(env_example()) == set()


def test_env_example_lists_nothing_the_compose_file_ignores() -> None:
    assert set(env_example()) - compose_variables() == set()


def test_the_secrets_are_required_and_left_blank_in_the_template() -> None:
    assert required_variables() == {"TL_PG_PASSWORD", "TL_PG_SUPERUSER_PASSWORD"}
    for name in required_variables():
        assert env_example()[name] == "", f"{name} must not have a value in the repository"


def test_optional_variables_show_their_defaults() -> None:
    defaults = dict(
        re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*):-([^}]*)\}", COMPOSE_FILE.read_text())
    )
    assert defaults, "the compose file has optional settings"
    for name, default in defaults.items():
        assert env_example()[name] == default, name


def test_the_filled_in_env_file_is_never_committed() -> None:
    ignored = run(["git", "check-ignore", "--quiet", "deploy/.env"], cwd=ROOT)
    template = run(["git", "check-ignore", "--quiet", "deploy/.env.example"], cwd=ROOT)
    assert (ignored.returncode, template.returncode) == (0, 1)
