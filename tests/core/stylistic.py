"""Synthetic preferences whose rules differ in style, length and sentiment, not content.

Each pair answers one question twice with the same facts; exactly one planted rule
separates the two answers and decides the label, the other two aspects are the same on
both sides. The rules are :class:`tests.core.scripted.Rule` objects, so the scripted
rule-following judge (:func:`tests.core.scripted.judge_model`) explains, votes on and
summarises them like the ICAI synthetic rules.
"""

from __future__ import annotations

import random
import re

from gcai.core.types import Pair, Preference
from tests.core.scripted import Rule

TOPICS: dict[str, list[str]] = {
    "tomatoes": [
        "Tomatoes need at least six hours of sun a day",
        "Water them deeply twice a week rather than a little every day",
        "Stake the plants early so the stems do not snap",
        "Pinch out the side shoots of cordon varieties",
        "Feed with a high-potassium fertiliser once the first fruit sets",
        "Pick the fruit when it is fully coloured and slightly soft",
        "Rotate the bed every year to keep blight away",
    ],
    "bread": [
        "Use strong flour with a high protein content",
        "Knead the dough for about ten minutes until it is elastic",
        "Let it rise somewhere warm until it doubles in size",
        "Knock it back and shape it into a tight loaf",
        "Bake at a high temperature with a tray of water for steam",
        "Tap the base: a hollow sound means it is done",
        "Cool it on a rack before slicing",
    ],
    "running": [
        "Start with short runs three times a week",
        "Alternate one minute of running with one minute of walking",
        "Increase your weekly distance by no more than ten percent",
        "Buy shoes fitted at a running shop",
        "Warm up with five minutes of brisk walking",
        "Rest days matter as much as training days",
        "Drink water before and after every run",
    ],
    "budget": [
        "Write down every expense for one month",
        "Split spending into needs, wants and savings",
        "Set up an automatic transfer to savings on payday",
        "Cancel subscriptions you have not used for a month",
        "Keep an emergency fund of three months of costs",
        "Pay off the most expensive debt first",
        "Review the budget at the end of each month",
    ],
    "python": [
        "Install a recent Python from the official site",
        "Create a virtual environment for each project",
        "Learn lists, dictionaries and loops first",
        "Write small scripts that automate something you do often",
        "Read other people's code on open source projects",
        "Use a linter to catch mistakes early",
        "Write tests for the functions you rely on",
    ],
    "sleep": [
        "Go to bed and get up at the same time every day",
        "Keep the bedroom dark, quiet and cool",
        "Avoid caffeine after the early afternoon",
        "Put screens away an hour before bed",
        "Get daylight in the morning",
        "Keep naps shorter than twenty minutes",
        "Get up and read if you cannot sleep after twenty minutes",
    ],
}
CHEERFUL_OPEN = (
    "What a wonderful question, I am delighted to help!",
    "Great news: this is easy and fun, and I love helping with it!",
    "I am so happy you asked, this is a wonderful thing to learn!",
)
CHEERFUL_CLOSE = (
    "Enjoy it, you will do brilliantly!",
    "Have a fantastic time, it is a joy!",
    "Good luck, you will love the results!",
)
GLOOMY_OPEN = (
    "Sadly this is a tedious chore and many people fail at it.",
    "Unfortunately this is a frustrating problem and it often goes wrong.",
    "This is annoying and boring, and mistakes are common and painful.",
)
GLOOMY_CLOSE = (
    "Expect setbacks and disappointment.",
    "It is a dull, tiring grind.",
    "Do not be surprised if it goes badly.",
)
SHORT_FACTS = 2
LONG_FACTS = 7


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z]+", text.lower())


BULLETS = Rule(
    "bulleted",
    "Select the response that is formatted as a bulleted list.",
    ("Select the response that uses a bulleted list.",),
    lambda t: any(line.startswith("- ") for line in t.splitlines()),
)
CONCISE = Rule(
    "concise",
    "Select the response that is concise.",
    ("Select the response that is more concise.", "Select the concise response."),
    lambda t: len(_words(t)) <= 45,
)
CHEERFUL = Rule(
    "cheerful",
    "Select the response with a cheerful tone.",
    ("Select the response that sounds cheerful.",),
    lambda t: bool({"wonderful", "fantastic", "love", "delighted", "joy"} & set(_words(t))),
)
STYLE_RULES = (BULLETS, CONCISE, CHEERFUL)
# Wrong explanations the judge also offers; votes must reject them: every answer is in
# English (both), and the judge finds no side for "practical advice" (neither).
STYLE_NOISE = (
    "Select the response that is written in English.",
    "Select the response that gives practical advice.",
)


def render(topic: str, *, bullets: bool, short: bool, tone: str, rng: random.Random) -> str:
    """One answer about ``topic`` with the given layout, length and tone."""
    facts = TOPICS[topic][: SHORT_FACTS if short else LONG_FACTS]
    body = "\n".join(f"- {f}." for f in facts) if bullets else " ".join(f"{f}." for f in facts)
    if tone == "cheerful":
        return f"{rng.choice(CHEERFUL_OPEN)}\n{body}\n{rng.choice(CHEERFUL_CLOSE)}"
    if tone == "gloomy":
        return f"{rng.choice(GLOOMY_OPEN)}\n{body}\n{rng.choice(GLOOMY_CLOSE)}"
    return body


def style_pairs(n: int = 90, seed: int = 0) -> list[Pair]:
    """``n`` pairs, a third decided by each rule; labels a/b balanced at random."""
    rng = random.Random(seed)
    pairs = []
    topics = sorted(TOPICS)
    for i in range(n):
        rule = STYLE_RULES[i % len(STYLE_RULES)]
        topic = topics[(i // len(STYLE_RULES)) % len(topics)]
        bullets = rng.random() < 0.5
        short = rng.random() < 0.5
        tone = rng.choice(["neutral", "gloomy"])
        win = {"bullets": bullets, "short": short, "tone": tone}
        lose = dict(win)
        if rule is BULLETS:
            win["bullets"], lose["bullets"] = True, False
        elif rule is CONCISE:
            win["short"], lose["short"] = True, False
        else:
            win["tone"], lose["tone"] = "cheerful", "gloomy"
        winner = render(topic, rng=rng, **win)  # type: ignore[arg-type]
        loser = render(topic, rng=rng, **lose)  # type: ignore[arg-type]
        a_wins = rng.random() < 0.5
        pairs.append(
            Pair(
                id=f"s{i:03d}",
                prompt=f"How do I get started with {topic}?",
                response_a=winner if a_wins else loser,
                response_b=loser if a_wins else winner,
                preferred=Preference.A if a_wins else Preference.B,
            )
        )
    return pairs
