"""Proofs and exports that an auditor can check offline, with only the public key."""

from __future__ import annotations

from typing import Any

import pytest

from services.projections import merkle
from services.projections.application import ProjectionsApplication
from services.projections.domain import Checkpoint
from services.projections.offline import TrustedKeys, verify_export
from shared.kernel.provenance import Role
from tests.projections.conftest import CHECKPOINT_KEY
from tests.support import RECORD_KEY, principal

pytestmark = pytest.mark.integration
AUDITOR = principal(Role.AUDITOR, user_id="aud.kim")
TRUSTED = TrustedKeys(
    checkpoint_keys=[CHECKPOINT_KEY.public_key()], record=[RECORD_KEY.public_key()], full=True
)


def nodes(proof: dict[str, Any]) -> list[bytes]:
    """A served proof's nodes, as the Merkle functions take them."""
    return [bytes.fromhex(node) for node in proof["proof"]]


def signed_root(proof: dict[str, Any]) -> bytes:
    """The root of the signed checkpoint a proof is served with."""
    return Checkpoint.from_json(proof["checkpoint"]).root


async def test_a_full_export_verifies_offline_with_the_ledgers_keys(
    filled: int, projections: ProjectionsApplication
) -> None:
    document = await projections.export(AUDITOR)
    report = verify_export(document, TRUSTED)
    assert report.ok, report.failures
    assert (report.scope, report.size, report.proofs_verified) == ("full", filled, filled)
    assert report.record_signatures_verified == 4 and report.notes == []


async def test_a_subject_export_verifies_offline_with_the_keys_it_carries(
    filled: int, projections: ProjectionsApplication
) -> None:
    document = await projections.export(AUDITOR, subject_id="S-002")
    assert {e["event"]["subject"] for e in document["entries"]} == {"S-002"}
    report = verify_export(document, TrustedKeys())
    assert report.ok, report.failures
    assert report.proofs_verified == len(document["entries"]) and report.subject_id == "S-002"


async def test_an_altered_exported_entry_fails_offline(
    filled: int, projections: ProjectionsApplication
) -> None:
    document = await projections.export(AUDITOR)
    entry = document["entries"][3]
    forged = entry["payload"].replace("ICF v2.1", "ICF v9.9").replace("ZJU-1", "ZJU-9")
    assert forged != entry["payload"]
    entry["payload"] = forged
    failures = verify_export(document, TRUSTED).failures
    assert {(f.position, f.kind) for f in failures} == {(4, "inclusion"), (4, "event_copy")}


async def test_inclusion_proof_of_one_entry(
    filled: int, projections: ProjectionsApplication
) -> None:
    proof = await projections.inclusion_proof(AUDITOR, position=5)
    leaf = bytes.fromhex(proof["leaf_hash"])
    assert merkle.verify_inclusion(leaf, 4, proof["tree_size"], nodes(proof), signed_root(proof))


async def test_consistency_proof_between_two_tree_sizes(
    filled: int, projections: ProjectionsApplication
) -> None:
    proof = await projections.consistency_proof(AUDITOR, old_size=7)
    old_root, new_size = bytes.fromhex(proof["old_root"]), proof["new_size"]
    assert merkle.verify_consistency(7, new_size, old_root, signed_root(proof), nodes(proof))
