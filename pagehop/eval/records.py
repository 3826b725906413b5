"""One line of ``predictions.jsonl``, and the scores each line earns.

Every line carries its own gold labels, so scoring and reports need only the output folder.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from pagehop.eval import metrics
from pagehop.eval.datasets import QAExample

RECALL_KS = (2, 5)


class CitedEvidence(BaseModel):
    doc_id: str
    page: int | None = None
    title: str = ""
    text: str = Field("", description="the first characters of the cited text")


class Cost(BaseModel):
    llm_calls: int = 0
    tokens: int = 0
    stage_seconds: dict[str, float] = Field(default_factory=dict)


class Gold(BaseModel):
    answers: list[str]
    passages: list[str] = Field(default_factory=list)
    pages: list[tuple[str, int]] = Field(default_factory=list, description="(document file name, 1-based page)")
    answer_format: str = "Str"

    @classmethod
    def of(cls, example: QAExample) -> Gold:
        return cls(
            answers=example.answers,
            passages=example.gold_passages,
            pages=[(page.doc, page.page) for page in example.gold_pages],
            answer_format=example.answer_format,
        )


class PredictionRecord(BaseModel):
    id: str
    question: str
    prediction: str
    gold: Gold
    question_type: str = "unknown"
    hops: int | None = None
    citations: list[CitedEvidence] = Field(default_factory=list)
    ranked_passages: list[str] = Field(
        default_factory=list, description="benchmark titles of the cited/retrieved passages, best first"
    )
    ranked_pages: list[tuple[str, int]] = Field(
        default_factory=list, description="(document file name, page) of the cited/retrieved pages, best first"
    )
    graph_paths: list[str] = Field(default_factory=list)
    trace: list[str] = Field(default_factory=list, description="one short line per agent step")
    answered_by: str = ""
    cost: Cost = Field(default_factory=Cost)
    latency_s: float = 0.0
    error: str | None = Field(None, description="why the system raised; a re-run retries these")


def score_record(record: PredictionRecord) -> dict[str, float]:
    """Every per-question score the record supports, keyed as in ``metrics.json``.

    Retrieval scores only where the question has gold passages, page scores only where it has gold pages.
    """
    gold, prediction = record.gold, record.prediction
    scores = {
        "qa.em": metrics.exact_match(prediction, gold.answers),
        "qa.f1": metrics.f1_score(prediction, gold.answers),
        "qa.subem": metrics.substring_match(prediction, gold.answers),
    }
    accuracy = metrics.mmlongbench_correct(prediction, gold.answers[0], gold.answer_format)
    scores["qa.acc"] = accuracy
    scores[f"qa.acc.{gold.answer_format}"] = accuracy
    if gold.passages:
        for k in RECALL_KS:
            scores[f"retrieval.recall@{k}"] = metrics.recall_at_k(record.ranked_passages, gold.passages, k)
            scores[f"retrieval.all_recall@{k}"] = metrics.all_recall_at_k(record.ranked_passages, gold.passages, k)
    if gold.pages:
        ranked = [tuple(page) for page in record.ranked_pages]
        golds = [tuple(page) for page in gold.pages]
        scores["pages.recall@1"] = metrics.recall_at_k(ranked, golds, 1)
        scores["pages.recall@5"] = metrics.recall_at_k(ranked, golds, 5)
        scores["pages.ndcg@5"] = metrics.ndcg_at_k(ranked, golds, 5)
    return scores


def aggregate(records: list[PredictionRecord]) -> dict[str, Any]:
    """``metrics.json``: means of the per-question scores (each over the questions that have it), cost and
    latency. Errored questions count as wrong answers and empty retrievals."""
    per_question = [score_record(record) for record in records]
    keys = sorted({key for scores in per_question for key in scores})
    result: dict[str, Any] = {"n": len(records), "n_errors": sum(r.error is not None for r in records)}
    for key in keys:
        values = [scores[key] for scores in per_question if key in scores]
        result[key] = metrics.mean(values)
        if key == "retrieval.recall@2":
            result["n_with_gold_passages"] = len(values)
        if key == "pages.recall@5":
            result["n_with_gold_pages"] = len(values)
    result.update(_cost_and_latency(records))
    return result


def _cost_and_latency(records: list[PredictionRecord]) -> dict[str, float]:
    latencies = [r.latency_s for r in records if r.error is None]
    result = {
        "cost.llm_calls_mean": metrics.mean([r.cost.llm_calls for r in records]),
        "cost.tokens_mean": metrics.mean([r.cost.tokens for r in records]),
        "cost.llm_calls_total": float(sum(r.cost.llm_calls for r in records)),
        "cost.tokens_total": float(sum(r.cost.tokens for r in records)),
        "latency.mean_s": metrics.mean(latencies),
        "latency.p50_s": metrics.percentile(latencies, 50),
        "latency.p95_s": metrics.percentile(latencies, 95),
    }
    stages = sorted({stage for r in records for stage in r.cost.stage_seconds})
    for stage in stages:
        result[f"cost.stage_seconds_mean.{stage}"] = metrics.mean(
            [r.cost.stage_seconds.get(stage, 0.0) for r in records]
        )
    return result
