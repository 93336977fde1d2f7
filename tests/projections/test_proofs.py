"""Proofs and exports that an auditor can check offline, with only the public key."""

from __future__ import annotations

import pytest

from services.projections import merkle
from services.projections.application import ProjectionsApplication
from services.projections.domain import Checkpoint, checkpoint_valid, entry_leaf
from shared.provenance import Role
from tests.projections.conftest import (
    CHECKPOINT_KEY,
)
from tests.support import principal

pytestmark = pytest.mark.integration
AUDITOR = principal(Role.AUDITOR, user_id="aud.kim")


async def test_an_export_verifies_offline_entry_by_entry(
    filled: int, projections: ProjectionsApplication
) -> None:
    export = await projections.export(AUDITOR, subject_id="S-002")
    checkpoint = Checkpoint.from_json(export["checkpoint"])
    assert checkpoint_valid(checkpoint, [CHECKPOINT_KEY.public_key()], export["origin"])
    assert {e["event"]["subject"] for e in export["entries"]} == {"S-002"}
    for entry in export["entries"]:
        leaf = entry_leaf(entry["position"], entry["payload"].encode())
        proof = [bytes.fromhex(p) for p in entry["inclusion_proof"]]
        assert merkle.verify_inclusion(
            leaf, entry["position"] - 1, checkpoint.size, proof, checkpoint.root
        )


async def test_an_altered_exported_entry_fails_offline(
    filled: int, projections: ProjectionsApplication
) -> None:
    export = await projections.export(AUDITOR)
    checkpoint = Checkpoint.from_json(export["checkpoint"])
    entry = export["entries"][3]
    forged = entry["payload"].replace("ICF v2.1", "ICF v9.9").replace("ZJU-1", "ZJU-9")
    assert forged != entry["payload"]
    proof = [bytes.fromhex(p) for p in entry["inclusion_proof"]]
    leaf = entry_leaf(entry["position"], forged.encode())
    assert not merkle.verify_inclusion(
        leaf, entry["position"] - 1, checkpoint.size, proof, checkpoint.root
    )


async def test_inclusion_proof_of_one_entry(
    filled: int, projections: ProjectionsApplication
) -> None:
    proof = await projections.inclusion_proof(AUDITOR, position=5)
    checkpoint = Checkpoint.from_json(proof["checkpoint"])
    assert merkle.verify_inclusion(
        bytes.fromhex(proof["leaf_hash"]),
        4,
        proof["tree_size"],
        [bytes.fromhex(p) for p in proof["proof"]],
        checkpoint.root,
    )


async def test_consistency_proof_between_two_tree_sizes(
    filled: int, projections: ProjectionsApplication
) -> None:
    proof = await projections.consistency_proof(AUDITOR, old_size=7)
    checkpoint = Checkpoint.from_json(proof["checkpoint"])
    assert merkle.verify_consistency(
        7,
        proof["new_size"],
        bytes.fromhex(proof["old_root"]),
        checkpoint.root,
        [bytes.fromhex(p) for p in proof["proof"]],
    )
