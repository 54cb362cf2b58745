"""Which response people preferred on a pair: the one definition runs and evaluations use.

A pair's label comes from **human** annotations only: ICAI files can carry machine
annotators (principles, models; their annotations carry an ``annotator_type`` in their
metadata), which are kept for inspection but never label a pair. When no person
annotated a pair, the dataset's own label (``source_preference``) is used.

Ties are an explicit, recorded setting (``ties``):

- ``exclude`` (default, as inverse-cai 0.4.8, whose pipeline refuses tied data): a pair
  whose people said "tie" or "both bad", or whose annotators split with no majority
  (1 a, 1 b), has no label: it is neither trained nor scored on.
- ``tie``: such a pair is labelled a tie (or "both bad"): voting counts a principle that
  separates the responses as contradicted, and evaluations report it apart from
  accuracy (``n_ties``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from annotations.models import Annotation, PreferencePair
from gcai.core.types import Preference

TIE_POLICIES: tuple[str, ...] = ("exclude", "tie")
DEFAULT_TIE_POLICY = "exclude"
#: What runs stored before the setting existed did: splits and ties were human ties.
LEGACY_TIE_POLICY = "tie"


def check_tie_policy(value: str) -> str:
    if value not in TIE_POLICIES:
        raise ValueError(f"ties: must be one of {', '.join(TIE_POLICIES)}, got {value!r}")
    return value


@dataclass(frozen=True)
class LabelOutcome:
    label: Preference
    source: str  # human | dataset | tie_excluded | split_excluded | split_tie | unlabelled


def pair_label(
    source_preference: str, human_choices: Iterable[str], *, ties: str = DEFAULT_TIE_POLICY
) -> LabelOutcome:
    """The label of one pair from its people's choices, else the dataset's own label."""
    check_tie_policy(ties)
    choices = [c for c in human_choices if c != Preference.NONE]
    if choices:
        counts = Counter(choices).most_common()
        if len(counts) > 1 and counts[0][1] == counts[1][1]:
            if ties == "exclude":
                return LabelOutcome(Preference.NONE, "split_excluded")
            return LabelOutcome(Preference.TIE, "split_tie")
        label, source = Preference(counts[0][0]), "human"
    elif source_preference != Preference.NONE:
        label, source = Preference(source_preference), "dataset"
    else:
        return LabelOutcome(Preference.NONE, "unlabelled")
    if not label.is_decisive and ties == "exclude":
        return LabelOutcome(Preference.NONE, "tie_excluded")
    return LabelOutcome(label, source)


@dataclass
class PairLabels:
    """Labels of many pairs, and how many came from where (recorded with a run/evaluation)."""

    labels: dict[int, Preference] = field(default_factory=dict)
    sources: Counter[str] = field(default_factory=Counter)

    def labelled(self) -> dict[int, Preference]:
        return {pk: label for pk, label in self.labels.items() if label is not Preference.NONE}

    def summary(self) -> dict[str, int]:
        return dict(sorted(self.sources.items()))


def human_annotations(pair_ids: Iterable[int]):
    """Annotations made by people on these pairs (machine annotators left out)."""
    return Annotation.objects.filter(pair_id__in=list(pair_ids)).exclude(
        metadata__has_key="annotator_type"
    )


def pairs_labels(pairs: Sequence[PreferencePair], *, ties: str = DEFAULT_TIE_POLICY) -> PairLabels:
    """Labels of ``pairs`` (one query for the annotations, whatever their number)."""
    check_tie_policy(ties)
    choices: dict[int, list[str]] = {}
    rows = human_annotations(p.pk for p in pairs).values_list("pair_id", "preferred")
    for pair_id, preferred in rows:
        choices.setdefault(pair_id, []).append(preferred)
    out = PairLabels()
    for pair in pairs:
        outcome = pair_label(pair.source_preference, choices.get(pair.pk, ()), ties=ties)
        out.labels[pair.pk] = outcome.label
        out.sources[outcome.source] += 1
    return out
