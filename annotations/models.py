"""Studies and the human input GCAI is built from.

A Study is the unit of ownership: researchers see and change only studies they hold a
researcher Membership in (enforced in ``annotations.access``). Participants are not
Django users; they enter with an unguessable per-participant token.
"""

from __future__ import annotations

import hashlib
import secrets

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


def new_token() -> str:
    """Unguessable URL-safe token (about 190 bits)."""
    return secrets.token_urlsafe(24)


def new_pseudonym(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


def new_completion_code() -> str:
    return secrets.token_hex(4).upper()


class Role(models.TextChoices):
    RESEARCHER = "researcher", "Researcher"
    ANNOTATOR = "annotator", "Annotator"


class Choice(models.TextChoices):
    """A preference in the pair's own a/b terms (never in screen order)."""

    A = "a", "A"
    B = "b", "B"
    TIE = "tie", "Tie"
    BOTH_BAD = "both_bad", "Both bad"


class SourcePreference(models.TextChoices):
    A = "a", "A"
    B = "b", "B"
    TIE = "tie", "Tie"
    BOTH_BAD = "both_bad", "Both bad"
    NONE = "none", "Unlabelled"


class Participation(models.TextChoices):
    """Who may enter a study's participant links (statements and surveys)."""

    PROLIFIC = "prolific", "Prolific only: a link without a Prolific id is refused"
    OPEN = "open", "Open: anyone with the link, anonymous entries allowed"


class Split(models.TextChoices):
    TRAIN = "train", "Train"
    TEST = "test", "Test"
    UNASSIGNED = "unassigned", "Unassigned"


VOTE_SAMPLE_MAX = 50


class Study(models.Model):
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    # Participant flow (value statements, surveys)
    entry_token = models.CharField(max_length=64, unique=True, default=new_token, editable=False)
    accepting_participants = models.BooleanField(default=True)
    consent_text = models.TextField(
        default="This study is run for research on how AI systems should behave. "
        "Your answers are stored under a pseudonym and may be published in aggregate. "
        "You may stop at any time."
    )
    value_questions = models.JSONField(
        default=list,
        blank=True,
        help_text="Questions shown to participants; list of strings.",
    )
    statements_min = models.PositiveSmallIntegerField(default=1)
    statements_max = models.PositiveSmallIntegerField(default=3)
    prolific_completion_code = models.CharField(max_length=64, blank=True)
    participation = models.CharField(
        max_length=10,
        choices=Participation.choices,
        default=Participation.OPEN,
        help_text="Prolific only refuses links without PROLIFIC_PID. Open lets anyone with "
        "the link take part anonymously; each browser is held to one participation, but "
        "someone who clears their cookies or switches browsers can take part again.",
    )
    reveal_prolific_ids = models.BooleanField(
        default=False,
        help_text="Show participants' Prolific ids in the API and exports. Prolific ids "
        "identify people: leave this off unless you must link answers to Prolific "
        "submissions (e.g. to pay bonuses), and delete the ids when you no longer need them.",
    )

    # Annotation
    reason_min_length = models.PositiveSmallIntegerField(default=15)

    # Bridging votes: after writing their own statements, participants rate this many
    # approved statements of others (annotations.bridging). 0 turns the step off.
    vote_sample_size = models.PositiveSmallIntegerField(
        default=10,
        help_text="After writing their own statements, each participant rates this many "
        "approved statements of other participants as agree / disagree / pass (a random "
        "sample, the same on every reload). 0 turns this step off.",
    )

    # Optional questions about participants, answered after their statements and stored
    # as their attributes (annotations.questionnaire): [{"key", "label", "options"}].
    attribute_questions = models.JSONField(default=list, blank=True)

    # Attributes of people are personal data: shown and exported only for groups of at
    # least this many people (annotations.attributes).
    min_group_size = models.PositiveSmallIntegerField(
        default=5,
        help_text="Smallest group of people whose attribute value may be shown, exported "
        "or used for a per-group constitution. Smaller groups are suppressed.",
    )

    class Meta:
        verbose_name_plural = "studies"
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(statements_min__lte=models.F("statements_max")),
                name="study_statements_min_lte_max",
            ),
            models.CheckConstraint(
                condition=Q(participation__in=Participation.values),
                name="study_valid_participation",
            ),
            models.CheckConstraint(
                condition=Q(min_group_size__gte=2), name="study_min_group_size_at_least_two"
            ),
            models.CheckConstraint(
                condition=Q(vote_sample_size__lte=VOTE_SAMPLE_MAX),
                name="study_vote_sample_size_at_most_max",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def questions(self) -> list[str]:
        return list(self.value_questions) or [
            "What values should AI systems hold when they respond to people? "
            "Describe a value and why it matters to you."
        ]


class Membership(models.Model):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices)
    pseudonym = models.CharField(max_length=32, default="", blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user", "study", "role"], name="membership_unique_role"
            ),
            models.CheckConstraint(condition=Q(role__in=Role.values), name="membership_valid_role"),
        ]

    def __str__(self) -> str:
        return f"{self.user} · {self.role} · {self.study}"

    def save(self, *args, **kwargs):
        if not self.pseudonym:
            self.pseudonym = new_pseudonym("A" if self.role == Role.ANNOTATOR else "R")
        super().save(*args, **kwargs)


class Dataset(models.Model):
    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="datasets")
    name = models.CharField(max_length=200)
    source_format = models.CharField(max_length=40, blank=True)
    description = models.TextField(blank=True)
    annotation_overlap = models.PositiveSmallIntegerField(
        default=1, help_text="How many annotators label each pair (K)."
    )
    created_at = models.DateTimeField(default=timezone.now)
    imported_at = models.DateTimeField(null=True, blank=True)
    import_report = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["study", "name"]
        constraints = [
            models.UniqueConstraint(fields=["study", "name"], name="dataset_unique_name_per_study"),
            models.CheckConstraint(
                condition=Q(annotation_overlap__gte=1), name="dataset_overlap_positive"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class PreferencePair(models.Model):
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="pairs")
    external_id = models.CharField(max_length=200, blank=True)
    prompt = models.TextField()
    # Multi-turn prompts keep their turns: [{"role": "user", "content": "..."}, ...]
    prompt_messages = models.JSONField(null=True, blank=True)
    response_a = models.TextField()
    response_b = models.TextField()
    source_preference = models.CharField(
        max_length=10, choices=SourcePreference.choices, default=SourcePreference.NONE
    )
    source_reason = models.TextField(blank=True)
    score_a = models.FloatField(null=True, blank=True)
    score_b = models.FloatField(null=True, blank=True)
    split = models.CharField(max_length=12, choices=Split.choices, default=Split.UNASSIGNED)
    content_hash = models.CharField(max_length=64)
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["dataset", "content_hash"], name="pair_unique_content_per_dataset"
            ),
            models.CheckConstraint(
                condition=Q(source_preference__in=SourcePreference.values),
                name="pair_valid_source_preference",
            ),
            models.CheckConstraint(condition=Q(split__in=Split.values), name="pair_valid_split"),
        ]
        indexes = [models.Index(fields=["dataset", "split"], name="pair_dataset_split")]

    def __str__(self) -> str:
        return f"Pair {self.external_id or self.pk}"

    def save(self, *args, **kwargs):
        if not self.content_hash:
            self.content_hash = self.hash_content(self.prompt, self.response_a, self.response_b)
        super().save(*args, **kwargs)

    @staticmethod
    def hash_content(prompt: str, response_a: str, response_b: str) -> str:
        h = hashlib.sha256()
        for part in (prompt, response_a, response_b):
            data = part.encode("utf-8")
            h.update(len(data).to_bytes(8, "big"))
            h.update(data)
        return h.hexdigest()


class Participant(models.Model):
    """A member of the public taking part through an entry link; never a Django user."""

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="participants")
    token = models.CharField(max_length=64, unique=True, default=new_token, editable=False)
    pseudonym = models.CharField(max_length=32, default="", blank=True)
    prolific_pid = models.CharField(max_length=64, blank=True)
    prolific_study_id = models.CharField(max_length=64, blank=True)
    prolific_session_id = models.CharField(max_length=64, blank=True)
    # Hash of the long-lived browser cookie of the browser that entered (per flow), so
    # that browser, and only it, resumes without Prolific's proof (annotations.browser).
    browser_key = models.CharField(max_length=64, blank=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now)
    consented_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    # Ids of the others' statements drawn for this participant to rate, in the order
    # shown; None until drawn (when their own statements are stored), so a reload or a
    # later approval never changes what they were asked (annotations.bridging).
    vote_sample = models.JSONField(null=True, blank=True, default=None, editable=False)
    # When they answered the study's questionnaire about themselves (if it has one).
    questionnaire_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            # One participant per Prolific id and study: a returning id never duplicates.
            models.UniqueConstraint(
                fields=["study", "prolific_pid"],
                condition=~Q(prolific_pid=""),
                name="participant_unique_prolific_pid_per_study",
            ),
        ]
        indexes = [
            models.Index(fields=["study", "browser_key"], name="participant_study_browser"),
        ]

    def __str__(self) -> str:
        return self.pseudonym

    def save(self, *args, **kwargs):
        if not self.pseudonym:
            self.pseudonym = new_pseudonym("P")
        super().save(*args, **kwargs)


class AttributeSource(models.TextChoices):
    PROLIFIC = "prolific", "Prolific demographic export"
    IMPORT = "import", "Imported with annotations"
    MANUAL = "manual", "Entered by a researcher"
    QUESTIONNAIRE = "questionnaire", "Answered by the participant"


class PersonAttribute(models.Model):
    """One key/value attribute (country, age band, ...) of one person in a study.

    The person is exactly one of: a participant, an annotator account, or an id that
    came with imported annotations or statements (``external_id``). Attributes are
    personal data: read them only through ``annotations.attributes``, which shows them
    aggregated and suppresses every group smaller than ``Study.min_group_size``.
    """

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="attributes")
    participant = models.ForeignKey(
        Participant, null=True, blank=True, on_delete=models.CASCADE, related_name="attributes"
    )
    annotator = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="person_attributes",
    )
    external_id = models.CharField(max_length=200, blank=True)
    key = models.CharField(max_length=100)
    value = models.CharField(max_length=200)
    source = models.CharField(
        max_length=16, choices=AttributeSource.choices, default=AttributeSource.MANUAL
    )
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["study", "key", "value", "id"]
        constraints = [
            models.CheckConstraint(
                condition=(
                    Q(participant__isnull=False, annotator__isnull=True, external_id="")
                    | Q(participant__isnull=True, annotator__isnull=False, external_id="")
                    | (Q(participant__isnull=True, annotator__isnull=True) & ~Q(external_id=""))
                ),
                name="attribute_exactly_one_person",
            ),
            models.CheckConstraint(condition=~Q(key=""), name="attribute_key_not_empty"),
            models.CheckConstraint(condition=~Q(value=""), name="attribute_value_not_empty"),
            models.CheckConstraint(
                condition=Q(source__in=AttributeSource.values), name="attribute_valid_source"
            ),
            models.UniqueConstraint(
                fields=["study", "participant", "key"],
                condition=Q(participant__isnull=False),
                name="attribute_one_per_participant_key",
            ),
            models.UniqueConstraint(
                fields=["study", "annotator", "key"],
                condition=Q(annotator__isnull=False),
                name="attribute_one_per_annotator_key",
            ),
            models.UniqueConstraint(
                fields=["study", "external_id", "key"],
                condition=~Q(external_id=""),
                name="attribute_one_per_external_key",
            ),
        ]
        indexes = [models.Index(fields=["study", "key", "value"], name="attribute_study_key_value")]

    def __str__(self) -> str:
        return f"{self.key}={self.value}"


class Annotation(models.Model):
    """One person's choice on a pair and the reason they wrote.

    ``preferred`` is in the pair's own a/b terms whatever the screen order was;
    ``shown_swapped`` records whether response_b was shown on the left.
    Exactly one of annotator / participant / external_annotator identifies who.
    """

    pair = models.ForeignKey(PreferencePair, on_delete=models.CASCADE, related_name="annotations")
    annotator = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="annotations",
    )
    participant = models.ForeignKey(
        Participant, null=True, blank=True, on_delete=models.CASCADE, related_name="annotations"
    )
    # Annotations imported from elsewhere keep the source's annotator id (a pseudonym).
    external_annotator = models.CharField(max_length=200, blank=True)
    preferred = models.CharField(max_length=10, choices=Choice.choices)
    reason = models.TextField(blank=True)
    shown_swapped = models.BooleanField(default=False)
    shown_at = models.DateTimeField(null=True, blank=True)
    submitted_at = models.DateTimeField(default=timezone.now)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    metadata = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(preferred__in=Choice.values), name="annotation_valid_choice"
            ),
            models.UniqueConstraint(
                fields=["pair", "annotator"],
                condition=Q(annotator__isnull=False),
                name="annotation_one_per_annotator",
            ),
            models.UniqueConstraint(
                fields=["pair", "participant"],
                condition=Q(participant__isnull=False),
                name="annotation_one_per_participant",
            ),
            models.UniqueConstraint(
                fields=["pair", "external_annotator"],
                condition=~Q(external_annotator=""),
                name="annotation_one_per_external_annotator",
            ),
            models.CheckConstraint(
                condition=(
                    Q(annotator__isnull=False, participant__isnull=True, external_annotator="")
                    | Q(annotator__isnull=True, participant__isnull=False, external_annotator="")
                    | (
                        Q(annotator__isnull=True, participant__isnull=True)
                        & ~Q(external_annotator="")
                    )
                ),
                name="annotation_exactly_one_author",
            ),
        ]

    def __str__(self) -> str:
        return f"Annotation {self.pk} on {self.pair_id}: {self.preferred}"


class AssignmentStatus(models.TextChoices):
    LEASED = "leased", "Leased"
    SUBMITTED = "submitted", "Submitted"
    SKIPPED = "skipped", "Skipped"
    FLAGGED = "flagged", "Flagged as too hard"
    EXPIRED = "expired", "Lease expired"


class PairAssignment(models.Model):
    """A pair handed to an annotator, held by a lease until submitted or expired."""

    pair = models.ForeignKey(PreferencePair, on_delete=models.CASCADE, related_name="assignments")
    annotator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="assignments"
    )
    status = models.CharField(
        max_length=12, choices=AssignmentStatus.choices, default=AssignmentStatus.LEASED
    )
    shown_swapped = models.BooleanField(default=False)
    leased_at = models.DateTimeField(default=timezone.now)
    lease_expires_at = models.DateTimeField()
    shown_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    note = models.TextField(blank=True)

    class Meta:
        constraints = [
            # Never the same pair twice to one person.
            models.UniqueConstraint(
                fields=["pair", "annotator"], name="assignment_unique_pair_annotator"
            ),
            models.CheckConstraint(
                condition=Q(status__in=AssignmentStatus.values), name="assignment_valid_status"
            ),
        ]
        indexes = [
            models.Index(fields=["status", "lease_expires_at"], name="assignment_status_expiry")
        ]

    def __str__(self) -> str:
        return f"{self.pair_id} -> {self.annotator_id} ({self.status})"


class Moderation(models.TextChoices):
    PENDING = "pending", "Pending"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"


class ValueStatement(models.Model):
    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="statements")
    participant = models.ForeignKey(
        Participant, null=True, blank=True, on_delete=models.CASCADE, related_name="statements"
    )
    # Statements imported from elsewhere keep the source's participant id (a pseudonym).
    external_participant = models.CharField(max_length=200, blank=True)
    question = models.TextField(blank=True)
    text = models.TextField()
    moderation = models.CharField(
        max_length=10, choices=Moderation.choices, default=Moderation.PENDING
    )
    moderated_at = models.DateTimeField(null=True, blank=True)
    moderated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(moderation__in=Moderation.values), name="statement_valid_moderation"
            ),
            models.CheckConstraint(condition=~Q(text=""), name="statement_text_not_empty"),
        ]
        indexes = [models.Index(fields=["study", "moderation"], name="statement_study_moderation")]

    def __str__(self) -> str:
        return self.text[:60]

    @property
    def author_pseudonym(self) -> str:
        if self.participant_id:
            return self.participant.pseudonym
        return self.external_participant or "anonymous"


class VoteChoice(models.TextChoices):
    AGREE = "agree", "Agree"
    DISAGREE = "disagree", "Disagree"
    PASS = "pass", "Pass / unsure"


class StatementVote(models.Model):
    """A participant's rating of another participant's approved value statement
    (Polis-style bridging votes). One per participant and statement."""

    participant = models.ForeignKey(Participant, on_delete=models.CASCADE, related_name="votes")
    statement = models.ForeignKey(ValueStatement, on_delete=models.CASCADE, related_name="votes")
    vote = models.CharField(max_length=10, choices=VoteChoice.choices)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["participant", "statement"], name="vote_one_per_participant_statement"
            ),
            models.CheckConstraint(
                condition=Q(vote__in=VoteChoice.values), name="vote_valid_value"
            ),
        ]
        indexes = [models.Index(fields=["statement", "vote"], name="vote_statement_vote")]

    def __str__(self) -> str:
        return f"{self.participant_id} {self.vote} {self.statement_id}"


class Invitation(models.Model):
    """An invitation to join a study in a role, accepted by whoever holds its link.

    Only a hash of the link's token is stored, so the link is shown once, when it is
    made. Nobody becomes a member without accepting, and making an invitation never
    reveals which accounts exist.
    """

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="invitations")
    role = models.CharField(max_length=16, choices=Role.choices)
    note = models.CharField(
        max_length=100, blank=True, help_text="For your own records, e.g. who it is for."
    )
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    accepted_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=Q(role__in=Role.values), name="invitation_valid_role"),
            models.CheckConstraint(
                condition=Q(accepted_at__isnull=True) | Q(revoked_at__isnull=True),
                name="invitation_not_both_accepted_and_revoked",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_role_display()} invitation to {self.study}"

    @staticmethod
    def hash_token(token: str) -> str:
        return hashlib.sha256(token.encode()).hexdigest()

    @property
    def is_pending(self) -> bool:
        return (
            self.accepted_at is None
            and self.revoked_at is None
            and self.expires_at > timezone.now()
        )
