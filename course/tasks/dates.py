"""Multilingual date normalisation: "dimanche 7 mars 2021" -> "2 0 2 1 - 0 3 - 0 7".

Dates are written by ``babel`` (the CLDR month and day names of eight locales, in its medium, long
and full formats) and normalised to ISO 8601, one character a token. Numbers are split into digit
tokens so most alignments are one-to-one; a weekday aligns to nothing, a month name to both
month digits (many-to-one).
"""

from __future__ import annotations

import datetime as dt
import random
import re

from babel.dates import format_date

LOCALES = ("en_US", "en_GB", "fr_FR", "de_DE", "es_ES", "it_IT", "pt_BR", "nl_NL")
FORMATS = ("medium", "long", "full")  # "short" is left out: 3/7/21 is ambiguous between locales
FIRST, LAST = dt.date(1950, 1, 1), dt.date(2049, 12, 31)

WORD = re.compile(r"\d|[^\W\d_]+\.?|[^\w\s]", re.UNICODE)


def split_date_text(text: str) -> list[str]:
    """Lower-case and split into digits, words (with a trailing abbreviation dot) and punctuation."""
    return WORD.findall(text.lower())


def field_spans(date: dt.date, src: list[str], text: str, locale: str, fmt: str) -> dict[str, list[int]]:
    """Which source tokens spell the year, month and day: found by re-rendering with markers."""
    spans: dict[str, list[int]] = {"year": [], "month": [], "day": []}
    # Render the same pattern with each field replaced by a marker; tokens that change belong to it.
    from babel.dates import get_date_format

    pattern = get_date_format(fmt, locale=locale).pattern
    pieces = re.findall(r"('[^']*'|y+|M+|L+|d+|E+|[^yMLdE']+)", pattern)
    position = 0
    for piece in pieces:
        if piece[0] in "yMLdE" and piece[0] != "'":
            rendered = format_date(date, piece, locale=locale)
        else:
            rendered = format_date(date, piece, locale=locale) if piece.startswith("'") else piece
        tokens = split_date_text(rendered)
        field = {"y": "year", "M": "month", "L": "month", "d": "day"}.get(piece[0])
        if field is not None:
            spans[field].extend(range(position, position + len(tokens)))
        position += len(tokens)
    if position != len(src):
        raise AssertionError(f"field spans do not cover {text!r} ({locale}, {fmt})")
    return spans


def align_field(src_idx: list[int], tgt_idx: list[int], src: list[str], tgt: list[str]) -> list[list[int]]:
    """Digits that match one-to-one when the counts agree; otherwise every pair in the field."""
    if len(src_idx) == len(tgt_idx) and all(src[i].isdigit() for i in src_idx):
        return [[i, j] for i, j in zip(src_idx, tgt_idx)]
    if len(src_idx) < len(tgt_idx) and all(src[i].isdigit() for i in src_idx):
        # "7" -> "0 7": the written digits align right-to-left, the padding zero to the whole field
        pairs = [[i, j] for i, j in zip(src_idx, tgt_idx[-len(src_idx):])]
        pairs += [[i, j] for j in tgt_idx[: len(tgt_idx) - len(src_idx)] for i in src_idx]
        return sorted(pairs, key=lambda p: (p[1], p[0]))
    return [[i, j] for j in tgt_idx for i in src_idx]


def make_example(date: dt.date, locale: str, fmt: str) -> dict:
    text = format_date(date, fmt, locale=locale)
    src = split_date_text(text)
    tgt = list(date.isoformat())
    spans = field_spans(date, src, text, locale, fmt)
    targets = {"year": list(range(0, 4)), "month": [5, 6], "day": [8, 9]}
    alignment: list[list[int]] = []
    for name in ("year", "month", "day"):
        alignment += align_field(spans[name], targets[name], src, tgt)
    alignment.sort(key=lambda p: (p[1], p[0]))
    return {"src": src, "tgt": tgt, "alignment": alignment, "locale": locale, "format": fmt}


def generate(n: int, seed: int) -> list[dict]:
    """``n`` examples with dates, locales and formats drawn uniformly by a seeded generator."""
    rng = random.Random(seed)
    span = (LAST - FIRST).days
    return [make_example(FIRST + dt.timedelta(days=rng.randint(0, span)), rng.choice(LOCALES),
                         rng.choice(FORMATS)) for _ in range(n)]
