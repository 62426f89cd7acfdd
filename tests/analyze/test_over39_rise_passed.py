"""`train-val-gap`'s "that rise passed" through the real `mlcheck analyze` command on a written log
(issue 12, branch over39): the mean of the last 3 validation losses back below the best level the
WARNING named is enough (it had to come back below it by what the rise had to exceed, 3 noises or
5%); `mlcheck analyze` then shows that WARNING as an INFO."""

from __future__ import annotations

from pathlib import Path

from tests.analyze.test_over38_short_runs import _analyze

# held-out-8 of benchmarks/reallogs: 18140033613's TFT `lightning_logs/optuna/version_2`
# (labelled healthy): validation 1.512 at epoch 2, up to 1.60 at 10-12 (told at 12), then back and
# forth around 1.53-1.58 while the training loss fell 1.50 -> 1.29; the last three at 49 average 1.506
_TFT = [
    (1, 3.1594, 1.779), (2, 1.8842, 1.512), (3, 1.7219, 1.5125), (4, 1.6578, 1.5201), (5, 1.652, 1.5124),
    (6, 1.668, 1.5468), (7, 1.6697, 1.5308), (8, 1.6358, 1.5509), (9, 1.5846, 1.5722), (10, 1.5667, 1.6009),
    (11, 1.539, 1.5836), (12, 1.5047, 1.5971), (13, 1.5009, 1.5306), (14, 1.4939, 1.5807), (15, 1.4625, 1.5786),
    (16, 1.4525, 1.567), (17, 1.4653, 1.5415), (18, 1.4354, 1.5569), (19, 1.4498, 1.5206), (20, 1.4556, 1.524),
    (21, 1.4256, 1.5597), (22, 1.404, 1.5731), (23, 1.4036, 1.514), (24, 1.4138, 1.5337), (25, 1.381, 1.5648),
    (26, 1.3577, 1.5476), (27, 1.3559, 1.5161), (28, 1.3642, 1.5445), (29, 1.3427, 1.5797), (30, 1.362, 1.6041),
    (31, 1.3427, 1.5376), (32, 1.341, 1.5864), (33, 1.3497, 1.465), (34, 1.3243, 1.6566), (35, 1.3146, 1.6069),
    (36, 1.3143, 1.561), (37, 1.3099, 1.5681), (38, 1.326, 1.5753), (39, 1.2991, 1.5578), (40, 1.2884, 1.5544),
    (41, 1.3144, 1.5764), (42, 1.2769, 1.5346), (43, 1.2977, 1.5321), (44, 1.3008, 1.5287), (45, 1.2459, 1.5505),
    (46, 1.3046, 1.576), (47, 1.2615, 1.5015), (48, 1.2846, 1.5266), (49, 1.2866, 1.4907), (50, 1.2919, 1.5725),
]  # fmt: skip


def test_a_rise_whose_loss_came_back_to_its_best_level_is_no_warning(tmp_path: Path) -> None:
    # main: a WARNING at epoch 12 (best level 1.515, back to 1.506 at 49: not 3 noises, 0.061, below)
    told = _analyze(tmp_path, "epoch,loss,val_loss", _TFT)
    assert told == [], told


def test_the_same_rise_is_still_told_while_the_loss_stays_up(tmp_path: Path) -> None:
    (f, *_) = _analyze(tmp_path, "epoch,loss,val_loss", _TFT[:46])
    assert f["epoch"] == 12 and f["evidence"]["best_epoch"] == 2, f
