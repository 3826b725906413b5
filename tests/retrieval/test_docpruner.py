"""DocPruner's rule on hand-made attention: exact kept indices, the k extremes, the global token."""

from __future__ import annotations

import pytest
import torch

from pagehop.retrieval.docpruner import (
    attention_rows,
    first_token_positions,
    last_token_positions,
    prune_page,
)


def test_keeps_exactly_the_patches_strictly_above_mean_plus_k_std() -> None:
    scores = torch.tensor([0.10, 0.40, 0.05, 0.30, 0.15])  # mean 0.2, population std 0.1225
    result = prune_page(scores, k=0.0)
    assert result.keep.tolist() == [1, 3]
    assert result.mean == pytest.approx(0.2)
    assert result.std == pytest.approx(float(scores.std(correction=0)))
    assert result.threshold == pytest.approx(0.2)
    assert result.stats() == {
        "num_patches": 5.0,
        "kept": 2.0,
        "threshold": pytest.approx(0.2),
        "mean": pytest.approx(0.2),
        "std": pytest.approx(result.std),
    }
    # k = -0.25: threshold 0.2 - 0.0306 = 0.169, so 0.15 and below still go.
    assert prune_page(scores, k=-0.25).keep.tolist() == [1, 3]
    # k = -1: threshold 0.0775 keeps 0.10 and 0.15 too.
    assert prune_page(scores, k=-1.0).keep.tolist() == [0, 1, 3, 4]


def test_large_k_keeps_only_the_best_patch_and_very_negative_k_keeps_all() -> None:
    scores = torch.tensor([0.2, 0.9, 0.1, 0.5])
    assert prune_page(scores, k=50.0).keep.tolist() == [1]
    assert prune_page(scores, k=-50.0).keep.tolist() == [0, 1, 2, 3]


def test_a_flat_or_single_patch_page_keeps_its_best_patch() -> None:
    # Equal scores: nothing is strictly above the mean, yet a page never goes empty.
    assert prune_page(torch.full((6,), 0.25), k=-0.25).kept == 1
    assert prune_page(torch.tensor([0.7]), k=0.0).keep.tolist() == [0]


def test_bad_scores_are_rejected() -> None:
    with pytest.raises(ValueError):
        prune_page(torch.zeros(0), k=0.0)
    with pytest.raises(ValueError):
        prune_page(torch.zeros(2, 2), k=0.0)
    with pytest.raises(ValueError):
        prune_page(torch.tensor([0.1, float("nan")]), k=0.0)


def test_global_token_positions_follow_left_padding_per_row() -> None:
    mask = torch.tensor(
        [
            [1, 1, 1, 1, 1],  # no padding
            [0, 0, 1, 1, 1],  # two pads on the left
            [0, 0, 0, 0, 1],  # a single real token
        ]
    )
    assert first_token_positions(mask).tolist() == [0, 2, 4]
    assert last_token_positions(mask).tolist() == [4, 4, 4]
    right_padded = torch.tensor([[1, 1, 1, 0, 0]])
    assert last_token_positions(right_padded).tolist() == [2]
    with pytest.raises(ValueError):
        first_token_positions(torch.tensor([[0, 0, 0]]))


def test_attention_rows_equal_the_global_row_of_the_full_masked_softmax() -> None:
    torch.manual_seed(0)
    batch, heads, seq, dim = 2, 3, 6, 4
    queries, keys = torch.randn(batch, heads, seq, dim), torch.randn(batch, heads, seq, dim)
    key_mask = torch.tensor([[1, 1, 1, 1, 1, 1], [0, 0, 1, 1, 1, 1]])  # row 1 padded on the left
    scaling = dim**-0.5
    logits = queries @ keys.transpose(-1, -2) * scaling + torch.where(key_mask.bool(), 0.0, -1e9)[:, None, None, :]
    full = logits.softmax(dim=-1)  # what eager attention returns: (batch, heads, seq, seq)
    positions = torch.tensor([0, 2])
    rows = attention_rows(queries[torch.arange(batch), :, positions], keys, key_mask, scaling)
    assert rows.shape == (batch, seq)
    torch.testing.assert_close(rows[0], full[0, :, 0, :].mean(dim=0))
    torch.testing.assert_close(rows[1], full[1, :, 2, :].mean(dim=0))
    assert rows[1, :2].abs().max() == 0  # padding gets no attention
    with pytest.raises(ValueError):
        attention_rows(queries, keys, key_mask, scaling)  # a full query matrix is not one row
