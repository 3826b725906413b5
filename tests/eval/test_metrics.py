"""Every metric against values worked out by hand (the arithmetic is in the comments)."""

from __future__ import annotations

import math

import pytest

from pagehop.eval import metrics
from pagehop.eval.records import Cost, Gold, PredictionRecord, aggregate, score_record


def test_normalization_follows_squad() -> None:
    # lowercase, punctuation removed (the hyphen joins the words), article dropped, spaces squeezed
    assert metrics.normalize_answer("The  Eiffel-Tower!") == "eiffeltower"
    assert metrics.normalize_answer("An apple, a pear") == "apple pear"


def test_exact_match_and_subem() -> None:
    assert metrics.exact_match("the Phoolwari.", ["Phoolwari"]) == 1.0
    assert metrics.exact_match("He was born in Oxford, England", ["Oxford"]) == 0.0
    assert metrics.substring_match("He was born in Oxford, England", ["Oxford"]) == 1.0
    assert metrics.substring_match("Cambridge", ["Oxford", "Oxford, England"]) == 0.0
    # an alias counts
    assert metrics.exact_match("Stanley Hall", ["G. Stanley Hall", "Stanley Hall"]) == 1.0


def test_f1_is_token_overlap_max_over_aliases() -> None:
    # "stanley hall of boston" vs "g stanley hall": overlap 2, P=2/4, R=2/3 -> F1 = 4/7
    assert metrics.f1_score("Stanley Hall of Boston", ["G. Stanley Hall"]) == pytest.approx(4 / 7)
    # the alias "stanley hall": P=2/4, R=2/2 -> F1 = 2/3, which beats 4/7
    assert metrics.f1_score("Stanley Hall of Boston", ["G. Stanley Hall", "Stanley Hall"]) == pytest.approx(2 / 3)
    # "he was born in oxford england" vs "oxford": P=1/6, R=1 -> F1 = 2/7
    assert metrics.f1_score("He was born in Oxford, England", ["Oxford"]) == pytest.approx(2 / 7)
    assert metrics.f1_score("Paris", ["Oxford"]) == 0.0


def test_f1_yes_no_is_all_or_nothing() -> None:
    assert metrics.f1_score("yes it is", ["yes"]) == 0.0
    assert metrics.f1_score("Yes.", ["yes"]) == 1.0
    assert metrics.f1_score("no", ["no"]) == 1.0


@pytest.mark.parametrize(
    ("prediction", "answer", "answer_format", "correct"),
    [
        ("18.3%", "18.29%", "Float", 1.0),  # |18.3 - 18.29| / 18.29 = 0.05 % < 1 %
        ("0.1829", "18.29%", "Float", 1.0),  # a fraction for a percentage
        ("about 20%", "18.29%", "Float", 0.0),  # 9 % off
        ("There are 7 figures", "7", "Int", 1.0),
        ("7.5", "7", "Int", 0.0),
        ("4,087 points", "4087", "Int", 1.0),
        ("Not answerable", "Not answerable", "None", 1.0),
        ("", "Not answerable", "None", 1.0),
        ("unanswerable.", "Not answerable", "None", 1.0),
        ("42", "Not answerable", "None", 0.0),
        ("Not answerable", "7", "Int", 0.0),
        ("Circle and Rectangle", "['Circle', 'Rectangle']", "List", 1.0),
        ("Circle", "['Circle', 'Rectangle']", "List", 0.0),
        ("1,500 and 8,000", "[1500, 8000]", "List", 1.0),
        ("1,500 and 9,000", "[1500, 8000]", "List", 0.0),
        ("Berlin School of Experimental Psychology", "Berlin School of Experimental Psychology", "Str", 1.0),
        ("Berlin Schol of Experimental Psychology", "Berlin School of Experimental Psychology", "Str", 1.0),
        ("Asia", "Europe", "Str", 0.0),
    ],
)
def test_mmlongbench_rules(prediction: str, answer: str, answer_format: str, correct: float) -> None:
    assert metrics.mmlongbench_correct(prediction, answer, answer_format) == correct


def test_anls() -> None:
    # "kitten" -> "sitting": 3 edits over 7 characters
    assert metrics.anls("kitten", "sitting") == pytest.approx(1 - 3 / 7)
    assert metrics.anls("", "") == 1.0


def test_passage_recall_counts_distinct_items() -> None:
    ranked = ["A", "B", "C", "A", "D", "E"]  # distinct: A B C D E
    gold = ["C", "E"]
    assert metrics.recall_at_k(ranked, gold, 2) == 0.0
    assert metrics.recall_at_k(ranked, gold, 3) == 0.5
    assert metrics.recall_at_k(ranked, gold, 5) == 1.0
    assert metrics.all_recall_at_k(ranked, gold, 3) == 0.0
    assert metrics.all_recall_at_k(ranked, gold, 5) == 1.0
    with pytest.raises(ValueError):
        metrics.recall_at_k(ranked, [], 5)


def test_ndcg_binary_relevance() -> None:
    ranked = [("d", 1), ("d", 3), ("d", 2)]
    gold = [("d", 2), ("d", 3)]
    # DCG = 1/log2(3) + 1/log2(4) = 0.63093 + 0.5; ideal = 1 + 0.63093
    expected = (1 / math.log2(3) + 0.5) / (1 + 1 / math.log2(3))
    assert metrics.ndcg_at_k(ranked, gold, 5) == pytest.approx(expected)
    assert expected == pytest.approx(0.69342, abs=1e-5)
    assert metrics.ndcg_at_k([("d", 2), ("d", 3)], gold, 5) == pytest.approx(1.0)


def test_percentiles() -> None:
    assert metrics.percentile([1, 2, 3, 4, 10], 50) == 3.0
    # rank 0.95 * 4 = 3.8 -> 4 + 0.8 * (10 - 4) = 8.8
    assert metrics.percentile([1, 2, 3, 4, 10], 95) == pytest.approx(8.8)
    assert math.isnan(metrics.percentile([], 50))


def _record(qid: str, prediction: str, gold: Gold, **kwargs: object) -> PredictionRecord:
    return PredictionRecord(id=qid, question=f"question {qid}", prediction=prediction, gold=gold, **kwargs)


def test_aggregate_on_a_crafted_set() -> None:
    records = [
        # EM 1, F1 1, SubEM 1; passages ranked [P1, X, P2]: R@2 = 1/2, R@5 = 1, all@5 = 1
        _record(
            "q1",
            "Phoolwari",
            Gold(answers=["Phoolwari"], passages=["P1", "P2"]),
            ranked_passages=["P1", "X", "P2"],
            cost=Cost(llm_calls=4, tokens=1000, stage_seconds={"decompose": 1.0, "draft": 2.0}),
            latency_s=2.0,
        ),
        # EM 0, F1 2/7, SubEM 1; nothing retrieved: R@2 = R@5 = 0
        _record(
            "q2",
            "He was born in Oxford, England",
            Gold(answers=["Oxford"], passages=["P3"]),
            cost=Cost(llm_calls=2, tokens=500, stage_seconds={"decompose": 3.0}),
            latency_s=4.0,
        ),
        # MMLongBench-style, no passages: EM 0, F1 0 ("01829" vs "1829" once normalised), but SubEM 1
        # ("1829" occurs inside "01829": SubEM's known leniency), accuracy 1
        # (a fraction for a percentage); pages [(r,5),(r,3)] vs gold {(r,3)}: recall@1 0, recall@5 1,
        # nDCG@5 = (1/log2 3) / 1
        _record(
            "q3",
            "0.1829",
            Gold(answers=["18.29%"], pages=[("r.pdf", 3)], answer_format="Float"),
            ranked_pages=[("r.pdf", 5), ("r.pdf", 3)],
            latency_s=9.0,
        ),
        # an error: counts as wrong everywhere, latency left out
        _record("q4", "", Gold(answers=["x"], passages=["P9"]), latency_s=0.5, error="RuntimeError: boom"),
    ]
    result = aggregate(records)
    assert result["n"] == 4
    assert result["n_errors"] == 1
    assert result["qa.em"] == pytest.approx(1 / 4)
    assert result["qa.f1"] == pytest.approx((1 + 2 / 7 + 0 + 0) / 4)
    assert result["qa.subem"] == pytest.approx(3 / 4)
    # accuracy (Str rule for q1, q2, q4: SubEM or ANLS >= 0.5): 1, 1, 1 (q3), 0 (empty is not "x")
    assert result["qa.acc"] == pytest.approx(3 / 4)
    assert result["qa.acc.Float"] == 1.0
    assert result["qa.acc.Str"] == pytest.approx(2 / 3)
    assert result["n_with_gold_passages"] == 3
    assert result["retrieval.recall@2"] == pytest.approx((0.5 + 0 + 0) / 3)
    assert result["retrieval.recall@5"] == pytest.approx((1 + 0 + 0) / 3)
    assert result["retrieval.all_recall@5"] == pytest.approx(1 / 3)
    assert result["retrieval.all_recall@2"] == 0.0
    assert result["n_with_gold_pages"] == 1
    assert result["pages.recall@1"] == 0.0
    assert result["pages.recall@5"] == 1.0
    assert result["pages.ndcg@5"] == pytest.approx(1 / math.log2(3))
    assert result["cost.llm_calls_mean"] == pytest.approx(6 / 4)
    assert result["cost.tokens_mean"] == pytest.approx(1500 / 4)
    assert result["cost.stage_seconds_mean.decompose"] == pytest.approx(4 / 4)
    assert result["cost.stage_seconds_mean.draft"] == pytest.approx(2 / 4)
    # latencies of the answered questions: 2, 4, 9 -> p50 4, p95 = 4 + 0.9 * 5 = 8.5
    assert result["latency.p50_s"] == pytest.approx(4.0)
    assert result["latency.p95_s"] == pytest.approx(8.5)


def test_score_record_skips_retrieval_without_gold() -> None:
    scores = score_record(_record("q", "a", Gold(answers=["a"])))
    assert "retrieval.recall@5" not in scores
    assert "pages.recall@5" not in scores
    assert scores["qa.em"] == 1.0
