"""A Qwen3-VL processor for images and text only, with no video processor.

`Qwen3VLProcessor(..., video_processor=None)` fails in transformers 5: the parent
`__init__` always forwards a video processor to `ProcessorMixin`, whose class check
looks it up in `VIDEO_PROCESSOR_MAPPING` and breaks on `None`. Pages are images, so
pagehop never needs video; this subclass drops the video slot altogether. Because
`ProcessorMixin` derives its sub-processors from the `__init__` signature, the same
class also loads real checkpoints with `from_pretrained` (image processor + tokenizer
+ chat template) and simply ignores their video processor.
"""

from __future__ import annotations

from typing import Any

from transformers import ProcessorMixin, Qwen3VLProcessor


class Qwen3VLImageOnlyProcessor(Qwen3VLProcessor):
    """`Qwen3VLProcessor` without the video processor; images and text behave the same."""

    def __init__(
        self,
        image_processor: Any = None,
        tokenizer: Any = None,
        chat_template: str | None = None,
        **kwargs: Any,
    ) -> None:
        # Same token resolution as the parent: a tokenizer may name its own multimodal tokens.
        self.image_token = getattr(tokenizer, "image_token", None) or "<|image_pad|>"
        self.video_token = getattr(tokenizer, "video_token", None) or "<|video_pad|>"
        self.vision_start_token = getattr(tokenizer, "vision_start_token", None) or "<|vision_start|>"
        self.vision_end_token = getattr(tokenizer, "vision_end_token", None) or "<|vision_end|>"
        self.image_token_id = _token_id(tokenizer, "image_token_id", self.image_token)
        self.video_token_id = _token_id(tokenizer, "video_token_id", self.video_token)
        self.vision_start_token_id = _token_id(tokenizer, "vision_start_token_id", self.vision_start_token)
        self.vision_end_token_id = _token_id(tokenizer, "vision_end_token_id", self.vision_end_token)
        # Skip Qwen3VLProcessor.__init__ (it insists on a video processor). Extra kwargs such
        # as a checkpoint's video settings are dropped: ProcessorMixin rejects unknown ones.
        ProcessorMixin.__init__(self, image_processor, tokenizer, chat_template=chat_template)


def _token_id(tokenizer: Any, attribute: str, token: str) -> int:
    token_id = getattr(tokenizer, attribute, None)
    return int(token_id) if token_id is not None else int(tokenizer.convert_tokens_to_ids(token))
