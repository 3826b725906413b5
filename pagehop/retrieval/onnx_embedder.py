"""A sentence-transformers model as an int8 ONNX graph run by onnxruntime: the CPU's fast text embedder.

The ONNX file is made here, from the local model's own weights (never downloaded): the model is exported by
``torch.onnx``, BERT's attention, layer norms and GELU are fused by onnxruntime's transformer optimizer, and
every MatMul is quantized to int8 per output channel (dynamic quantization: activations are scaled on the
fly). Per-channel scales keep MiniLM's vectors within ~0.99 cosine of the float ones; ``reduce_range`` (7-bit
weights) keeps the int8 products from saturating on CPUs without VNNI, so one file behaves the same on every
x86 machine. It is built once per model and library versions under the user's cache directory and replaced
atomically, so concurrent first runs never read a half-written file.

Each text runs alone (batch of one, no padding): dynamic quantization scales a MatMul's input by its own
range, so in a padded batch a vector would depend on its neighbours; alone, a text gets the same vector in
ingest and in a query, whatever else is embedded with it. Batching buys little here anyway: a lone MiniLM
pass has no padding to waste and onnxruntime's per-call overhead is tens of microseconds. The texts of one
call are spread over as many worker threads as torch's intra-op setting allows (onnxruntime releases the
GIL), each running the one-threaded session, so ``_one_thread`` in the text index governs both backends.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import onnxruntime

EXPORT_FORMAT = 1  # bump when the export recipe changes: the cache key includes it
MODEL_FILE = "model.int8.onnx"


def cache_root() -> Path:
    """Where derived model files live: ``$PAGEHOP_CACHE_DIR``, else ``$XDG_CACHE_HOME/pagehop`` (~/.cache)."""
    explicit = os.environ.get("PAGEHOP_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser() / "pagehop"


def _st_layout(model_dir: Path) -> tuple[str, bool, int]:
    """(pooling, normalize, max_seq_length) of a sentence-transformers folder; refuses layouts not supported."""
    modules_file = model_dir / "modules.json"
    if not modules_file.is_file():
        raise ValueError(f"{model_dir} is not a sentence-transformers folder (no modules.json)")
    kinds = [m["type"].rsplit(".", 1)[-1] for m in json.loads(modules_file.read_text(encoding="utf-8"))]
    if kinds[:2] != ["Transformer", "Pooling"] or kinds[2:] not in ([], ["Normalize"]):
        raise ValueError(f"{model_dir}: int8 ONNX supports Transformer → Pooling [→ Normalize] models, not {kinds}")
    pooling_cfg = json.loads((model_dir / "1_Pooling" / "config.json").read_text(encoding="utf-8"))
    modes = [key for key, on in pooling_cfg.items() if key.startswith("pooling_mode_") and on is True]
    if modes not in (["pooling_mode_mean_tokens"], ["pooling_mode_cls_token"]):
        raise ValueError(f"{model_dir}: int8 ONNX supports mean or CLS pooling, not {modes}")
    config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    limit = int(config.get("max_position_embeddings", 512))
    st_config = model_dir / "sentence_bert_config.json"
    if st_config.is_file():
        limit = min(limit, int(json.loads(st_config.read_text(encoding="utf-8")).get("max_seq_length") or limit))
    return ("mean" if modes == ["pooling_mode_mean_tokens"] else "cls"), kinds[2:] == ["Normalize"], limit


def cached_model_path(model_id: str, model_dir: Path) -> Path:
    """The int8 ONNX file for ``model_id`` (at ``model_dir``) under the cache, keyed by the model's weights
    files and by the versions of everything that shapes the export."""
    import onnx
    import onnxruntime
    import torch
    import transformers

    weights = sorted(p for p in model_dir.iterdir() if p.suffix in (".safetensors", ".bin", ".json"))
    key = json.dumps(
        {
            "model": model_id,
            "files": [[p.name, p.stat().st_size, p.stat().st_mtime_ns] for p in weights],
            "versions": [torch.__version__, transformers.__version__, onnx.__version__, onnxruntime.__version__],
            "format": EXPORT_FORMAT,
        },
        sort_keys=True,
    )
    safe_name = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in model_id)[-60:]
    return cache_root() / "onnx" / f"{safe_name}-{hashlib.sha256(key.encode()).hexdigest()[:16]}" / MODEL_FILE


def export_int8(model_dir: Path, target: Path) -> None:
    """Export, fuse and quantize the model at ``model_dir``; ``target`` appears complete or not at all."""
    import onnx
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from transformers import AutoConfig, AutoModel

    config = AutoConfig.from_pretrained(model_dir)
    # Eager attention traces to plain MatMul/Softmax, the pattern onnxruntime's attention fusion knows.
    model = AutoModel.from_pretrained(model_dir, attn_implementation="eager").eval()
    names = ["input_ids", "attention_mask", "token_type_ids"]

    class LastHiddenState(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            out = self.model(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
            return out.last_hidden_state

    example = tuple(torch.ones((2, 16), dtype=torch.long) for _ in names)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".build-") as work_dir:
        work = Path(work_dir)
        import warnings

        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer notes about Python booleans in the masking code
            torch.onnx.export(
                LastHiddenState(),
                example,
                str(work / "float.onnx"),
                input_names=names,
                output_names=["last_hidden_state"],
                dynamic_axes={name: {0: "batch", 1: "tokens"} for name in [*names, "last_hidden_state"]},
                opset_version=17,
                dynamo=False,
            )
        to_quantize = work / "float.onnx"
        if config.model_type == "bert":
            from onnxruntime.transformers.optimizer import optimize_model

            fused = optimize_model(
                str(to_quantize),
                model_type="bert",
                num_heads=config.num_attention_heads,
                hidden_size=config.hidden_size,
            )
            to_quantize = work / "fused.onnx"
            fused.save_model_to_file(str(to_quantize))
        quantize_dynamic(
            to_quantize,
            work / MODEL_FILE,
            weight_type=QuantType.QInt8,
            per_channel=True,
            reduce_range=True,
            # The fused contrib ops have no shape-inference types; their outputs are float tensors.
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )
        os.replace(work / MODEL_FILE, target)


class OnnxSentenceEmbedder:
    """The ``encode`` / ``get_embedding_dimension`` surface of a sentence-transformers model, int8 on ONNX."""

    def __init__(self, model_dir: Path, onnx_path: Path) -> None:
        import onnxruntime
        from transformers import AutoTokenizer

        self.pooling, self.normalize, self.max_seq_length = _st_layout(model_dir)
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir).backend_tokenizer
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(self.max_seq_length)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1  # parallelism comes from running texts side by side (see module doc)
        options.inter_op_num_threads = 1
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session: onnxruntime.InferenceSession = onnxruntime.InferenceSession(
            str(onnx_path), options, providers=["CPUExecutionProvider"]
        )
        self.dim = int(self.session.get_outputs()[0].shape[-1])
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()

    def get_embedding_dimension(self) -> int:
        return self.dim

    def encode(self, sentences: Sequence[str], **options: object) -> np.ndarray:
        """float32 rows in input order. Of sentence-transformers' options only ``normalize_embeddings`` means
        anything here (texts run one at a time, so ``batch_size`` is moot)."""
        encodings = self.tokenizer.encode_batch([str(s).strip() for s in sentences])
        vectors = np.zeros((len(encodings), self.dim), dtype=np.float32)
        if not encodings:
            return vectors
        import torch

        workers = max(1, min(torch.get_num_threads(), len(encodings)))
        # Longest first, dealt round-robin: each worker gets a similar share of tokens.
        order = sorted(range(len(encodings)), key=lambda i: -len(encodings[i].ids))
        shares = [order[w::workers] for w in range(workers)]

        def run(share: list[int]) -> None:
            for i in share:
                vectors[i] = self._embed_one(encodings[i])

        if workers == 1:
            run(order)
        else:
            list(self._executor().map(run, shares))
        if options.get("normalize_embeddings") or self.normalize:
            vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        return vectors

    def _embed_one(self, encoding: Any) -> np.ndarray:
        feeds = {
            "input_ids": np.asarray([encoding.ids], dtype=np.int64),
            "attention_mask": np.asarray([encoding.attention_mask], dtype=np.int64),
            "token_type_ids": np.asarray([encoding.type_ids], dtype=np.int64),
        }
        hidden = self.session.run(["last_hidden_state"], feeds)[0][0]
        return hidden[0] if self.pooling == "cls" else hidden.mean(axis=0)

    def _executor(self) -> ThreadPoolExecutor:
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=os.cpu_count() or 2, thread_name_prefix="onnx-embed")
            return self._pool


def load_onnx_int8_embedder(model_id: str, model_dir: Path) -> OnnxSentenceEmbedder:
    """The int8 ONNX embedder of ``model_id``, exporting it into the cache on first use."""
    path = cached_model_path(model_id, model_dir)
    if not path.is_file():
        export_int8(model_dir, path)
    return OnnxSentenceEmbedder(model_dir, path)
