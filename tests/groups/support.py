"""Two groups of people who follow different known rules, for per-group constitutions.

Every pair sets a cat or a dog against each other and a blue or a grey shirt, the two
independently, so a response's pet says nothing about its shirt. Group X prefers the
cat, group Y the blue shirt: they agree on half the pairs and a constitution that
follows one group's rule is at chance on the other group's labels.
"""

from __future__ import annotations

from annotations.attributes import attribute_set, attributes_set_external
from annotations.models import Annotation, Dataset, PreferencePair, Split
from tests.constitutions.judge_server import evaluation_answer, judge_responder, purpose_of
from tests.core.scripted import BLUE, CAT, Judge, Rule
from tests.factories import ParticipantFactory, StatementFactory

RULES = (CAT, BLUE)
X_REASON = "I chose it because it features a cat."
Y_REASON = "I chose it because the shirt is blue."
X_STATEMENT = "AI should always favour answers that feature a cat."
Y_STATEMENT = "AI should recommend the blue shirt to people."
COMBOS = (("cat", "blue"), ("cat", "grey"), ("dog", "blue"), ("dog", "grey"))


def _text(i: int, pet: str, shirt: str) -> str:
    return f"For question {i}: my pet is a {pet} and my shirt is {shirt}."


def _other(pet: str, shirt: str) -> tuple[str, str]:
    return ("dog" if pet == "cat" else "cat", "grey" if shirt == "blue" else "blue")


def make_pairs(study, *, n_train: int = 8, n_test: int = 8) -> list[PreferencePair]:
    dataset = Dataset.objects.create(study=study, name="pets and shirts")
    pairs = []
    for i in range(n_train + n_test):
        pet, shirt = COMBOS[i % len(COMBOS)]
        other_pet, other_shirt = _other(pet, shirt)
        pairs.append(
            PreferencePair.objects.create(
                dataset=dataset,
                external_id=f"q{i}",
                prompt=f"Question {i}: tell me about your pet and your shirt.",
                response_a=_text(i, pet, shirt),
                response_b=_text(i, other_pet, other_shirt),
                split=Split.TRAIN if i < n_train else Split.TEST,
            )
        )
    return pairs


def _choice(pair: PreferencePair, word: str) -> str:
    return "a" if f" {word} " in pair.response_a or f" {word}." in pair.response_a else "b"


def make_groups(study, *, size: int = 5, annotators: int = 2, small: int = 2, **kwargs):
    """Group X (participants) and group Y (imported annotator ids plus participants who
    write statements), ``size`` people each, and a group Z of ``small`` people."""
    pairs = make_pairs(study, **kwargs)
    x_people = [ParticipantFactory(study=study) for _ in range(size)]
    for p in x_people:
        attribute_set(study=study, key="group", value="X", participant=p)
        StatementFactory(study=study, participant=p, text=X_STATEMENT)
    for p in x_people[:annotators]:
        for pair in pairs:
            Annotation.objects.create(
                pair=pair, participant=p, preferred=_choice(pair, "cat"), reason=X_REASON
            )
    y_ids = [f"y{i}" for i in range(annotators)]
    attributes_set_external(study=study, people={y: {"group": "Y"} for y in y_ids})
    for y in y_ids:
        for pair in pairs:
            Annotation.objects.create(
                pair=pair, external_annotator=y, preferred=_choice(pair, "blue"), reason=Y_REASON
            )
    for _ in range(size - annotators):
        p = ParticipantFactory(study=study)
        attribute_set(study=study, key="group", value="Y", participant=p)
        StatementFactory(study=study, participant=p, text=Y_STATEMENT)
    for _ in range(small):
        p = ParticipantFactory(study=study)
        attribute_set(study=study, key="group", value="Z", participant=p)
    return pairs


def group_responder(judge: Judge):
    """The scripted judge for the fake server; as an evaluation judge it reads the
    constitution from the system message, where the evaluation prompt puts it."""
    pipeline = judge_responder(judge)

    def respond(request: dict):
        text = "\n".join(str(m.get("content", "")) for m in request["messages"])
        user = next(str(m["content"]) for m in request["messages"] if m["role"] == "user")
        if purpose_of(user) == "evaluate.judge":
            return evaluation_answer(judge, text, request)
        return pipeline(request)

    return respond


class Length(Rule):
    """A rule about two responses together: the shorter (or the longer) one. The demo's
    simulated reading_style groups (gcai.demo.groups) follow these two."""

    def decide(self, a: str, b: str) -> str:
        if len(a) == len(b):
            return "both"
        shorter = "A" if len(a) < len(b) else "B"
        longer = "B" if shorter == "A" else "A"
        return shorter if self.key == "concise" else longer


CONCISE = Length(
    "concise",
    "Select the response that is more concise.",
    ("Select the response that is concise and to the point.",),
    lambda t: False,
)
DETAILED = Length(
    "detailed",
    "Select the response that is more detailed.",
    ("Select the response that is detailed and complete.",),
    lambda t: False,
)
