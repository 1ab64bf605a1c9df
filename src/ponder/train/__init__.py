"""Trainer for the built-in reasoning model: tokenizer, chat-formatted task data, Qwen3 model.

The training loop itself (``ponder.train.trainer.train``) imports torch and transformers; this
package's top level stays light so ``ponder train`` registers cheaply.
"""

from ponder.train.config import PRESETS, TrainConfig, load_config

__all__ = ["PRESETS", "TrainConfig", "load_config"]
