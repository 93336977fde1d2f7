"""The auditor API over HTTP (httpx's ASGI transport) on a real ledger: positions, tree
sizes and times outside what the ledger holds are refused with a coded 4xx, never a 500,
and a refused query is not recorded as an auditor's activity."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx
import pytest

from services.projections.api import create_app
from services.projections.application import ProjectionsApplication
from services.projections.ledger import LedgerStore
from shared.kernel.provenance import Role
from tests.cdisc import odmlib_root, schema_errors
from tests.projections.conftest import Feed
from tests.support import VERIFIER, bearer, principal

pytestmark = pytest.mark.integration
AUDITOR = principal(Role.AUDITOR, user_id="aud.kim")
BEYOND_BIGINT = 2**63


@pytest.fixture
async def client(projections: ProjectionsApplication) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(projections, VERIFIER))
    async with httpx.AsyncClient(transport=transport, base_url="http://projections") as c:
        yield c


async def get(client: httpx.AsyncClient, path: str, **params: str | int) -> httpx.Response:
    # a fresh token per request: one made at import expires before a long run reaches here
    return await client.get(path, params=params, headers=bearer(AUDITOR))


async def activities(ledger: LedgerStore) -> int:
    return int(await ledger.pool.fetchval("SELECT count(*) FROM auditor_activity"))


@pytest.mark.parametrize("old_size", [-1, 0, BEYOND_BIGINT, "1.5", "seven"])
async def test_a_consistency_proof_size_that_is_no_tree_size_is_422(
    filled: int, client: httpx.AsyncClient, old_size: str | int
) -> None:
    response = await get(client, "/proofs/consistency", old_size=old_size)
    assert response.status_code == 422
    assert response.json()["code"] == "invalid_request"


async def test_a_consistency_proof_beyond_the_checkpoint_is_404(
    filled: int, client: httpx.AsyncClient
) -> None:
    response = await get(client, "/proofs/consistency", old_size=filled + 1)
    assert response.status_code == 404
    assert response.json()["code"] == "not_in_checkpoint"
    assert response.json()["details"] == {"old_size": filled + 1, "checkpoint_size": filled}


async def test_a_consistency_proof_up_to_the_checkpoint_is_given(
    filled: int, client: httpx.AsyncClient
) -> None:
    response = await get(client, "/proofs/consistency", old_size=filled)
    assert (response.status_code, response.json()["new_size"]) == (200, filled)


@pytest.mark.parametrize("position", [0, -1, BEYOND_BIGINT])
async def test_an_inclusion_proof_of_no_position_is_422(
    filled: int, client: httpx.AsyncClient, position: int
) -> None:
    response = await get(client, f"/proofs/inclusion/{position}")
    assert response.status_code == 422


async def test_an_inclusion_proof_beyond_the_checkpoint_is_404(
    filled: int, client: httpx.AsyncClient
) -> None:
    response = await get(client, f"/proofs/inclusion/{filled + 1}")
    assert (response.status_code, response.json()["code"]) == (404, "not_in_checkpoint")


async def test_without_a_checkpoint_proofs_and_exports_are_404(client: httpx.AsyncClient) -> None:
    for path, params in (("/proofs/consistency", {"old_size": 1}), ("/export", {})):
        response = await get(client, path, **params)
        assert (response.status_code, response.json()["code"]) == (404, "not_in_checkpoint")


@pytest.mark.parametrize(
    "path", ["/subjects/S-001", "/endpoints", "/plots/swimmer.svg", "/plots/kinetics/S-001.svg"]
)
async def test_a_position_beyond_a_bigint_is_422_and_not_recorded(
    filled: int, client: httpx.AsyncClient, ledger: LedgerStore, path: str
) -> None:
    before = await activities(ledger)
    response = await get(client, path, position=BEYOND_BIGINT)
    assert response.status_code == 422
    assert response.json()["details"]["errors"][0]["location"] == ["query", "position"]
    assert await activities(ledger) == before


async def test_the_largest_bigint_position_is_a_position(
    filled: int, client: httpx.AsyncClient
) -> None:
    response = await get(client, "/subjects/S-001", position=BEYOND_BIGINT - 1)
    assert response.status_code == 200
    assert response.json()["subject_id"] == "S-001"


@pytest.mark.parametrize("as_of", ["0.5", "1700000000", "2026-11-20T09:30:00"])
async def test_as_of_is_an_iso_date_time_with_its_offset(
    filled: int, client: httpx.AsyncClient, as_of: str
) -> None:
    for path in ("/subjects/S-001", "/endpoints", "/trail"):
        param = "until" if path == "/trail" else "as_of"
        response = await get(client, path, **{param: as_of})
        assert response.status_code == 422, (path, response.text)


@pytest.mark.parametrize("path", ["/trail?subject_id=S-001%00", "/export?subject_id=%00",
                                  "/subjects/S-0%0001", "/plots/kinetics/S%00.svg"])  # fmt: skip
async def test_a_nul_in_the_query_or_path_is_422_and_not_recorded(
    filled: int, client: httpx.AsyncClient, ledger: LedgerStore, path: str
) -> None:
    before = await activities(ledger)
    response = await client.get(path, headers=bearer(AUDITOR))
    assert (response.status_code, response.json()["code"]) == (422, "invalid_request")
    assert await activities(ledger) == before


async def test_the_odm_export_is_valid_odm_1_3_2_and_recorded_as_an_export(
    filled: int, client: httpx.AsyncClient, ledger: LedgerStore
) -> None:
    response = await get(client, "/export/odm")
    assert (response.status_code, response.headers["content-type"]) == (200, "application/xml")
    assert schema_errors(response.content) == []
    odm = odmlib_root(response.content)
    assert [s.SubjectKey for s in odm.ClinicalData[0].SubjectData] == ["S-001", "S-002"]
    assert odm.FileOID == f"TL.ODM.{filled}"
    row = await ledger.pool.fetchrow(
        "SELECT user_id, action, outcome, parameters FROM auditor_activity ORDER BY id DESC"
    )
    assert (row["user_id"], row["action"], row["outcome"]) == ("aud.kim", "export", "allowed")
    assert json.loads(row["parameters"])["format"] == "odm-1.3.2"


async def test_the_odm_export_at_a_position_holds_the_entries_up_to_it(
    filled: int, client: httpx.AsyncClient
) -> None:
    odm = odmlib_root((await get(client, "/export/odm", position=3)).content)
    (subject,) = odm.ClinicalData[0].SubjectData
    assert [int(f.FormRepeatKey) for f in subject.StudyEventData[0].FormData] == [1, 2, 3]


async def test_the_odm_export_is_refused_to_an_investigator_and_the_refusal_recorded(
    filled: int, client: httpx.AsyncClient, ledger: LedgerStore
) -> None:
    investigator = principal(Role.INVESTIGATOR, user_id="inv.lin")
    response = await client.get("/export/odm", headers=bearer(investigator))
    assert response.status_code == 403
    row = await ledger.pool.fetchrow(
        "SELECT user_id, action, outcome FROM auditor_activity ORDER BY id DESC"
    )
    assert tuple(row) == ("inv.lin", "export", "denied")


@pytest.mark.parametrize("position", [0, -1, BEYOND_BIGINT, "third"])
async def test_an_odm_export_at_no_position_is_422(
    filled: int, client: httpx.AsyncClient, position: str | int
) -> None:
    response = await get(client, "/export/odm", position=position)
    assert (response.status_code, response.json()["code"]) == (422, "invalid_request")


async def test_the_sdtm_datasets_at_a_position_are_read_and_recorded_as_an_export(
    filled: int, projections: ProjectionsApplication, ledger: LedgerStore
) -> None:
    """No HTTP route (the files are the CLI's, `export-sdtm`): the application's read."""
    cut = filled // 2
    datasets, trace = await projections.sdtm(AUDITOR, position=cut)
    registered = await ledger.pool.fetch(
        "SELECT subject_id FROM ledger_entries WHERE event_type = 'SubjectRegistered.v1' "
        "AND position <= $1 ORDER BY subject_id",
        cut,
    )
    assert [r["SUBJID"] for r in datasets["DM"].rows] == [r["subject_id"] for r in registered]
    assert datasets["DM"].rows and max(int(row[4]) for row in trace) <= cut
    row = await ledger.pool.fetchrow(
        "SELECT action, outcome, parameters FROM auditor_activity ORDER BY id DESC"
    )
    assert (row["action"], row["outcome"]) == ("export", "allowed")
    assert json.loads(row["parameters"])["format"] == "sdtmig-3.4"


@pytest.mark.parametrize("path", ["/endpoints", "/trial", "/plots/swimmer.svg", "/export"])
async def test_a_report_over_a_tampered_entry_is_409_naming_it(
    filled: int, feed: Feed, client: httpx.AsyncClient, path: str
) -> None:
    """An entry a superuser replaced by something that is not an event: no report is
    made from it, and the answer says which entry (not a 500)."""
    await feed.as_superuser(
        "UPDATE ledger_entries SET payload = convert_to('{\"id\": 1}', 'UTF8') WHERE position = 3;"
    )
    response = await get(client, path)
    assert response.status_code == 409, response.text
    assert response.json()["code"] == "ledger_damaged"
    assert response.json()["details"] == {"position": 3}


@pytest.mark.parametrize(
    "path", ["/proofs/inclusion/2", "/proofs/consistency?old_size=1", "/export"]
)
async def test_a_proof_over_deleted_entries_is_409_naming_them(
    filled: int, feed: Feed, client: httpx.AsyncClient, path: str
) -> None:
    await feed.as_superuser("DELETE FROM ledger_entries WHERE position = 5;")
    response = await client.get(path, headers=bearer(AUDITOR))
    assert response.status_code == 409, response.text
    assert response.json()["code"] == "ledger_damaged"
    assert response.json()["details"] == {"first": 1, "last": filled, "held": filled - 1}
