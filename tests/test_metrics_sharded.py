"""Pair blocks shared among torch.distributed ranks (gloo, 2 CPU processes): every rank ends
with exactly the single-process numbers, through the kernels and through the device path, and
so do R@k, R@1's hits per class and MAP@R from the query blocks each rank takes."""

import json
import os
import socket
import subprocess
import sys

import numpy as np
import torch.distributed as dist
import torch.multiprocessing as mp
from conftest import ROOT, clustered
from test_metrics_device import _ties

from tcm_core.metrics import EvalSettings, embedding_set, evaluate, pairs, retrieval, sharded
from tcm_core.metrics.retrieval import class_hits_from_set, map_at_r_from_set, recall_at_k_from_set
from tcm_core.metrics.band import band_counts
from tcm_core.metrics.thresholds import negative_distance_ranks

TIES_BAND = EvalSettings(far_range=(0.02, 0.5), num_thresholds=101)  # both ends on tied values


def test_blocks_are_dealt_out_once(monkeypatch):
    starts = list(range(0, 1000, 7))
    for world in (1, 2, 3, 5):
        shares = []
        for rank in range(world):
            monkeypatch.setattr(sharded, "rank_and_world", lambda r=rank, w=world: (r, w))
            shares.append(sharded.owned(starts))
        assert sorted(s for share in shares for s in share) == starts
        assert max(map(len, shares)) - min(map(len, shares)) <= 1
    monkeypatch.setattr(sharded, "rank_and_world", lambda: (1, 2))
    assert sharded.owned([0, 10, 20, 30, 40]) == [10, 20]  # 0 1 1 0 0: back and forth


def _results(es) -> dict:
    """Everything the passes feed, through both backends; and for 40 samples (one block, so
    rank 1 streams nothing)."""
    tiny = embedding_set(*clustered(9, n=40, classes=4, dim=5), device="cpu")
    out = {}
    for name, use_kernels in [("kernels", True), ("device", False)]:
        pairs.USE_KERNELS = use_kernels
        values, at_or_below = negative_distance_ranks(es, [0, 3, 999, 5000])  # the quantiles' passes
        pos, neg = pairs.accepted_counts(es, np.linspace(values[1], values[3], 51))
        found = {"pos": pos, "neg": neg, "rank_values": values, "at_or_below": at_or_below,
                 "tiny_quantiles": pairs.negative_distance_quantiles(tiny, [0.0, 0.1, 1.0]),
                 "tiny_neg": pairs.accepted_counts(tiny, np.linspace(0.5, 1.5, 11))[1]}
        grid_pos, grid_neg = pairs.grid_counts(es, np.linspace(0.0, 2.0, 257))  # the histograms' counts
        band_t, band_pos, band_neg = band_counts(es, (0.02, 0.5), 101)  # the kernels' two passes
        tiny_band = band_counts(tiny, (0.1, 0.6), 11)
        found.update(grid_pos=grid_pos, grid_neg=grid_neg, band_t=band_t, band_pos=band_pos, band_neg=band_neg,
                     tiny_band_t=tiny_band[0], tiny_band_neg=tiny_band[2])
        out.update({f"{name}_{k}": v for k, v in found.items()})
    pairs.USE_KERNELS = True
    out.update(_retrieval(es, rows=13), **{f"tiny_{k}": v for k, v in _retrieval(tiny, rows=64).items()})
    return out


def _retrieval(es, rows) -> dict:
    """R@1/R@4, R@1's hits per class and MAP@R with ``rows`` query rows per block."""
    before, retrieval.BLOCK_BYTES = retrieval.BLOCK_BYTES, 16 * es.n * rows
    try:
        return {"recall": np.array(list(recall_at_k_from_set(es, (1, 4)).values())),
                "class_hits": class_hits_from_set(es).hits, "map_at_r": np.array(map_at_r_from_set(es))}
    finally:
        retrieval.BLOCK_BYTES = before


def _worker(rank, world, port, folder):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        x, y = _ties()
        es = embedding_set(x, y, device="cpu")
        if rank == 0:  # outside across_ranks() a rank computes alone (as a DDP trainer's rank 0)
            np.save(os.path.join(folder, "alone.npy"), pairs.negative_distance_quantiles(es, [0.02, 0.5]))
        with sharded.across_ranks():
            np.savez(os.path.join(folder, f"rank{rank}.npz"), **_results(es))
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_give_the_single_process_results(tmp_path, monkeypatch):
    monkeypatch.setenv("TCM_MEMORY_BUDGET_BYTES", str(1 << 20))  # many blocks to deal out
    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2)
    x, y = _ties()
    single = _results(embedding_set(x, y, device="cpu"))
    np.testing.assert_array_equal(np.load(tmp_path / "alone.npy"), [0.0, 2.0**0.5])
    for rank in (0, 1):
        got = np.load(tmp_path / f"rank{rank}.npz")
        assert sorted(got.files) == sorted(single)
        for key, want in single.items():
            np.testing.assert_array_equal(got[key], want, err_msg=f"rank {rank}: {key}")
    for key in single:
        if key.startswith("device_"):  # and the device path is the kernels' (test_metrics_device)
            np.testing.assert_array_equal(single[key], single[key.replace("device_", "kernels_")])


def test_torchrun_evaluate_prints_the_single_process_json_once(tmp_path):
    x, y = _ties()
    x = x.astype(np.float32)
    f = tmp_path / "e.npz"
    np.savez(f, embeddings=x, labels=y)
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                          "-m", "tcm_core", "evaluate", str(f), "--json", "--far-range", "0.02", "0.5",
                          "--num-thresholds", "101"], check=False, capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    lines = out.stdout.strip().splitlines()
    assert len(lines) == 1  # rank 0 only
    want = json.loads(json.dumps(evaluate(x, y, TIES_BAND).to_dict()))
    assert json.loads(lines[0]) == want
    assert [want["t_min"], want["t_max"]] == [0.0, 2.0**0.5]  # the band's ends on tied distances
