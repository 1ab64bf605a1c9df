"""Tensor parallelism on CPU (gloo, real worker processes): TP=2 and TP=4 greedy output equals
TP=1 token for token; the KV pool is sized from the sharded KV head count; bad sizes and a dead
worker raise typed errors."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from ponder.distributed.sharding import check_tensor_parallel, kv_head_shard, vocab_shard
from ponder.engine.sampling_params import SamplingParams
from ponder.errors import TensorParallelError, TensorParallelWorkerError
from ponder.llm import LLM
from tests.fixtures.checkpoints import make_checkpoint

PROMPTS = ["The quick brown fox", "Let me think step by step.", "Hello, how are you"]
GREEDY = SamplingParams(max_tokens=10, temperature=0.0, ignore_eos=True)
KV_MEMORY = 2 << 20  # a fixed byte budget: the block count then shows the per-rank head count

# vocab 331 divides by neither 2 nor 4: the last rank's embedding rows are padded.
MODELS = {
    # MQA: one KV head, replicated on every rank.
    "llama": dict(num_layers=2, num_heads=4, num_kv_heads=1, head_dim=16, intermediate_size=96),
    # Qwen2 biases; 2 KV heads: split at TP=2, replicated in pairs at TP=4.
    "qwen2": dict(num_layers=2, num_heads=4, num_kv_heads=2, head_dim=16, seed=1),
    # Qwen3 q/k norm; 2 KV heads.
    "qwen3": dict(num_layers=2, num_heads=4, num_kv_heads=2, head_dim=32, seed=2),
}


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return {
        arch: make_checkpoint(tmp_path_factory.mktemp(f"tp-{arch}"), arch, vocab_size=331, **shape)
        for arch, shape in MODELS.items()
    }


def _run(model: Path, tp_size: int) -> tuple[list[list[int]], int, int]:
    """Greedy tokens, the KV pool's block count and the KV heads per rank."""
    with LLM(str(model), tensor_parallel_size=tp_size, max_model_len=256, kv_cache_memory=KV_MEMORY) as llm:
        outputs = llm.generate(PROMPTS, GREEDY)
        engine = llm.engine
        return (
            [list(o.outputs[0].token_ids) for o in outputs],
            engine.kv.pool.num_blocks,
            engine.kv_layout.num_kv_heads,
        )


@pytest.fixture(scope="module")
def reference(checkpoints: dict[str, Path]) -> dict[str, tuple[list[list[int]], int, int]]:
    return {arch: _run(path, 1) for arch, path in checkpoints.items()}


@pytest.mark.parametrize("tp_size", [2, 4])
@pytest.mark.parametrize("arch", list(MODELS))
def test_tensor_parallel_greedy_output_equals_a_single_rank(checkpoints, reference, arch, tp_size):
    tokens, num_blocks, kv_heads = _run(checkpoints[arch], tp_size)
    ref_tokens, ref_blocks, ref_heads = reference[arch]
    assert len(ref_tokens[0]) == GREEDY.max_tokens
    assert tokens == ref_tokens
    total_kv_heads = MODELS[arch]["num_kv_heads"]
    assert ref_heads == total_kv_heads
    expected_heads = max(1, total_kv_heads // tp_size)  # never fewer than one whole head
    assert kv_heads == expected_heads
    # The same bytes hold total/per-rank times more blocks: the pool is sized per rank.
    assert num_blocks == ref_blocks * total_kv_heads // expected_heads


def test_kv_heads_are_split_or_replicated_never_cut():
    assert [kv_head_shard(8, rank, 4).start for rank in range(4)] == [0, 2, 4, 6]
    assert {kv_head_shard(8, rank, 4).count for rank in range(4)} == {2}
    assert [kv_head_shard(2, rank, 4).start for rank in range(4)] == [0, 0, 1, 1]
    assert [kv_head_shard(1, rank, 4).start for rank in range(4)] == [0, 0, 0, 0]
    shards = [vocab_shard(331, rank, 4) for rank in range(4)]
    assert [(s.start, s.end) for s in shards] == [(0, 83), (83, 166), (166, 249), (249, 331)]
    assert {s.rows_per_rank for s in shards} == {83}


@pytest.mark.parametrize(
    ("tp_size", "sizes", "message"),
    [
        (3, dict(num_heads=4, num_kv_heads=2, intermediate_size=96), r"attention heads \(4\).*size 3"),
        (4, dict(num_heads=8, num_kv_heads=6, intermediate_size=96), r"KV heads \(6\).*size 4"),
        (4, dict(num_heads=12, num_kv_heads=3, intermediate_size=96), r"not a multiple of .*KV heads \(3\)"),
        (4, dict(num_heads=8, num_kv_heads=2, intermediate_size=90), r"intermediate size \(90\)"),
        (0, dict(num_heads=8, num_kv_heads=2, intermediate_size=96), r"integer >= 1"),
    ],
)
def test_sizes_that_do_not_split_are_refused_with_the_reason(tp_size, sizes, message):
    with pytest.raises(TensorParallelError, match=message):
        check_tensor_parallel(tp_size, **sizes)


def test_the_engine_refuses_a_bad_size_before_starting_workers(checkpoints):
    with pytest.raises(TensorParallelError, match=r"attention heads \(4\) is not divisible by .* 3"):
        LLM(str(checkpoints["llama"]), tensor_parallel_size=3, max_model_len=256)
    with pytest.raises(TensorParallelError, match="integer >= 1") as error:
        LLM(str(checkpoints["llama"]), tensor_parallel_size=0)
    assert error.value.param == "tensor_parallel_size"


def test_a_dead_worker_raises_a_typed_error_and_shutdown_still_works(checkpoints):
    llm = LLM(str(checkpoints["llama"]), tensor_parallel_size=2, max_model_len=256, num_kv_blocks=32)
    try:
        (worker,) = llm.engine.runner._workers.processes  # type: ignore[attr-defined]
        os.kill(worker.pid, signal.SIGKILL)
        worker.join(10)
        with pytest.raises(TensorParallelWorkerError, match=r"rank 1 .* died"):
            llm.generate(PROMPTS[:1], GREEDY)
    finally:
        llm.shutdown()
    # The group is torn down: a new tensor-parallel engine starts in this process.
    with LLM(str(checkpoints["llama"]), tensor_parallel_size=2, max_model_len=256, num_kv_blocks=32) as again:
        assert len(again.generate(PROMPTS[:1], GREEDY)[0].outputs[0].token_ids) == GREEDY.max_tokens


def test_the_flag_reaches_the_engine_config():
    import argparse

    from ponder.engine.args import EngineArgs

    parser = argparse.ArgumentParser()
    EngineArgs.add_cli_args(parser)
    args = EngineArgs.from_cli_args(parser.parse_args(["--tensor-parallel-size", "4"]))
    assert args.create_engine_config().parallel.tensor_parallel_size == 4
    assert EngineArgs().create_engine_config().parallel.tensor_parallel_size == 1


def test_a_rank_reads_only_its_slice_of_a_checkpoint_tensor(tmp_path):
    import torch
    from safetensors import safe_open
    from safetensors.torch import save_file

    from ponder.distributed.sharding import LazyWeight, materialize
    from ponder.layers.linear import RowParallelLinear

    weight = torch.randn(6, 8)
    save_file({"w": weight}, str(tmp_path / "w.safetensors"))
    with safe_open(str(tmp_path / "w.safetensors"), framework="pt") as handle:
        lazy = LazyWeight(handle.get_slice("w"))
        assert lazy.shape == (6, 8)
        torch.testing.assert_close(lazy.narrow(1, 4, 4), weight[:, 4:])
        torch.testing.assert_close(materialize(lazy), weight)
        layer = RowParallelLinear(8, 6, tp_rank=1, tp_size=2)
        layer.weight.weight_loader(layer.weight, lazy)
    torch.testing.assert_close(layer.weight.data, weight[:, 4:])
