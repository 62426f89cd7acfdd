"""h01 Lightning (healthy): a small GAN on 2-D points (manual optimization). Even epochs train the
discriminator only, odd epochs the generator only: in each epoch one model is frozen on purpose
(`requires_grad_(False)`, its optimizer not stepped)."""

import lightning.pytorch as pl
import torch
from _common import log_dir, quiet, report, trainer
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from mlcheck.integrations.lightning import MLCheckCallback

NAME = "h01_gan_alternating_phases"
Z = 8


class GAN(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.automatic_optimization = False
        self.gen = nn.Sequential(nn.Linear(Z, 32), nn.ReLU(), nn.Linear(32, 2))
        self.disc = nn.Sequential(nn.Linear(2, 32), nn.LeakyReLU(0.2), nn.Linear(32, 1))

    def forward(self, z):
        return self.gen(z)

    def on_train_epoch_start(self):
        train_disc = self.current_epoch % 2 == 0
        self.disc.requires_grad_(train_disc)
        self.gen.requires_grad_(not train_disc)

    def training_step(self, batch, i):
        (real,) = batch
        opt_g, opt_d = self.optimizers()
        z = torch.randn(len(real), Z, device=real.device)
        bce = nn.functional.binary_cross_entropy_with_logits
        if self.current_epoch % 2 == 0:
            fake = self.gen(z).detach()
            loss = bce(self.disc(real), torch.ones(len(real), 1)) + bce(self.disc(fake), torch.zeros(len(real), 1))
            opt_d.zero_grad()
            self.manual_backward(loss)
            opt_d.step()
            self.log("d_loss", loss)
        else:
            loss = bce(self.disc(self.gen(z)), torch.ones(len(real), 1))
            opt_g.zero_grad()
            self.manual_backward(loss)
            opt_g.step()
            self.log("g_loss", loss)

    def configure_optimizers(self):
        return (
            torch.optim.Adam(self.gen.parameters(), lr=1e-3, betas=(0.5, 0.999)),
            torch.optim.Adam(self.disc.parameters(), lr=1e-3, betas=(0.5, 0.999)),
        )


if __name__ == "__main__":
    quiet()
    pl.seed_everything(0)
    g = torch.Generator().manual_seed(0)
    angle = torch.rand(2048, generator=g) * 6.2832
    real = torch.stack([torch.cos(angle), torch.sin(angle)], 1) * 2 + 0.05 * torch.randn(2048, 2, generator=g)
    tr = DataLoader(TensorDataset(real), batch_size=64, shuffle=True)
    cb = MLCheckCallback(log_dir=log_dir(NAME))
    trainer(NAME, cb, 8).fit(GAN(), tr)
    report(NAME, cb.findings)
