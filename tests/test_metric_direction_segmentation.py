"""Segmentation scores' direction read from their names (issue 12, branch `fa36`).

`higher_is_better` read `ce` anywhere before a separator or the end as a cross-entropy, so `dice`,
`dice_coef` and `val_dice_coef` (the Dice coefficient, higher is better) were lower-is-better, and
`jaccard_coef` (segmentation_models' recipe) and `mean_io_u` (Keras' `MeanIoU`) were unknown. held-out-13's
vivakanand logs `jaccard_coef` beside its Dice-plus-focal loss. `ce` now counts as a word of its own
(`ce`, `bce`, `nce`, `train_ce`); `distance` (an edit or Chamfer distance, which the old pattern
caught by its last letters) is named."""

from __future__ import annotations

import pytest

from mlcheck.metrics import higher_is_better
from tests.checks.test_loss_plateau_training_score import VIV_ACC, _csv, _plateau_warnings, _viv


@pytest.mark.parametrize(
    "name, higher",
    [
        ("dice", True),
        ("dice_coef", True),
        ("val_dice_coef", True),
        ("jaccard_coef", True),
        ("val_jaccard_coef", True),
        ("mean_io_u", True),
        ("dice_loss", False),
        ("ce", False),
        ("bce", False),
        ("val_bce", False),
        ("train_ce", False),
        ("cross_entropy", False),
        ("edit_distance", False),
        ("val_loss", False),
        ("val_accuracy", True),
    ],
)
def test_direction(name, higher):
    assert higher_is_better(name) is higher


def test_a_jaccard_score_alone_tells_the_segmentation_run_learns(tmp_path):
    # vivakanand's loss with its Jaccard coefficient as the only training score (as in its raw file;
    # scaled from its accuracy here): main read the name as unknown and warned at epoch 6
    jaccard = [a - 0.3 for a in VIV_ACC]
    cols = {**_viv(20), "jaccard_coef": jaccard}
    assert _plateau_warnings(_csv(tmp_path / "jaccard" / "training.log", cols)) == []
