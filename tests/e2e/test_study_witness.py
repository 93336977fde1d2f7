"""End to end: a deployment serving two studies has both studies' ledgers cosigned by its
witness (a real litewitness). A study whose log the witness does not know is named in
``/ready`` (``witness:<study>``) and the metrics; ``witness.sh register`` registers every
served study's ledger, after which SYN-CART-2's checkpoints are served cosigned and the
auditor's ``cli --study SYN-CART-2 verify --witness`` checks them: clean, and a cosigned
checkpoint a superuser deletes from that study's ledger is named."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
import pytest_asyncio

from services.projections.config import witness_verifier
from services.projections.notes import NoteError, open_note
from services.projections.studies import study_schema
from shared.study import DEFAULT_STUDY_ID
from tests.e2e.stack import Stack, shared_stack
from tests.e2e.test_audit import cli
from tests.e2e.test_study_ledgers import SECOND, publish_second_study, second_auditor
from tests.faults.infra import as_superuser
from tests.support import eventually
from tests.witness import Witness, running_witness

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]
STUDIES = f"{DEFAULT_STUDY_ID},{SECOND}"
PREFIX = f"/studies/{SECOND}"


@dataclass
class Witnessed:
    """The stack of two studies and its witness."""

    stack: Stack
    witness: Witness

    async def newest(self, path: str = "") -> str:
        """The newest checkpoint of a study's ledger, as served (cosigned or not)."""
        return (await self.stack.projections.get(f"{path}/checkpoint")).text

    async def cosigned(self, path: str = "") -> bool:
        """Whether that checkpoint carries the witness's cosignature."""
        try:
            open_note(await self.newest(path), [witness_verifier(self.witness.vkey)])
        except NoteError:
            return False
        return True

    async def checks(self) -> dict[str, str]:
        return dict((await self.stack.projections.get("/ready")).json()["checks"])

    async def verify(self) -> list[tuple[int, str]]:
        """(position, kind) of each finding of ``cli --study SYN-CART-2 verify`` with the
        witness's vkey (asking it at TL_WITNESS_URL, as the stack's settings say)."""
        done = await cli(self.stack, second_auditor(self.stack), "--study", SECOND, "verify",
                         "--no-stores", "--witness", self.witness.vkey)  # fmt: skip
        assert done.returncode in (0, 1), done.stdout + done.stderr
        report = json.loads(done.stdout)
        assert report["ok"] == (done.returncode == 0)
        return [(f["position"], f["kind"]) for f in report["findings"]]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def witnessed(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Witnessed]:
    """Two studies, a witness that knows the first study's ledger alone (as before every
    study's was registered), and a checkpoint of SYN-CART-2's ledger signed."""
    async with running_witness(tmp_path_factory.mktemp("witness")) as witness:
        settings = {"TL_WITNESS_URL": witness.url, "TL_WITNESS_VKEY": witness.vkey,
                    "TL_WITNESS_INTERVAL_SECONDS": "0.5", "TL_STALL_SECONDS": "2",
                    "TL_STUDIES": STUDIES}  # fmt: skip
        async with shared_stack(tmp_path_factory, "study-witness", **settings) as stack:
            first = (await stack.projections.get("/checkpoints", params={"limit": 1})).json()
            await witness.register(first["origin"], first["vkeys"])
            await publish_second_study(stack)

            async def signed() -> bool:
                answer = await stack.projections.get(f"{PREFIX}/checkpoints")
                return bool(answer.json()["checkpoints"])

            await eventually(signed, what="a checkpoint of SYN-CART-2's ledger")
            yield Witnessed(stack, witness)


async def test_a_study_whose_log_the_witness_does_not_know_is_named_in_ready_and_metrics(
    witnessed: Witnessed,
) -> None:
    async def named() -> bool:
        checks = await witnessed.checks()
        return "not cosigned" in checks.get(f"witness:{SECOND}", "")

    await eventually(named, what=f"/ready naming witness:{SECOND}")
    reason = (await witnessed.checks())[f"witness:{SECOND}"]
    assert f"/{SECOND} not cosigned" in reason and "403" in reason, reason
    await eventually(witnessed.cosigned, what="the first study's checkpoint cosigned")
    assert (await witnessed.checks())["witness"] == "ok"  # its name as before studies
    metrics = (await witnessed.stack.projections.get("/metrics")).text
    failing = [line for line in metrics.splitlines()
               if line.startswith("trialledger_witness_failing{")]  # fmt: skip
    assert [line.endswith(" 1.0") for line in failing if f'study="{SECOND}"' in line] == [True]
    # the first study's series as before studies were named: no study label
    assert [line.endswith(" 0.0") for line in failing if "study=" not in line] == [True]


async def test_register_has_the_witness_cosign_every_served_studys_checkpoints(
    witnessed: Witnessed,
) -> None:
    url = f"http://127.0.0.1:{witnessed.stack.processes['projections'].port}"
    for _ in range(2):  # idempotent: the logs and keys known are left as they are
        said = await witnessed.witness.register_served(url, STUDIES)
    origin = (await witnessed.stack.projections.get(f"{PREFIX}/checkpoints")).json()["origin"]
    assert f"witnesses {origin}" in said
    await eventually(lambda: witnessed.cosigned(PREFIX), what="SYN-CART-2's checkpoint cosigned")
    history = (await witnessed.stack.projections.get(f"{PREFIX}/checkpoints")).json()
    assert "trial-ledger.local/witness" in history["checkpoints"][-1]["note"]

    async def ready() -> bool:
        return (await witnessed.checks())[f"witness:{SECOND}"] == "ok"

    await eventually(ready, what=f"witness:{SECOND} ok")
    assert await witnessed.verify() == []


async def test_verify_with_the_witness_names_a_cosigned_checkpoint_deleted_from_a_study(
    witnessed: Witnessed,
) -> None:
    await eventually(lambda: witnessed.cosigned(PREFIX), what="SYN-CART-2's checkpoint cosigned")
    size = int((await witnessed.newest(PREFIX)).splitlines()[1])
    database = witnessed.stack.projections_settings.database
    schema = study_schema(database.schema, SECOND)
    kept = "CREATE TABLE public.kept_study_checkpoint AS TABLE checkpoints WITH NO DATA;\n"
    await as_superuser(database.dbname, kept + "INSERT INTO public.kept_study_checkpoint "
                       f"SELECT * FROM checkpoints WHERE tree_size = {size};\n"
                       f"DELETE FROM checkpoints WHERE tree_size = {size};",
                       schema=schema)  # fmt: skip
    try:
        assert (size, "checkpoint_deleted") in await witnessed.verify()
    finally:  # put back, as a restore from backup would
        await as_superuser(database.dbname, "INSERT INTO checkpoints SELECT * FROM "
                           "public.kept_study_checkpoint; DROP TABLE public.kept_study_checkpoint;",
                           schema=schema)  # fmt: skip
    assert await witnessed.verify() == []
