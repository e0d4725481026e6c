"""Embedding files in the three upload formats: each round-trips to the same arrays and the same
OPIS as ``evaluate`` on the arrays; bad files give one ``TCMError`` naming the file."""

import io
import pickle

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from safetensors.numpy import save as save_safetensors

from conftest import clustered
from tcm_core.errors import TCMError
from tcm_core.io import load_embeddings, read_embeddings
from tcm_core.metrics import evaluate


def npz_bytes(x, y) -> bytes:
    b = io.BytesIO()
    np.savez(b, embeddings=x, labels=y)
    return b.getvalue()


def parquet_bytes(table: pa.Table) -> bytes:
    b = io.BytesIO()
    pq.write_table(table, b)
    return b.getvalue()


def list_parquet(x, y) -> bytes:
    return parquet_bytes(pa.table({"label": y, "embeddings": [list(r) for r in x]}))


def numbered_parquet(x, y) -> bytes:  # columns e0..e{d-1}, shuffled on disk: read back in number order
    cols = {f"e{j}": x[:, j] for j in range(x.shape[1])}
    order = list(reversed(cols))
    return parquet_bytes(pa.table({"labels": y, **{k: cols[k] for k in order}}))


@pytest.fixture(scope="module")
def data():
    x, y = clustered(21, n=240, classes=6, dim=12)
    return x.astype(np.float32), y.astype(np.int64)


@pytest.mark.parametrize("name,make", [
    ("run.npz", npz_bytes),
    ("run.safetensors", lambda x, y: save_safetensors({"embeddings": x, "labels": y})),
    ("run.parquet", list_parquet),
    ("run_numbered.parquet", numbered_parquet),
])
def test_each_format_round_trips_to_evaluate(tmp_path, data, name, make):
    x, y = data
    blob = make(x, y)
    ex, ey = read_embeddings(name, blob)
    np.testing.assert_array_equal(ex, x)
    np.testing.assert_array_equal(ey, y)
    (tmp_path / name).write_bytes(blob)  # the file path the CLI reads gives the same
    fx, fy = load_embeddings(tmp_path / name)
    assert evaluate(fx, fy).opis == evaluate(x, y).opis


def test_parquet_string_labels(data):
    x, y = data
    names = np.array([f"class-{v}" for v in y])
    ex, ey = read_embeddings("s.parquet", list_parquet(x, names))
    assert ey.dtype.kind == "U" and list(ey) == list(names)
    assert evaluate(ex, ey).opis == pytest.approx(evaluate(x, y).opis, rel=0, abs=0)


def test_bad_files_name_the_file(data):
    x, y = data
    bad = {
        "corrupt.npz": (b"PK\x03\x04 not really a zip", "not a readable .npz"),
        "empty.safetensors": (b"", "is empty"),
        "pickled.npz": (pickle.dumps({"embeddings": x, "labels": y}), "pickled data is never loaded"),
        "pickled.safetensors": (pickle.dumps({"embeddings": x}), "not a readable .safetensors"),
        "pickled.parquet": (pickle.dumps(x), "not a readable .parquet"),
        "nolabels.safetensors": (save_safetensors({"embeddings": x}), "lacks tensor(s) ['labels']"),
        "nolabel.parquet": (parquet_bytes(pa.table({"embeddings": [list(r) for r in x]})), "no label column"),
        "ragged.parquet": (parquet_bytes(pa.table({"label": y[:2], "embeddings": [[1.0, 2.0], [1.0]]})), "one dimension"),
        "nulls.parquet": (parquet_bytes(pa.table({"label": [1, None], "embeddings": [[1.0], [2.0]]})), "missing value"),
        "text.parquet": (parquet_bytes(pa.table({"label": y, "embeddings": [["a"] * 3] * len(y)})), "must hold numbers"),
        "run.csv": (b"1,2,3", "unsupported file type .csv"),
    }
    for name, (blob, needle) in bad.items():
        with pytest.raises(TCMError) as info:
            read_embeddings(name, blob)
        assert name in str(info.value) and needle in str(info.value), (name, str(info.value))
