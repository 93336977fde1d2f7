"""End to end, two studies side by side (TL_STUDIES=NCT05030779,SYN-CART-2): the
enrollment and infusion processes hold each study to its own definition, the infusion
service's view learns a SYN-CART-2 subject through real Kafka under its study's key, and
the same subject id in both studies stays two subjects. The users hold roles in each
study by grants of that study's administrator, log in for SYN-CART-2 with identity's
``/studies/SYN-CART-2/login`` and sign there."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pyreadstat
import pytest

from shared.study import DEFAULT_STUDY_ID
from tests.e2e.flows import (
    BASELINE_ITEMS,
    PASSWORD,
    Site,
    enrol,
    once_seen,
    site_team,
    today,
    treat,
    visit,
)
from tests.e2e.stack import Stack, running_stack
from tests.e2e.test_audit import cli
from tests.support import eligible_observations, eventually, observation_json

pytestmark = pytest.mark.integration

SECOND = "SYN-CART-2"


@pytest.fixture
async def studies_stack(
    enrollment_settings_env: dict[str, str], tmp_path: Path
) -> AsyncIterator[Stack]:
    env = {**enrollment_settings_env, "TL_STUDIES": f"{DEFAULT_STUDY_ID},{SECOND}"}
    async with running_stack(env, tmp_path) as stack:
        yield stack


async def for_study(stack: Stack, user_id: str, role: str, boss: dict[str, str]) -> dict[str, str]:
    """``user_id`` granted ``role`` in SYN-CART-2 by its administrator ``boss``, then
    logged in for that study: the session's headers."""
    grant = {"role": role, "site": "ZJU-1", "reason": "works in the second study too"}
    granted = await stack.identity.post(
        f"/studies/{SECOND}/users/{user_id}/roles", json=grant, headers=boss
    )
    assert granted.status_code == 200, granted.text
    return await study_login(stack, user_id)


async def study_login(stack: Stack, user_id: str) -> dict[str, str]:
    return await stack.study_log_in(SECOND, user_id, PASSWORD)


async def sign(
    stack: Stack, session: dict[str, str], meaning: str, purpose: str, user_id: str | None = None
) -> dict[str, str]:
    """A signing assertion of SYN-CART-2 (identity signs in the token's study)."""
    return await stack.signature(session, meaning, purpose, PASSWORD, user_id, SECOND)


async def enrolled_in_second(
    stack: Stack, session: dict[str, str], subject: str, platelets: str, level: int | None
) -> dict[str, Any]:
    """``subject`` through SYN-CART-2's enrollment, screened with ``platelets`` x10^9/L, by
    the investigator of ``session`` (a SYN-CART-2 login)."""
    consent = await sign(
        stack, session, "responsibility", f"enrollment/consent/{subject}", "lin.wei"
    )
    decision = await sign(stack, session, "approval", f"enrollment/eligibility/{subject}")
    screening = {code: observation_json(o) for code, o in eligible_observations().items()}
    screening["platelets"]["value"] = platelets
    prefix = f"/studies/{SECOND}"
    steps: list[tuple[str, dict[str, Any]]] = [
        ("/subjects", {"subject_id": subject, "site_id": "ZJU-1"}),
        (f"/subjects/{subject}/consent", {"form_version": "ICF v2.1", "signed_on": "2026-11-02",
                                           "obtained_by": "Lin Wei", "signature": consent}),
        (f"/subjects/{subject}/screening",
         {"screened_on": "2026-11-05", "observations": screening}),
        (f"/subjects/{subject}/eligibility", {"signature": decision}),
    ]  # fmt: skip
    if level is not None:
        steps.append((f"/subjects/{subject}/enrollment", {"dose_level": level}))
    answer: dict[str, Any] = {}
    for path, body in steps:
        response = await stack.enrollment.post(prefix + path, json=body, headers=session)
        assert response.status_code in (200, 201), response.text
        answer = response.json()
    return answer


async def prepared_in_second(
    stack: Stack,
    session: dict[str, str],
    pharmacist: dict[str, str],
    subject: str,
    days_ago: int = 0,
) -> None:
    """Leukapheresis (once the infusion view has seen the SYN-CART-2 enrollment through
    Kafka), product release and lymphodepletion of an enrolled SYN-CART-2 ``subject``,
    ``days_ago`` days back: lymphodepletion ends 5 days before the infusion's day (its
    window: 3-10)."""
    prefix = f"/studies/{SECOND}/subjects/{subject}"
    body = {"performed_on": today(-10 - days_ago), "volume_ml": "180"}
    await once_seen(
        lambda: stack.infusion.post(f"{prefix}/leukapheresis", json=body, headers=session),
        201, f"the infusion view sees SYN-CART-2's {subject} enrolled",
    )  # fmt: skip
    release = {"lot_id": f"LOT-{subject}", "product": "CD19", "car_positive_percent": "41.5",
               "viability_percent": "92", "sterility_passed": True,
               "release_tests_passed": True, "released_on": today(-6 - days_ago)}  # fmt: skip
    regimen = {"agents": [{"agent": "fludarabine", "dose_mg_per_m2": "25", "days": 3}],
               "started_on": today(-7 - days_ago),
               "completed_on": today(-5 - days_ago)}  # fmt: skip
    for path, step, who in (("products", release, pharmacist),
                            ("lymphodepletion", regimen, session)):  # fmt: skip
        answer = await stack.infusion.post(f"{prefix}/{path}", json=step, headers=who)
        assert answer.status_code == 200, answer.text


async def infused_in_second(
    stack: Stack, session: dict[str, str], subject: str, cells: str, days_ago: int = 0
) -> httpx.Response:
    """The signed SYN-CART-2 infusion of ``cells`` viable CAR-positive cells to ``subject``
    (64 kg), started ``days_ago`` days and an hour back: the service's answer."""
    started = datetime.now(UTC) - timedelta(days=days_ago, hours=1)
    signature = await sign(stack, session, "responsibility", f"infusion/infusion/{subject}")
    infusion = {
        "weight_kg": "64",
        "lots": [{"lot_id": f"LOT-{subject}", "viable_car_positive_cells": cells}],
        "started_at": started.isoformat(),
        "ended_at": (started + timedelta(minutes=15)).isoformat(),
        "signature": signature,
    }
    path = f"/studies/{SECOND}/subjects/{subject}/infusion"
    return await stack.infusion.post(path, json=infusion, headers=session)


async def test_each_study_s_rules_hold_through_the_running_services(
    studies_stack: Stack,
) -> None:
    stack = studies_stack
    session = await stack.member("lin.wei", PASSWORD, "investigator")
    await stack.create_user("zhao.pharm", PASSWORD, "cell_therapy_pharmacist")
    boss = await stack.study_admin(SECOND, "syn.boss", PASSWORD)
    second = await for_study(stack, "lin.wei", "investigator", boss)
    second_pharmacist = await for_study(stack, "zhao.pharm", "cell_therapy_pharmacist", boss)
    prefix = f"/studies/{SECOND}"

    # the same subject id, platelets 40: eligible in NCT05030779 (>= 30), not in SYN-CART-2
    await enrol(stack, session, "S-001", level=None)
    failed = await enrolled_in_second(stack, second, "S-001", "40", level=None)
    assert failed["status"] == "screen_failed"
    assert failed["eligibility"]["failed_criteria"] == ["platelets"]
    first = await stack.enrollment.get("/subjects/S-001", headers=session)
    assert first.json()["status"] == "eligible"
    # SYN-CART-2 has three dose levels; its S-002 is enrolled at its level 1
    await enrolled_in_second(stack, second, "S-002", "180", level=None)
    four = await stack.enrollment.post(
        f"{prefix}/subjects/S-002/enrollment", json={"dose_level": 4}, headers=second
    )
    assert four.json()["code"] == "invalid_dose_level"
    one = await stack.enrollment.post(
        f"{prefix}/subjects/S-002/enrollment", json={"dose_level": 1}, headers=second
    )
    assert one.status_code == 200, one.text
    # a token of one study is refused on the other's route
    crossed = await stack.enrollment.get(f"{prefix}/subjects/S-002", headers=session)
    assert (crossed.status_code, crossed.json()["code"]) == (403, "study_not_granted")

    # the infusion view learns SYN-CART-2's S-002 through Kafka; the first study's S-002
    # (never registered) stays unknown
    await prepared_in_second(stack, second, second_pharmacist, "S-002")
    body = {"performed_on": today(-10), "volume_ml": "180"}
    unknown = await stack.infusion.post("/subjects/S-002/leukapheresis", json=body, headers=session)
    assert unknown.json()["code"] == "not_enrolled"
    # 1.0 x10^6/kg: NCT05030779's level 1, twice SYN-CART-2's
    too_much = await infused_in_second(stack, second, "S-002", "64000000")
    assert too_much.json()["code"] == "dose_out_of_tolerance"
    infused = await infused_in_second(stack, second, "S-002", "32000000")  # 0.5 x10^6/kg
    assert infused.status_code == 200, infused.text
    assert infused.json()["infusion"]["weight_kg"] == "64"

    # the ledgers: each study's records in its own, verified alone
    auditor = await stack.member("kim.aud", PASSWORD, "auditor")
    second_auditor = await for_study(stack, "kim.aud", "auditor", boss)

    async def trail(path: str, headers: dict[str, str], subject: str) -> set[str]:
        answer = await stack.projections.get(path, params={"subject_id": subject}, headers=headers)
        assert answer.status_code == 200, answer.text
        return {row["event_type"] for row in answer.json()}

    async def infusion_in_ledger() -> bool:
        return "CarTInfused.v1" in await trail(f"{prefix}/trail", second_auditor, "S-002")

    await eventually(infusion_in_ledger, what="SYN-CART-2's infusion in its ledger")
    first_s001 = await trail("/trail", auditor, "S-001")
    second_s001 = await trail(f"{prefix}/trail", second_auditor, "S-001")
    assert "EligibilityConfirmed.v1" in first_s001 and "ScreenFailed.v1" not in first_s001
    assert "ScreenFailed.v1" in second_s001 and "EligibilityConfirmed.v1" not in second_s001
    assert await trail("/trail", auditor, "S-002") == set()  # never registered there
    # the first study's investigator's refused read of SYN-CART-2's S-002 is in SYN-CART-2's
    assert "AccessDenied.v1" in await trail(f"{prefix}/trail", second_auditor, "S-002")
    crossed_trail = await stack.projections.get(f"{prefix}/trail", headers=auditor)
    assert (crossed_trail.status_code, crossed_trail.json()["code"]) == (403, "study_not_granted")
    token = second_auditor["Authorization"].removeprefix("Bearer ")
    verified = await cli(stack, token, "--study", SECOND, "verify", "--no-stores")
    assert verified.returncode == 0, verified.stdout + verified.stderr


async def test_adverse_events_and_assessments_follow_each_study_s_definition(
    studies_stack: Stack,
) -> None:
    """The same subject id infused in both studies (NCT05030779's 30 days back,
    SYN-CART-2's 60): an onset on day 24 is in NCT05030779's DLT window (days 0-28), not
    in SYN-CART-2's (0-21); SYN-CART-2's DLT on day 10 and its week-8 visit (day 56,
    +/- 5; NCT05030779 reads week 12) land in SYN-CART-2's ledger alone: its trail,
    subject view, endpoints and export, and each ledger verifies clean."""
    stack = studies_stack
    team = await site_team(stack)
    boss = await stack.study_admin(SECOND, "syn.boss", PASSWORD)
    second = await for_study(stack, "lin.wei", "investigator", boss)
    second_pharmacist = await for_study(stack, "zhao.pharm", "cell_therapy_pharmacist", boss)
    prefix = f"/studies/{SECOND}"

    first_infused = await treat(team, "S-001", level=1, days_ago=30)
    await enrolled_in_second(stack, second, "S-001", "180", level=1)
    await prepared_in_second(stack, second, second_pharmacist, "S-001", days_ago=60)
    infusion = await infused_in_second(stack, second, "S-001", "32000000", days_ago=60)
    assert infusion.status_code == 200, infusion.text
    second_infused = datetime.fromisoformat(infusion.json()["infusion"]["started_at"])

    async def report(path: str, session: dict[str, str], onset: datetime) -> Any:
        body = {"term": "Alanine aminotransferase increased", "verbatim": "ALT 6 x ULN",
                "onset_at": onset.isoformat()}  # fmt: skip
        return await once_seen(
            lambda: stack.adverse_events.post(path, json=body, headers=session),
            201, f"the adverse-events view sees {path} infused",
        )  # fmt: skip

    # day 24: in NCT05030779's DLT window, after SYN-CART-2's
    first_day_24 = await report(
        "/subjects/S-001/adverse-events", team.investigator, first_infused + timedelta(days=24)
    )
    assert (first_day_24["study_day"], first_day_24["in_dlt_window"]) == (24, True)
    second_path = f"{prefix}/subjects/S-001/adverse-events"
    day_24 = await report(second_path, second, second_infused + timedelta(days=24))
    assert (day_24["study_day"], day_24["in_dlt_window"], day_24["treatment_emergent"]) == (
        24, False, True,
    )  # fmt: skip
    day_10 = await report(second_path, second, second_infused + timedelta(days=10))
    assert (day_10["study_day"], day_10["in_dlt_window"]) == (10, True)

    async def adjudicated(record: dict[str, Any]) -> httpx.Response:
        """``record`` graded 3 and adjudicated a DLT (non-haematological grade >= 3) in
        SYN-CART-2, each step signed there: the adjudication's answer."""
        rid, events = record["id"], f"{prefix}/adverse-events/{record['id']}"
        signature = await sign(stack, second, "authorship",
                               f"adverse_events/grade/{rid}@{record['version']}")  # fmt: skip
        graded = await stack.adverse_events.post(
            f"{events}/grade", json={"grade": 3, "signature": signature}, headers=second
        )
        assert graded.status_code == 200, graded.text
        signature = await sign(stack, second, "approval",
                               f"adverse_events/dlt/{rid}@{graded.json()['version']}")  # fmt: skip
        dlt = {"is_dlt": True, "criterion": "non_haematological_grade_3_or_more",
               "reason": "grade 3 ALT increase", "signature": signature}  # fmt: skip
        return await stack.adverse_events.post(f"{events}/dlt", json=dlt, headers=second)

    outside = await adjudicated(day_24)
    assert (outside.status_code, outside.json()["code"]) == (422, "not_a_dlt")
    assert (outside.json()["details"]["study_day"]) == 24
    dlt = await adjudicated(day_10)
    assert dlt.status_code == 200, dlt.text
    # another study's adverse event is not found under this one's routes
    crossed = await stack.adverse_events.get(
        f"/adverse-events/{day_10['id']}", headers=team.investigator
    )
    assert (crossed.status_code, crossed.json()["code"]) == (404, "adverse_event_not_found")

    # SYN-CART-2's calendar: baseline, then the week-8 visit (day 56), in DORIS remission
    site = Site(stack, second, SECOND)
    baseline = visit("baseline", second_infused - timedelta(days=2), BASELINE_ITEMS, "2", "10")
    await site.first_visit("S-001", baseline)
    week_8 = await site.visit(
        "S-001", visit("week 8", second_infused + timedelta(days=56), (), "0", "2.5")
    )
    await site.remission("S-001", week_8, "complete")
    assessed = await stack.assessments.get("/subjects/S-001/assessments", headers=team.investigator)
    assert (assessed.status_code, assessed.json()["code"]) == (404, "subject_not_found")

    await ledgers_keep_each_study_s_own(stack, boss, (first_day_24["id"],),
                                        (day_24["id"], day_10["id"]))  # fmt: skip


async def ledgers_keep_each_study_s_own(
    stack: Stack,
    boss: dict[str, str],
    first_events: tuple[str, ...],
    second_events: tuple[str, ...],
) -> None:
    """S-001's adverse events (``first_events``, ``second_events``: record ids) and
    assessments are in their own study's trail, subject view, endpoints and export only,
    and each ledger verifies clean, stores included."""
    auditor = await stack.member("kim.aud", PASSWORD, "auditor")
    second_auditor = await for_study(stack, "kim.aud", "auditor", boss)
    prefix = f"/studies/{SECOND}"
    first_ledger, second_ledger = ("", auditor), (prefix, second_auditor)

    async def read(ledger: tuple[str, dict[str, str]], path: str, **params: str) -> Any:
        answer = await stack.projections.get(ledger[0] + path, params=params, headers=ledger[1])
        assert answer.status_code == 200, answer.text
        return answer.json()

    async def remission_in_ledger() -> bool:
        rows = await read(second_ledger, "/trail", subject_id="S-001")
        return "RemissionAssessed.v1" in {row["event_type"] for row in rows}

    await eventually(remission_in_ledger, what="SYN-CART-2's remission in its ledger")
    first_trail = await read(first_ledger, "/trail", subject_id="S-001")
    second_trail = await read(second_ledger, "/trail", subject_id="S-001")
    assert {r["record_id"] for r in first_trail} & set(second_events) == set()
    assert set(first_events) <= {r["record_id"] for r in first_trail}
    assert set(second_events) <= {r["record_id"] for r in second_trail}
    assert {r["event_id"] for r in first_trail} & {r["event_id"] for r in second_trail} == set()
    first_types = {r["event_type"] for r in first_trail}
    assert not first_types & {"DltAdjudicated.v1", "DiseaseActivityAssessed.v1",
                              "RemissionAssessed.v1"}  # fmt: skip

    first_state = await read(first_ledger, "/subjects/S-001")
    second_state = await read(second_ledger, "/subjects/S-001")
    assert (first_state["adverse_events"], first_state.get("dlt"), first_state.get("response")) == (
        1, None, None,
    )  # fmt: skip
    assert (second_state["adverse_events"], second_state["dlt"]) == (2, True)
    assert second_state["response"]["response"] == "complete"
    assert second_state["infusion"]["cells_per_kg_millions"] == "0.500"

    # the endpoints by each study's definition: its DLTs, its visits, its rule version
    first_figures = await read(first_ledger, "/endpoints")
    second_figures = await read(second_ledger, "/endpoints")
    assert first_figures["version"].startswith(f"{DEFAULT_STUDY_ID}/")
    assert second_figures["version"].startswith(f"{SECOND}/")
    assert first_figures["dlt_rate_per_dose_level"]["1"]["numerator"] == 0
    assert second_figures["dlt_rate_per_dose_level"]["1"]["numerator"] == 1
    assert list(first_figures["remission_at_visit"]) == ["week 12"]
    assert list(second_figures["remission_at_visit"]) == ["week 8"]
    assert second_figures["remission_at_visit"]["week 8"]["doris"]["subjects"] == ["S-001"]

    # the exports: each study's entries alone, each naming its study
    async def exported(ledger: tuple[str, dict[str, str]]) -> list[dict[str, Any]]:
        entries: list[dict[str, Any]] = []

        async def checkpointed() -> bool:
            document = await read(ledger, "/export", subject_id="S-001")
            entries[:] = [e["event"] for e in document["entries"]]
            return "RemissionAssessed.v1" in {e["type"] for e in entries} or ledger[0] == ""

        await eventually(checkpointed, what=f"S-001 under a checkpoint of {ledger[0] or '/'}")
        return entries

    first_export, second_export = await exported(first_ledger), await exported(second_ledger)
    assert {e["id"] for e in first_export} & {e["id"] for e in second_export} == set()
    assert {e.get("studyid", DEFAULT_STUDY_ID) for e in first_export} == {DEFAULT_STUDY_ID}
    assert {e.get("studyid") for e in second_export} == {SECOND}
    assert second_events[0] in {e["data"].get("record_id") for e in second_export}

    odm = await stack.projections.get(f"{prefix}/export/odm", headers=second_auditor)
    assert odm.status_code == 200, odm.text
    assert 'ClinicalData StudyOID="ST.SYN-CART-2"' in odm.text and "ST.NCT05030779" not in odm.text

    for study, headers in ((DEFAULT_STUDY_ID, auditor), (SECOND, second_auditor)):
        token = headers["Authorization"].removeprefix("Bearer ")
        verified = await cli(stack, token, "--study", study, "verify")
        assert verified.returncode == 0, verified.stdout + verified.stderr
    # SDTM per study: each study's datasets, STUDYID and USUBJIDs its own, its trial design
    first_sdtm = await sdtm_of(stack, DEFAULT_STUDY_ID, auditor)
    second_sdtm = await sdtm_of(stack, SECOND, second_auditor)
    for study, datasets in ((DEFAULT_STUDY_ID, first_sdtm), (SECOND, second_sdtm)):
        assert {v for d in datasets.values() for v in d["STUDYID"]} == {study}
        assert set(datasets["DM"]["USUBJID"]) >= {f"{study}-S-001"}
        assert set(datasets["TS"][datasets["TS"]["TSPARMCD"] == "REGID"]["TSVAL"]) == {study}
    assert (len(first_sdtm["AE"]), len(second_sdtm["AE"])) == (1, 2)
    assert set(second_sdtm["TA"]["ARMCD"]) == {"DL1", "DL2", "DL3"}
    infused = second_sdtm["EX"][second_sdtm["EX"]["EXCAT"] == "CAR-T INFUSION"]
    assert list(infused["EXDOSE"]) == [0.5]
    assert "RS" in second_sdtm and "RS" not in first_sdtm


async def sdtm_of(stack: Stack, study: str, headers: dict[str, str]) -> dict[str, Any]:
    """The study's SDTM export by the auditor's CLI (``export-sdtm``), each dataset written
    read back as a data frame; no file of it names the other study."""
    token = headers["Authorization"].removeprefix("Bearer ")
    directory = stack.keys / f"sdtm-{study}"
    written = await cli(stack, token, "--study", study, "export-sdtm", str(directory))
    assert written.returncode == 0, written.stdout + written.stderr
    other = (SECOND if study == DEFAULT_STUDY_ID else DEFAULT_STUDY_ID).encode()
    assert [f.name for f in directory.iterdir() if other in f.read_bytes()] == []
    return {f.stem.upper(): pyreadstat.read_xport(str(f))[0] for f in directory.glob("*.xpt")}
