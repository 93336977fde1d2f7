"""SLEDAI-2K scoring against its published weights (Gladman et al. 2002); DORIS, LLDAS,
SRI-4 and the response category at their boundaries."""

from __future__ import annotations

from decimal import Decimal

import pytest

from services.assessments.rules import (
    WEIGHTS,
    Activity,
    InvalidActivity,
    Response,
    SledaiItem,
    derive_response,
    doris,
    items_from,
    lldas,
    sri4,
)
from shared.contracts.assessments import SLEDAI_2K_ITEMS

I = SledaiItem  # noqa: E741

# The reference's list, written out again here so that a wrong weight in rules.py fails.
REFERENCE_WEIGHTS = {
    8: "seizure psychosis organic_brain_syndrome visual_disturbance cranial_nerve_disorder "
    "lupus_headache cerebrovascular_accident vasculitis",
    4: "arthritis myositis urinary_casts haematuria proteinuria pyuria",
    2: "rash alopecia mucosal_ulcers pleurisy pericarditis low_complement increased_dna_binding",
    1: "fever thrombocytopenia leukopenia",
}


def visit(
    *items: SledaiItem,
    pga: str = "0",
    prednisone: str = "0",
    maintenance: bool = True,
    bilag: tuple[int, int] | None = (0, 0),
) -> Activity:
    a, b = bilag if bilag is not None else (None, None)
    return Activity(frozenset(items), Decimal(pga), Decimal(prednisone), maintenance, a, b)


@pytest.mark.parametrize(
    ("item", "weight"),
    [(I(name), w) for w, names in REFERENCE_WEIGHTS.items() for name in names.split()],
)
def test_each_item_scores_its_reference_weight(item: SledaiItem, weight: int) -> None:
    assert visit(item).sledai_2k == weight


def test_all_24_items_score_the_maximum_105() -> None:
    assert len(WEIGHTS) == 24
    assert visit(*SledaiItem).sledai_2k == 105


def test_clinical_sledai_leaves_out_complement_and_dna_binding() -> None:
    active = visit(I.ARTHRITIS, I.LOW_COMPLEMENT, I.INCREASED_DNA_BINDING, I.RASH)
    assert (active.sledai_2k, active.clinical_sledai) == (10, 6)
    assert visit(*SledaiItem).clinical_sledai == 101


def test_every_item_must_be_answered() -> None:
    answers = {item.value: False for item in SledaiItem}
    assert items_from({**answers, "rash": True}) == {I.RASH}
    del answers["fever"]
    with pytest.raises(InvalidActivity, match="fever"):
        items_from(answers)
    with pytest.raises(InvalidActivity, match="nephritis"):
        items_from({**answers, "fever": False, "nephritis": True})


@pytest.mark.parametrize("pga", ["-0.1", "3.1"])
def test_pga_is_0_to_3(pga: str) -> None:
    with pytest.raises(InvalidActivity):
        visit(pga=pga)


@pytest.mark.parametrize(
    ("activity", "expected"),
    [
        (visit(), True),
        (visit(I.LOW_COMPLEMENT, I.INCREASED_DNA_BINDING), True),  # serology allowed
        (visit(I.FEVER), False),  # clinical SLEDAI 1
        (visit(pga="0.49"), True),
        (visit(pga="0.5"), False),  # PGA < 0.5
        (visit(prednisone="5"), True),
        (visit(prednisone="5.01"), False),  # <= 5 mg/day
    ],
)
def test_doris(activity: Activity, expected: bool) -> None:
    assert doris(activity) is expected


@pytest.mark.parametrize(
    ("activity", "previous", "expected"),
    [
        (visit(I.ARTHRITIS), None, True),  # SLEDAI-2K 4, not a major organ
        (visit(I.ARTHRITIS, I.FEVER), None, False),  # 5, and fever is major
        (visit(I.RASH, I.ALOPECIA), None, True),
        (visit(I.PROTEINURIA), None, False),  # 4, but renal
        (visit(I.PLEURISY), None, False),  # cardiopulmonary
        (visit(I.RASH), visit(), False),  # new activity since the previous visit
        (visit(I.RASH), visit(I.RASH, I.ARTHRITIS), True),
        (visit(pga="1"), None, True),
        (visit(pga="1.01"), None, False),
        (visit(prednisone="7.5"), None, True),
        (visit(prednisone="7.6"), None, False),
        (visit(maintenance=False), None, False),
    ],
)
def test_lldas(activity: Activity, previous: Activity | None, expected: bool) -> None:
    assert lldas(activity, previous) is expected


BASELINE = visit(I.ARTHRITIS, I.RASH, I.LOW_COMPLEMENT, pga="1.5")  # SLEDAI-2K 8


@pytest.mark.parametrize(
    ("activity", "expected"),
    [
        (visit(I.ARTHRITIS, pga="1.5"), True),  # reduction 4
        (visit(I.ARTHRITIS, I.FEVER, pga="1.5"), False),  # reduction 3
        (visit(I.ARTHRITIS, pga="1.79"), True),  # PGA worse by 0.29
        (visit(I.ARTHRITIS, pga="1.8"), False),  # PGA worse by 0.3
        (visit(I.ARTHRITIS, bilag=(1, 0)), False),  # a new BILAG A
        (visit(I.ARTHRITIS, bilag=(0, 1)), True),  # one new BILAG B
        (visit(I.ARTHRITIS, bilag=(0, 2)), False),
        (visit(I.ARTHRITIS, bilag=None), None),  # not evaluable without BILAG
    ],
)
def test_sri4_against_baseline(activity: Activity, expected: bool | None) -> None:
    assert sri4(activity, BASELINE) is expected


@pytest.mark.parametrize(
    ("activity", "previous", "expected"),
    [
        (visit(I.LOW_COMPLEMENT), None, Response.COMPLETE),  # DORIS
        (visit(I.RASH, pga="0.8"), visit(I.RASH), Response.PARTIAL),  # LLDAS, not DORIS
        (visit(I.ARTHRITIS, pga="1.5", maintenance=False), None, Response.PARTIAL),  # SRI-4
        (visit(I.ARTHRITIS, I.RASH, pga="1.5"), None, Response.STABLE),
        (visit(I.ARTHRITIS, I.RASH, I.PYURIA, I.ALOPECIA), None, Response.PROGRESSION),  # +4
        (visit(I.ARTHRITIS, I.RASH, I.PYURIA, I.FEVER), None, Response.STABLE),  # +3
        (visit(I.ARTHRITIS, I.RASH, pga="1.5", bilag=(1, 0)), None, Response.PROGRESSION),
    ],
)
def test_response_category(
    activity: Activity, previous: Activity | None, expected: Response
) -> None:
    derivation = derive_response(activity, previous, BASELINE)
    assert derivation.response is expected
    assert derivation.baseline_sledai_2k == 8
    assert derivation.rule_version == "NCT05030779-sle-response/1"


def test_the_rules_weigh_every_item_the_contract_names_in_its_order() -> None:
    """The published list (``SLEDAI_2K_ITEMS``: what ``items`` holds, what the SDTM export
    numbers SLED01..SLED24) and the rules' items are one list."""
    assert tuple(SledaiItem) == SLEDAI_2K_ITEMS
