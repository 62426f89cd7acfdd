"""`train-val-gap`'s short-run early test on its last two epochs, through the real `mlcheck analyze`
command on written logs (issue 12, branch over39): in a run of up to 10 validations, the last two
epochs after the lowest each above the best level by 5% and by 3 x the fit noise x sqrt(1/2 + 1/3),
the training loss lower at every epoch since the lowest. Each of the two, not their mean: one spike
carries a mean of two (held-out-8's dextergome, below)."""

from __future__ import annotations

from pathlib import Path

from tests.analyze.test_over38_short_runs import _analyze

# held-out-3 of benchmarks/reallogs: rickiepark/deep-learning-with-python ch. 5 cell 50, fit 8
# (labelled minimum epoch 6), a Keras classifier with its validation accuracy
_C50 = [
    (1, 0.6113, 0.4297, 0.678, 0.8618),
    (2, 0.3771, 0.3467, 0.8891, 0.8799),
    (3, 0.2865, 0.3081, 0.9179, 0.8872),
    (4, 0.2378, 0.2864, 0.9306, 0.8911),
    (5, 0.2013, 0.2827, 0.9382, 0.8882),
    (6, 0.1701, 0.2783, 0.9527, 0.8887),
    (7, 0.1557, 0.2783, 0.9541, 0.8911),
    (8, 0.1295, 0.28, 0.9655, 0.8906),
    (9, 0.1164, 0.2981, 0.9686, 0.8838),
    (10, 0.1061, 0.2947, 0.9725, 0.8857),
    (11, 0.0965, 0.3047, 0.9754, 0.8838),
    (12, 0.0858, 0.3123, 0.9796, 0.8838),
    (13, 0.0778, 0.3232, 0.9829, 0.8833),
]


def test_a_classifier_whose_last_two_epochs_rose_is_told_at_its_10th_validation(tmp_path: Path) -> None:
    # validation 0.2783 at epochs 6 and 7 (best epoch 6), then 0.280, 0.298, 0.295 while the training loss fell at every
    # epoch and the validation accuracy fell from 0.8911 to 0.884-0.886: at 10 the last two are each
    # 6-7% over the best level. Told at 10 (12 on main, where the last three's mean had to clear the bar)
    (f, *_) = _analyze(tmp_path, "epoch,loss,val_loss,accuracy,val_accuracy", _C50)
    assert (f["epoch"], f["evidence"]["best_epoch"]) == (10, 6), f
    assert "may still come back" in f["message"], f["message"]


# held-out-8: DexterGomez/ftc-unet `training_history.csv` (labelled minimum epoch 9): a U-Net whose
# validation loss spikes once at epoch 6 (0.0144, then 0.0250) and falls 34% below its earlier best at 9
_UNET = [
    (1, 0.008887826, 0.013592462),
    (2, 0.005668671, 0.012991059),
    (3, 0.005126822, 0.013717987),
    (4, 0.004835294, 0.014604256),
    (5, 0.004592057, 0.0143799),
    (6, 0.004286715, 0.025022696),
    (7, 0.004056682, 0.016252981),
    (8, 0.003849224, 0.014716343),
    (9, 0.003611996, 0.008933962),
    (10, 0.003421668, 0.048426528),
    (11, 0.003251656, 0.01181181),
    (12, 0.003160416, 0.020039742),
    (13, 0.003000949, 0.020602907),
]


def test_one_spike_does_not_carry_the_last_two(tmp_path: Path) -> None:
    # the mean of the last two at epoch 6 (0.0197) clears the bar, but 0.0144 alone does not: silent
    # while the loss is still to fall below that best (over38's mean-of-two variant warned at 6)
    told = _analyze(tmp_path, "epoch,loss,val_loss", _UNET)
    assert told == [], told
