"""``tcm_core.integrations``: OPIS inside a pytorch-metric-learning tester, and per epoch in a
plain PyTorch loop, agreeing with ``metrics.evaluate`` on the same embeddings."""

import math

import pytest
import torch
from conftest import clustered
from pytorch_metric_learning import testers

from tcm_core.errors import TCMError
from tcm_core.integrations.loop import OpisMeter, embed, epoch_opis
from tcm_core.integrations.pml import OpisAccuracyCalculator
from tcm_core.metrics import EvalSettings, evaluate


class Pairs(torch.utils.data.Dataset):
    """(input, label) items, as PML's testers and a DataLoader expect."""

    def __init__(self, x, y):
        self.x, self.y = torch.tensor(x, dtype=torch.float32), torch.tensor(y)

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        return self.x[i], self.y[i]


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    x, y = clustered(41, n=180, classes=9, dim=8)
    return torch.nn.Linear(8, 4), Pairs(x, y)


def test_tester_reports_opis(tiny):
    model, data = tiny
    settings = EvalSettings(far_range=(1e-2, 0.2), num_thresholds=51, eps=0.2)
    calc = OpisAccuracyCalculator(include=("precision_at_1", "opis", "eps_opis"), k=1, settings=settings,
                                  device=torch.device("cpu"))
    tester = testers.GlobalEmbeddingSpaceTester(accuracy_calculator=calc, dataloader_num_workers=0,
                                                batch_size=64, data_device=torch.device("cpu"))
    acc = tester.test({"val": data}, 3, model)["val"]
    assert {"precision_at_1_level0", "opis_level0", "eps_opis_level0"} <= set(acc) and acc["epoch"] == 3
    x, y = tester.get_all_embeddings(data, model, return_as_numpy=True)
    want = evaluate(x, y[:, 0], settings)
    assert acc["opis_level0"] == pytest.approx(want.opis, rel=1e-6)
    assert acc["eps_opis_level0"] == pytest.approx(want.eps_opis, rel=1e-6)
    assert acc["precision_at_1_level0"] == pytest.approx(want.recall_at_1)


def test_calculator_alone_and_undefined(tiny):
    model, data = tiny
    calc = OpisAccuracyCalculator(include=("opis", "eps_opis"))
    with torch.no_grad():
        emb = model(data.x)
    got = calc.get_accuracy(emb, data.y)
    want = evaluate(emb.numpy(), data.y.numpy())
    assert got == pytest.approx({"opis": want.opis, "eps_opis": want.eps_opis}, rel=1e-6)
    # queries against a separate reference: OPIS of the queries
    got = calc.get_accuracy(emb[:120], data.y[:120], emb[120:], data.y[120:], False)
    assert got["opis"] == pytest.approx(evaluate(emb[:120].numpy(), data.y[:120].numpy()).opis, rel=1e-6)
    with pytest.warns(RuntimeWarning, match="undefined"):  # one class only: NaN, as PML does
        got = calc.get_accuracy(emb[:10], torch.zeros(10))
    assert math.isnan(got["opis"]) and math.isnan(got["eps_opis"])
    with pytest.raises(TCMError, match="EvalSettings"):
        OpisAccuracyCalculator(settings={"eps": 0.1})


def test_plain_loop(tiny):
    model, data = tiny
    model.train()
    loader = torch.utils.data.DataLoader(data, batch_size=50)
    ev = epoch_opis(model, loader)
    assert model.training  # put back in the mode it was in
    with torch.no_grad():
        want = evaluate(model(data.x).numpy(), data.y.numpy())
    assert (ev.opis, ev.eps_opis, ev.recall_at_1) == pytest.approx((want.opis, want.eps_opis, want.recall_at_1))
    meter = OpisMeter()
    with torch.no_grad():
        for xb, yb in loader:
            meter.update(model(xb).to(torch.bfloat16), yb)  # autocast-style outputs too
    assert meter.compute().opis == pytest.approx(want.opis, rel=0.05)
    x, y = embed(model, [(data.x[:7], data.y[:7])])
    assert x.shape == (7, 4) and y.tolist() == data.y[:7].tolist()
    meter.reset()
    with pytest.raises(TCMError, match="no embeddings"):
        meter.compute()
