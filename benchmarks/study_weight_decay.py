"""Weight decay far too strong against usual settings (issue 12, branch known18): a digits or wine
MLP in Lightning with MLCheckCallback, per `DATA:OPTIMIZER:WEIGHT_DECAY:LR:EPOCHS` argument;
prints the mean training loss of the last 10 steps, the validation accuracy, the weights' norm
and the WARNING/ERROR findings.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/study_weight_decay.py digits:adamw:1.0:1e-2:10 \\
        digits:adamw:0:1e-2:10 digits:adam:0.1:1e-3:10 digits:sgd:5e-4:0.05:10
"""

import sys
import tempfile
import warnings

import lightning.pytorch as pl
import numpy as np
import torch
from sklearn.datasets import load_digits, load_wine
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

from mlcheck.integrations.lightning import MLCheckCallback

torch.set_num_threads(1)


class M(pl.LightningModule):
    def __init__(self, opt, wd, lr, d_in, C):
        super().__init__()
        self.opt, self.wd, self.lr = opt, wd, lr
        self.net = nn.Sequential(nn.Linear(d_in, 64), nn.ReLU(), nn.Linear(64, C))
        self.tl = []

    def forward(self, x):
        return self.net(x)

    def training_step(self, b, i):
        loss = F.cross_entropy(self(b[0]), b[1])
        self.log("train_loss", loss)
        self.tl.append(float(loss))
        return loss

    def validation_step(self, b, i):
        out = self(b[0])
        self.log("val_loss", F.cross_entropy(out, b[1]))
        self.log("val_acc", (out.argmax(1) == b[1]).float().mean())

    def configure_optimizers(self):
        cls = {"adamw": torch.optim.AdamW, "adam": torch.optim.Adam, "sgd": torch.optim.SGD}[self.opt]
        kw = {"momentum": 0.9} if self.opt == "sgd" else {}
        return cls(self.parameters(), lr=self.lr, weight_decay=self.wd, **kw)


def run(ds, opt, wd, lr, epochs):
    x, y = (load_digits if ds == "digits" else load_wine)(return_X_y=True)
    x = (x - x.mean(0)) / np.where(x.std(0) > 0, x.std(0), 1)
    order = np.random.default_rng(0).permutation(len(x))
    x, y = x[order], y[order]
    n = int(0.8 * len(x))
    x, y = torch.tensor(x, dtype=torch.float32), torch.tensor(y)
    pl.seed_everything(0, verbose=False)
    m = M(opt, wd, lr, x.shape[1], int(y.max()) + 1)
    cb = MLCheckCallback(log_dir=tempfile.mkdtemp())
    t = pl.Trainer(
        max_epochs=epochs,
        callbacks=[cb],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t.fit(
            m,
            DataLoader(TensorDataset(x[:n], y[:n]), batch_size=32, shuffle=True),
            DataLoader(TensorDataset(x[n:], y[n:]), batch_size=256),
        )
    wn = float(sum((p.detach() ** 2).sum() for p in m.parameters()) ** 0.5)
    last = np.mean(m.tl[-10:])
    acc = float(t.callback_metrics["val_acc"])
    f = [(f.check, f.key, f.severity.value) for f in cb.findings if f.severity.value != "info"]
    print(
        f"{ds:7s} {opt:6s} wd={wd:<7g} lr={lr:<6g} train_loss(last10)={last:.4f} val_acc={acc:.3f} "
        f"|w|={wn:.2f} findings={f}",
        flush=True,
    )


configs = [a.split(":") for a in sys.argv[1:]]
for ds, opt, wd, lr, ep in configs:
    run(ds, opt, float(wd), float(lr), int(ep))
