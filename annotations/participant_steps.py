"""The order of the participant flow, and when a participation is complete.

consent -> own statements -> rating others' statements (bridging votes, when the study
asks for them and there are statements to rate) -> questions about themselves (when the
study has a questionnaire; asked last so that they cannot colour the statements) -> done. A participation is complete
(``completed_at``, which releases the Prolific completion code) only when no step is
left; every write of the flow calls :func:`participant_step` to find out.
"""

from __future__ import annotations

from django.db import transaction

from annotations.bridging import vote_sample_draw, votes_pending
from annotations.models import Moderation, Participant, Study, ValueStatement
from annotations.participants import participant_complete
from annotations.questionnaire import questionnaire_pending

CONSENT = "consent"
STATEMENTS = "statements"
VOTES = "votes"
ABOUT = "about"
DONE = "done"
STEPS = (CONSENT, STATEMENTS, VOTES, ABOUT, DONE)  # in the order a participant meets them

STEP_TITLES = {
    CONSENT: "Consent",
    STATEMENTS: "Your statements",
    VOTES: "Other people's statements",
    ABOUT: "About you",
    DONE: "Done",
}


def participant_step(*, participant: Participant, study: Study) -> str:
    """The step ``participant`` is at. When nothing is left, completes the participation
    (idempotent) and returns ``DONE``."""
    if participant.completed_at is not None:
        return DONE
    if participant.consented_at is None:
        return CONSENT
    if not participant.statements.exists():
        return STATEMENTS
    if participant.vote_sample is None:
        with transaction.atomic():
            locked = Participant.objects.select_for_update().get(pk=participant.pk)
            participant.vote_sample = vote_sample_draw(participant=locked, study=study)
    if votes_pending(participant=participant):
        return VOTES
    if questionnaire_pending(participant=participant, study=study):
        return ABOUT
    participant_complete(participant=participant)
    return DONE


def _has_votes_step(study: Study, participant: Participant) -> bool:
    if participant.vote_sample is not None:
        return bool(participant.vote_sample)
    return bool(study.vote_sample_size) and (
        ValueStatement.objects.filter(study=study, moderation=Moderation.APPROVED)
        .exclude(participant=participant)
        .exists()
    )


def participant_steps(*, participant: Participant, study: Study) -> list[str]:
    """The steps this participant's flow has, in order (for "Step 2 of 4")."""
    steps = [CONSENT, STATEMENTS]
    if _has_votes_step(study, participant):
        steps.append(VOTES)
    if study.attribute_questions:
        steps.append(ABOUT)
    return [*steps, DONE]


def step_position(*, participant: Participant, study: Study, step: str) -> dict[str, int]:
    steps = participant_steps(participant=participant, study=study)
    return {"step_number": steps.index(step) + 1 if step in steps else 0, "step_count": len(steps)}
