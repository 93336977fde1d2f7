"""The application's commands, run against the in-memory store and the real PostgreSQL.

One behaviour, two stores: the same tests prove the PostgreSQL wiring keeps what the
in-memory store keeps (domain types survive the round trip through JSON).
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest

from services.enrollment import errors
from services.enrollment.application import EnrollmentApplication
from services.enrollment.domain import DoseLevel, SubjectStatus
from services.enrollment.rules import Observation
from shared.adapters.eventstore import postgres_env
from shared.kernel.provenance import Meaning
from shared.kernel.settings import ServiceSettings
from tests.support import MEMORY, SCREENING_DAY, SIGNER, command, consent, screening, signing


@pytest.fixture(params=["memory", pytest.param("postgres", marks=pytest.mark.integration)])
def application(request: pytest.FixtureRequest) -> Iterator[EnrollmentApplication]:
    if request.param == "memory":
        app = EnrollmentApplication(signer=SIGNER, env=MEMORY)
    else:
        settings: ServiceSettings = request.getfixturevalue("settings")
        app = EnrollmentApplication(signer=SIGNER, env=postgres_env(settings.database))
    yield app
    app.close()


def enrol(app: EnrollmentApplication, subject_id: str = "S-001") -> None:
    app.register_subject(subject_id, "ZJU-1", command())
    app.sign_consent(subject_id, consent(), command(), signing(Meaning.RESPONSIBILITY))
    app.record_screening(subject_id, screening(), command())
    app.decide_eligibility(subject_id, command(), signing(Meaning.APPROVAL))
    app.enrol(subject_id, 2, command(), allowed_level=2)


def test_enrolled_subject_is_read_back_with_its_types(application: EnrollmentApplication) -> None:
    enrol(application)
    subject = application.get_subject("S-001")
    assert subject.status is SubjectStatus.ENROLLED
    assert subject.dose_level is DoseLevel.TWO
    assert subject.consent == consent()
    assert subject.screening == screening()
    assert subject.assessment is not None and subject.assessment.eligible
    assert isinstance(subject.assessment.results, tuple)


def test_refuses_to_register_a_subject_twice(application: EnrollmentApplication) -> None:
    application.register_subject("S-002", "ZJU-1", command())
    with pytest.raises(errors.SubjectAlreadyRegistered):
        application.register_subject("S-002", "ZJU-1", command())


def test_unknown_subject_is_not_found(application: EnrollmentApplication) -> None:
    with pytest.raises(errors.SubjectNotFound):
        application.sign_consent("S-404", consent(), command(), signing(Meaning.RESPONSIBILITY))


def test_refused_command_leaves_the_store_untouched(application: EnrollmentApplication) -> None:
    application.register_subject("S-003", "ZJU-1", command())
    before = application.recorder.max_notification_id()
    with pytest.raises(errors.ConsentRequired):
        application.record_screening("S-003", screening(), command())
    assert application.recorder.max_notification_id() == before
    assert application.get_subject("S-003").version == 1


def test_correction_survives_reload(application: EnrollmentApplication) -> None:
    application.register_subject("S-004", "ZJU-1", command())
    application.sign_consent("S-004", consent(), command(), signing(Meaning.RESPONSIBILITY))
    application.record_screening("S-004", screening(), command())
    new = Observation(Decimal(95), SCREENING_DAY, "umol/L")
    application.correct_value("S-004", "screening.creatinine", new, "lab re-issued", command())
    subject = application.get_subject("S-004")
    assert subject.screening is not None
    assert subject.screening.observations["creatinine"] == new
