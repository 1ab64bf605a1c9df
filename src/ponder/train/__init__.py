"""Trainer for the built-in reasoning model: tokenizer, chat-formatted task data, Qwen3 model.

The training loop itself (``ponder.train.trainer.train``) imports torch and transformers; this
package's top level stays light so the CLI can register ``ponder train`` cheaply.
"""

from ponder.train.cli import add_train_parser, run_train
from ponder.train.config import PRESETS, TrainConfig, load_config

__all__ = ["PRESETS", "TrainConfig", "add_train_parser", "load_config", "run_train"]
