"""Answer, retrieval, page and cost metrics, each a small pure function over one question.

Answer metrics use the SQuAD/HotpotQA normalisation (lowercase, drop punctuation, drop the articles
a/an/the, squeeze whitespace) and take the best score over the gold answer and its aliases.
MMLongBench-Doc answers are scored by format with simple rules (no LLM extraction step), so its
accuracy is comparable between our runs, not to the paper's GPT-4o-judged numbers.
"""

from __future__ import annotations

import ast
import math
import re
import string
from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np

NOT_ANSWERABLE_PREDICTIONS = frozenset(
    {"", "not answerable", "unanswerable", "cannot be answered", "no answer", "none", "unknown", "i dont know"}
)
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_NUMBER = re.compile(r"-?\d[\d,]*\.?\d*|-?\.\d+")
_PUNCTUATION = frozenset(string.punctuation)


# ---------------------------------------------------------------- answers


def normalize_answer(text: str) -> str:
    """SQuAD's normalisation: lowercase, no punctuation, no articles, single spaces."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def exact_match(prediction: str, answers: Sequence[str]) -> float:
    normalized = normalize_answer(prediction)
    return float(any(normalized == normalize_answer(answer) for answer in answers))


def substring_match(prediction: str, answers: Sequence[str]) -> float:
    """SubEM: some normalised gold answer occurs inside the normalised prediction."""
    normalized = normalize_answer(prediction)
    return float(any(normalize_answer(answer) in normalized for answer in answers if normalize_answer(answer)))


def f1_score(prediction: str, answers: Sequence[str]) -> float:
    return max((_token_f1(prediction, answer) for answer in answers), default=0.0)


def _token_f1(prediction: str, answer: str) -> float:
    pred, gold = normalize_answer(prediction), normalize_answer(answer)
    # HotpotQA's rule: a yes/no answer is right or wrong as a whole, never partially.
    if (pred in ("yes", "no") or gold in ("yes", "no")) and pred != gold:
        return 0.0
    pred_tokens, gold_tokens = pred.split(), gold.split()
    common = Counter(pred_tokens) & Counter(gold_tokens)
    overlap = sum(common.values())
    if overlap == 0:
        return 0.0
    precision, recall = overlap / len(pred_tokens), overlap / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


# ---------------------------------------------------------------- MMLongBench-Doc


def mmlongbench_correct(prediction: str, answer: str, answer_format: str) -> float:
    """1.0 when ``prediction`` answers correctly for the answer format (Str, Int, Float, List, None).

    Int: some number in the prediction equals the gold integer. Float: some number is within 1 % of the
    gold (also as a percentage: 0.18 matches 18 %). Str: SubEM, or ANLS >= 0.5 as MMLongBench uses.
    List: every gold item is found in the prediction. "Not answerable" gold: the prediction says so or is
    empty; a "not answerable" prediction for an answerable question is wrong.
    """
    said_unanswerable = normalize_answer(prediction) in NOT_ANSWERABLE_PREDICTIONS
    if answer_format == "None" or normalize_answer(answer) == "not answerable":
        return float(said_unanswerable)
    if said_unanswerable:
        return 0.0
    if answer_format == "Int":
        return float(_number_found(prediction, answer, rel_tol=0.0))
    if answer_format == "Float":
        return float(_number_found(prediction, answer, rel_tol=0.01))
    if answer_format == "List":
        items = _list_items(answer)
        return float(bool(items) and all(_item_found(prediction, item) for item in items))
    return float(_string_correct(prediction, answer))


def _numbers(text: str) -> list[float]:
    values = []
    for match in _NUMBER.findall(text):
        try:
            values.append(float(match.replace(",", "")))
        except ValueError:
            continue
    return values


def _number_found(prediction: str, answer: str, rel_tol: float) -> bool:
    gold = _numbers(answer)
    if not gold:
        return _string_correct(prediction, answer)
    target = gold[0]
    # A percentage may come back as a fraction or the other way round.
    scales = (1.0, 100.0, 0.01) if rel_tol > 0 else (1.0,)
    return any(
        math.isclose(value * scale, target, rel_tol=rel_tol, abs_tol=1e-9)
        for value in _numbers(prediction)
        for scale in scales
    )


def _list_items(answer: str) -> list[str]:
    try:
        parsed = ast.literal_eval(answer)
    except (ValueError, SyntaxError):
        parsed = answer.split(",")
    if not isinstance(parsed, list | tuple):
        parsed = [parsed]
    return [str(item).strip() for item in parsed if str(item).strip()]


def _item_found(prediction: str, item: str) -> bool:
    if _numbers(item) and normalize_answer(item).replace(" ", "").isdigit():
        return _number_found(prediction, item, rel_tol=0.0)
    return substring_match(prediction, [item]) == 1.0


def _string_correct(prediction: str, answer: str) -> bool:
    return substring_match(prediction, [answer]) == 1.0 or anls(prediction, answer) >= 0.5


def anls(prediction: str, answer: str) -> float:
    """Normalised Levenshtein similarity of the normalised strings, 1.0 when equal."""
    a, b = normalize_answer(prediction), normalize_answer(answer)
    if not a and not b:
        return 1.0
    return 1.0 - _levenshtein(a, b) / max(len(a), len(b))


def _levenshtein(a: str, b: str) -> int:
    previous = list(range(len(b) + 1))
    for i, char_a in enumerate(a, start=1):
        current = [i]
        for j, char_b in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (char_a != char_b)))
        previous = current
    return previous[-1]


# ---------------------------------------------------------------- retrieval


def recall_at_k(ranked: Sequence[object], gold: Iterable[object], k: int) -> float:
    """Share of the gold items among the first ``k`` distinct ranked items (HippoRAG's passage recall)."""
    gold_set = set(gold)
    if not gold_set:
        raise ValueError("recall needs at least one gold item")
    top = set(_distinct(ranked)[:k])
    return len(gold_set & top) / len(gold_set)


def all_recall_at_k(ranked: Sequence[object], gold: Iterable[object], k: int) -> float:
    """1.0 when every gold item is among the first ``k`` distinct ranked items."""
    return float(recall_at_k(ranked, gold, k) == 1.0)


def ndcg_at_k(ranked: Sequence[object], gold: Iterable[object], k: int) -> float:
    """Binary-relevance nDCG: each gold item counts once, at its first rank."""
    gold_set = set(gold)
    if not gold_set:
        raise ValueError("nDCG needs at least one gold item")
    top = _distinct(ranked)[:k]
    dcg = sum(1.0 / math.log2(rank + 2) for rank, item in enumerate(top) if item in gold_set)
    ideal = sum(1.0 / math.log2(rank + 2) for rank in range(min(len(gold_set), k)))
    return dcg / ideal


def _distinct(items: Sequence[object]) -> list[object]:
    return list(dict.fromkeys(items))


# ---------------------------------------------------------------- cost and latency


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (numpy's default); NaN for no values."""
    if not values:
        return float("nan")
    return float(np.percentile(np.asarray(values, dtype=float), q))


def mean(values: Sequence[float]) -> float:
    return float(sum(values) / len(values)) if values else float("nan")
