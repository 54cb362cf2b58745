"""Encoders for clustering embedding differences (improved ICAI, variant 2).

The improved-ICAI paper (Henneking & Beger, arXiv 2501.17112) embeds both responses of a
pair with several encoders, each looking at one aspect of a response, and clusters the
differences (preferred minus rejected) per encoder. The paper's encoders are
``all-mpnet-base-v2`` (content), ``AnnaWegmann/Style-Embedding`` (style) and a
DistilBERT fine-tuned on SST-2 (sentiment). None of them ships with a PyPI package, so
each aspect has an offline default that needs no download:

``content``
    the bundled all-MiniLM-L6-v2 (the run's embedder, see :mod:`gcai.core.embed`);
``style``
    :class:`StyleEncoder`, a stylometric vector: length, layout and formatting
    (paragraphs, bullets, numbered lists, headings, bold, code), punctuation rates,
    casing, lexical diversity and readability (Flesch reading ease and grade);
``sentiment``
    :class:`SentimentEncoder`, lexicon-based scores from VADER (``vaderSentiment``).

Any sentence-transformers model can be named as ``st:<model name or directory>``
(e.g. ``st:all-mpnet-base-v2``, ``st:AnnaWegmann/Style-Embedding``); it is loaded only
when a run uses it, from the local Hugging Face cache or a directory, never downloaded.

Stylometric and sentiment vectors are feature vectors, not unit rows: their magnitudes
carry the signal (how much longer, how much more positive), so they are not normalised
and their differences are standardised per feature before clustering
(``standardise = True``).
"""

from __future__ import annotations

import math
import os
import re
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from gcai.core.embed import CachedEmbedder, Embedder, EmbeddingCache, normalise

OFFLINE_ENCODERS: tuple[str, ...] = ("content", "style", "sentiment")
ST_PREFIX = "st:"
# The improved-ICAI paper's encoders, for users whose machines have them.
PAPER_ENCODERS: dict[str, str] = {
    "content": "st:sentence-transformers/all-mpnet-base-v2",
    "style": "st:AnnaWegmann/Style-Embedding",
    "sentiment": "st:distilbert/distilbert-base-uncased-finetuned-sst-2-english",
}
# A Hugging Face model id (owner/name or name) or a local path.
_MODEL_REF = re.compile(r"^(?:[\w.\-]+(?:/[\w.\-]+)?|[/~.][^\x00]*)$")


@runtime_checkable
class Encoder(Protocol):
    """Anything with a name that turns texts into one row of floats each.

    Every :class:`~gcai.core.embed.Embedder` is an encoder. ``standardise`` (optional,
    default false) asks the difference clustering to z-score each feature first.
    """

    name: str

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...


def validate_encoder_names(names: object) -> None:
    """Raise ``ValueError`` (prefixed ``encoders:``) unless every name can be built.

    Accepts exactly what :func:`build_encoders` builds: ``content``, ``style``,
    ``sentiment`` and ``st:<model>``.
    """
    if (
        not isinstance(names, list)
        or not names
        or not all(isinstance(e, str) and e for e in names)
        or len(set(names)) != len(names)
    ):
        raise ValueError("encoders: must be a non-empty list of distinct encoder names")
    for name in names:
        if name in OFFLINE_ENCODERS:
            continue
        if name.startswith(ST_PREFIX) and _MODEL_REF.match(name[len(ST_PREFIX) :].strip()):
            continue
        raise ValueError(
            f"encoders: unknown encoder {name!r}; use {', '.join(OFFLINE_ENCODERS)} or "
            f"st:<sentence-transformers model name or directory>"
        )


def build_encoders(
    names: Sequence[str],
    *,
    content: Embedder,
    cache: EmbeddingCache | None = None,
) -> dict[str, Encoder]:
    """The encoders ``names`` ask for; ``content`` is the run's embedder.

    With ``cache``, computed vectors are stored by text hash (the content embedder is
    expected to bring its own cache). A sentence-transformers model that is not on
    this machine fails here with a message that says so.
    """
    validate_encoder_names(list(names))
    out: dict[str, Encoder] = {}
    for name in names:
        encoder: Encoder
        if name == "content":
            out[name] = content
            continue
        if name == "style":
            encoder = StyleEncoder()
        elif name == "sentiment":
            encoder = SentimentEncoder()
        else:
            encoder = NamedSentenceTransformer(name[len(ST_PREFIX) :].strip())
        out[name] = CachedEmbedder(encoder, cache) if cache is not None else encoder
    return out


# --------------------------------------------------------------------------- style

_SENTENCE_END = re.compile(r"[.!?]+(?=\s|$)")
_WORD = re.compile(r"[A-Za-z]+(?:'[A-Za-z]+)?")
_BULLET = re.compile(r"^\s*[-*\u2022+]\s+\S")
_NUMBERED = re.compile(r"^\s*\d+[.)]\s+\S")
_HEADING = re.compile(r"^\s*(#{1,6}\s+\S|[A-Z][^.!?]{0,60}:\s*$)")
_VOWEL_GROUPS = re.compile(r"[aeiouy]+")

STYLE_FEATURES: tuple[str, ...] = (
    "log_chars",
    "log_words",
    "log_sentences",
    "log_paragraphs",
    "words_per_sentence",
    "chars_per_word",
    "bullet_lines",
    "numbered_lines",
    "heading_lines",
    "log_bold",
    "log_code_blocks",
    "commas",
    "exclamations",
    "questions",
    "colons",
    "semicolons",
    "parentheses",
    "quotes",
    "dashes",
    "uppercase",
    "digits",
    "type_token_ratio",
    "reading_ease",
    "grade_level",
)


def _syllables(word: str) -> int:
    # The usual vowel-group heuristic (as in readability formulas' implementations):
    # good enough for a feature, and far faster than a dictionary.
    w = word.lower()
    n = len(_VOWEL_GROUPS.findall(w))
    if w.endswith("e") and not w.endswith(("le", "ee")) and n > 1:
        n -= 1
    return max(1, n)


def style_features(text: str) -> list[float]:
    """The stylometric vector of one text, in the order of :data:`STYLE_FEATURES`.

    Counts are log-scaled and rates are per 100 characters or shares of lines, so the
    features have comparable ranges before standardisation.
    """
    chars = len(text)
    words = _WORD.findall(text)
    n_words = len(words)
    n_sentences = max(1, len(_SENTENCE_END.findall(text))) if n_words else 0
    lines = [line for line in text.splitlines() if line.strip()]
    n_lines = max(1, len(lines))
    paragraphs = [p for p in re.split(r"\n\s*\n", text) if p.strip()]
    per100 = 100.0 / max(chars, 1)
    syllables = sum(_syllables(w) for w in words[:2000])
    sampled = min(n_words, 2000)
    wps = n_words / n_sentences if n_sentences else 0.0
    spw = syllables / sampled if sampled else 0.0
    letters = [c for c in text if c.isalpha()]
    return [
        math.log1p(chars),
        math.log1p(n_words),
        math.log1p(n_sentences),
        math.log1p(len(paragraphs)),
        min(wps, 80.0) / 20.0,
        (sum(len(w) for w in words) / n_words / 5.0) if n_words else 0.0,
        sum(1 for line in lines if _BULLET.match(line)) / n_lines,
        sum(1 for line in lines if _NUMBERED.match(line)) / n_lines,
        sum(1 for line in lines if _HEADING.match(line)) / n_lines,
        math.log1p(text.count("**") // 2 + text.count("__") // 2),
        math.log1p(text.count("```") // 2),
        text.count(",") * per100,
        text.count("!") * per100,
        text.count("?") * per100,
        text.count(":") * per100,
        text.count(";") * per100,
        (text.count("(") + text.count(")")) * per100,
        (text.count('"') + text.count("\u201c") + text.count("\u201d")) * per100,
        (text.count(" - ") + text.count("\u2014") + text.count("\u2013")) * per100,
        (sum(1 for c in letters if c.isupper()) / len(letters)) if letters else 0.0,
        sum(1 for c in text if c.isdigit()) * per100,
        (len({w.lower() for w in words[:500]}) / min(n_words, 500)) if n_words else 0.0,
        # Flesch reading ease / 100 and Flesch-Kincaid grade / 20, clipped.
        max(-1.0, min(1.5, (206.835 - 1.015 * wps - 84.6 * spw) / 100.0)) if n_words else 0.0,
        max(-0.5, min(2.0, (0.39 * wps + 11.8 * spw - 15.59) / 20.0)) if n_words else 0.0,
    ]


class StyleEncoder:
    """Stylometric feature vectors (see :func:`style_features`); no model, no download."""

    name = "gcai-style-v1"
    standardise = True
    normalised = False

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, len(STYLE_FEATURES)), np.float32)
        return np.asarray([style_features(t) for t in texts], dtype=np.float32)


# --------------------------------------------------------------------------- sentiment

SENTIMENT_FEATURES: tuple[str, ...] = (
    "compound_mean",
    "compound_min",
    "compound_max",
    "positive_sentences",
    "negative_sentences",
    "positive_words",
    "negative_words",
    "mean_valence",
)
_SENTENCES = re.compile(r"(?<=[.!?])\s+|\n+")
_LOWER_WORD = re.compile(r"[a-z']+")
_VADER: Any = None
_VADER_LOCK = threading.Lock()


def _vader() -> Any:
    global _VADER
    with _VADER_LOCK:
        if _VADER is None:
            try:
                from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer
            except ImportError as exc:  # pragma: no cover - a declared dependency
                raise ImportError("the sentiment encoder needs vaderSentiment") from exc
            _VADER = SentimentIntensityAnalyzer()
        return _VADER


class SentimentEncoder:
    """Lexicon-based sentiment features from VADER (Hutto & Gilbert, 2014).

    VADER is built for sentences and slows down sharply on long texts, so it scores at
    most ``max_sentences`` sentences (evenly spread over the text) and the whole text
    is summarised with its word lexicon: shares of positive and negative words and
    their mean valence.
    """

    name = "gcai-sentiment-vader-v1"
    standardise = True
    normalised = False

    def __init__(self, max_sentences: int = 8) -> None:
        self.max_sentences = max_sentences

    def features(self, text: str) -> list[float]:
        vader = _vader()
        sentences = [s for s in _SENTENCES.split(text) if any(c.isalpha() for c in s)]
        if len(sentences) > self.max_sentences:
            step = len(sentences) / self.max_sentences
            sentences = [sentences[int(i * step)] for i in range(self.max_sentences)]
        compounds = [vader.polarity_scores(s[:400])["compound"] for s in sentences] or [0.0]
        valences = [vader.lexicon.get(w, 0.0) for w in _LOWER_WORD.findall(text.lower())]
        n = max(1, len(valences))
        scored = [v for v in valences if v]
        return [
            float(np.mean(compounds)),
            min(compounds),
            max(compounds),
            sum(1 for c in compounds if c >= 0.05) / len(compounds),
            sum(1 for c in compounds if c <= -0.05) / len(compounds),
            10.0 * sum(1 for v in valences if v > 0) / n,
            10.0 * sum(1 for v in valences if v < 0) / n,
            (sum(scored) / len(scored) / 4.0) if scored else 0.0,
        ]

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, len(SENTIMENT_FEATURES)), np.float32)
        return np.asarray([self.features(t) for t in texts], dtype=np.float32)


# --------------------------------------------------------------------------- named models

_NAMED: dict[tuple[str, int], Any] = {}
_NAMED_LOCK = threading.Lock()


class NamedSentenceTransformer:
    """Any sentence-transformers model by name or directory, loaded offline on first use.

    The model must already be on this machine (a directory, or the Hugging Face cache
    filled beforehand, e.g. with ``huggingface-cli download``): nothing is downloaded.
    """

    standardise = False

    def __init__(self, model: str, *, batch_size: int = 32, device: str = "cpu") -> None:
        self.model = model
        self.name = model
        self.batch_size = batch_size
        self.device = device

    def _load(self) -> Any:
        key = (self.model, os.getpid())
        with _NAMED_LOCK:
            if key not in _NAMED:
                os.environ["HF_HUB_OFFLINE"] = "1"
                os.environ["TRANSFORMERS_OFFLINE"] = "1"
                from sentence_transformers import SentenceTransformer

                ref = str(Path(self.model).expanduser()) if self.model[0] in "/~." else self.model
                try:
                    _NAMED[key] = SentenceTransformer(
                        ref, device=self.device, local_files_only=True
                    )
                except Exception as exc:
                    raise ValueError(
                        f"encoders: sentence-transformers model {self.model!r} is not available "
                        f"on this machine ({type(exc).__name__}); download it into the Hugging "
                        f"Face cache first or name a local directory"
                    ) from exc
            return _NAMED[key]

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        model = self._load()
        if not texts:
            return np.zeros((0, 0), np.float32)
        vectors = model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return normalise(vectors)


def describe(encoders: Mapping[str, Encoder]) -> dict[str, str]:
    """Encoder name in the config -> the model or feature set behind it (for run records)."""
    return {name: getattr(enc, "name", name) for name, enc in encoders.items()}
