"""`train-val-overlap` in two stages on large samples: a seeded probe for every sample, every
value compared only for the samples whose probe matches."""

from __future__ import annotations

import numpy as np

from mlcheck.checks.data import NonFiniteInput
from mlcheck.checks.hashing import PROBE_BIT, fingerprints, probe_fingerprints, probe_positions, probe_rows
from mlcheck.checks.leakage import TrainValOverlap
from mlcheck.monitor import Monitor
from mlcheck.run import BatchObservation, RunState


def _images(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).random((n, 3, 32, 32), dtype=np.float32)


def test_probe_positions_depend_on_the_row_length_only():
    a, b = probe_positions(3072, 256), probe_positions(3072, 256)
    np.testing.assert_array_equal(a, b)
    assert len(np.unique(a)) == 256 and a.max() < 3072
    assert not np.array_equal(a, probe_positions(3073, 256))


def test_probe_fingerprints_match_exact_copies_and_never_a_whole_row_fingerprint():
    x = _images(200, 0)
    copies = np.concatenate([x[::7], x[::7].astype(np.float64)])  # float64 copies count too
    full, probed = fingerprints(x), fingerprints(x, probe_values=256)
    assert len(np.unique(probed)) == len(x)  # distinct images, distinct probes
    assert np.isin(fingerprints(copies, probe_values=256), probed).all()
    assert (probed & PROBE_BIT).all() and not (full & PROBE_BIT).any()
    np.testing.assert_array_equal(fingerprints(x, probe_values=4096), full)  # short rows: every value
    np.testing.assert_array_equal(fingerprints(x, probe_values=256, probe_above=4096), full)
    np.testing.assert_array_equal(probe_fingerprints(probe_rows(x, 256)[0], 3072), probed)


def _feed(check: TrainValOverlap, *passes: tuple[str, int, np.ndarray]) -> list[list]:
    """Feeds (split, epoch, samples) passes in batches of 64; the findings of each pass."""
    run, found = RunState(), []
    for split, epoch, x in passes:
        out = []
        for start in range(0, len(x), 64):
            out += check.on_batch(BatchObservation(x[start : start + 64], None, split, epoch=epoch), run)
        found.append(out)
    found.append(list(check.on_end(run)))
    return found


def _copied(seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    train, val = _images(640, seed), _images(128, seed + 1)
    val[:32] = train[100:132]
    val[32:40] = 0.0  # blank images are skipped
    return train, val


def test_copies_are_confirmed_when_the_training_samples_come_by_again():
    train, val = _copied()
    check = TrainValOverlap()
    assert check.probe_values == 256 and check.probe_above == 1024  # 3x32x32 images: two stages
    first, val_pass, second, end = _feed(check, ("train", 0, train), ("val", 0, val), ("train", 1, train))
    assert check._overlap.matched == 32 and first == [] and val_pass == []  # probe matches only
    assert not check.awaits_batches("train") and check._second.confirmed == 32
    assert second and {f.severity.value for f in second} == {"error"}  # raised (the monitor keeps one)
    error = second[-1]
    assert error.epoch == 1
    assert error.evidence["val_in_train"] == 32 and error.evidence["unconfirmed"] == 0
    assert error.evidence["constant_samples_skipped"] == 8


def test_one_epoch_leaves_the_probe_matches_unconfirmed_as_info():
    train, val = _copied()
    check = TrainValOverlap()
    *passes, end = _feed(check, ("train", 0, train), ("val", 0, val))
    assert check.awaits_batches("train") and not check.awaits_batches("val")
    assert passes == [[], []]
    (info,) = end
    assert info.severity.value == "info" and info.evidence["unconfirmed"] == 32
    assert "could not be compared in full" in info.message


def test_validation_first_is_confirmed_on_the_next_validation_pass():
    train, val = _copied(5)
    check = TrainValOverlap()
    found = _feed(check, ("val", 0, val), ("train", 0, train), ("val", 1, val))
    assert check.awaits_batches("val") is False and check._second.confirmed == 32
    assert found[2] and {f.severity.value for f in found[2]} == {"error"}


def test_near_copies_never_count_as_copies():
    """Each copy differs from its training sample in 3 of its 3,072 values: equal on the probe
    (most of them), never confirmed. Every value hashed in one stage says the same."""
    train, val = _copied(9)
    edited = val[:32].reshape(32, -1)
    positions = set(probe_positions(3072, 256).tolist())
    off_probe = [i for i in range(3072) if i not in positions][:3]
    edited[:, off_probe] += 0.5
    for probe in (256, None):
        check = TrainValOverlap(probe_values=probe)
        found = _feed(check, ("train", 0, train), ("val", 0, val), ("train", 1, train))
        assert found == [[], [], [], []]
    assert check._overlap.matched == 0
    check = TrainValOverlap()
    _feed(check, ("train", 0, train), ("val", 0, val), ("train", 1, train))
    assert check._overlap.matched == 32 and check._second.counts()["near_duplicates"] == 32


def test_mostly_blank_samples_are_compared_in_full_at_once():
    """Samples constant on the probe but not everywhere (a small mark on a blank page) are
    fingerprinted from every value in the first stage: no second stage needed."""
    rng = np.random.default_rng(3)
    train = np.zeros((320, 3, 32, 32), dtype=np.float32)
    positions = set(probe_positions(3072, 256).tolist())
    free = np.array([i for i in range(3072) if i not in positions])
    for i in range(len(train)):
        train[i].reshape(-1)[rng.choice(free, 4, replace=False)] = rng.random(4)
    val = train[:40].copy()
    val[20:] = train[40:60]
    val[20:].reshape(20, -1)[:, free[0]] += 2.0  # near copies
    check = TrainValOverlap()
    first, val_pass, end = _feed(check, ("train", 0, train), ("val", 0, val))
    assert len(check._second) == 0 and check._overlap.matched == 20
    assert {f.severity.value for f in val_pass + end} == {"error"}  # at the end of the pass at latest
    assert (val_pass + end)[-1].evidence["val_in_train"] == 20


def test_the_second_stage_survives_a_checkpoint():
    train, val = _copied()
    check = TrainValOverlap()
    _feed(check, ("train", 0, train), ("val", 0, val))
    restored = TrainValOverlap()
    restored.load_state_dict(check.state_dict())
    assert restored.awaits_batches("train")
    found = _feed(restored, ("train", 1, train))
    assert found[0] and {f.severity.value for f in found[0]} == {"error"}


def test_full_pass_nonfinite_looks_at_the_probe_of_large_samples():
    x = _images(8, 4)
    x[3] = np.nan  # a NaN-filled image: on the probe
    lone = _images(8, 5)
    off_probe = next(i for i in range(3072) if i not in set(probe_positions(3072, 256).tolist()))
    lone[2].reshape(-1)[off_probe] = np.nan
    found = {}
    for name, batch in (("filled", x), ("lone", lone)):
        for full_pass in (True, False):
            monitor = Monitor([NonFiniteInput()], warn=False, default_sinks=False)
            out = monitor.log_batch(batch, None, checks=["nonfinite-input"], defer=full_pass)
            found[name, full_pass] = out + monitor.close()
    assert found["filled", True] and found["filled", False] and found["lone", False]
    assert found["filled", True][0].evidence["samples_affected"] == 1
    assert found["lone", True] == []  # in the sampled batches and through the loss instead


def _full_pass(checks, *passes: tuple[str, int, np.ndarray]) -> Monitor:
    """Feeds (split, epoch, samples) passes to a Monitor in batches of 32 as the live core
    hands a full pass over (`defer=True`), handing each pass's held batches over at its end."""
    monitor = Monitor(checks, warn=False, default_sinks=False)
    for split, epoch, x in passes:
        for i, start in enumerate(range(0, len(x), 32)):
            rows = slice(start, start + 32)
            y = np.arange(len(x[rows])) % 3
            monitor.log_batch(x[rows], y, split=split, epoch=epoch, checks=[c.id for c in checks], index=i, defer=True)
        monitor.hand_over_deferred()
    monitor.close()
    return monitor


def test_full_pass_hands_the_overlap_blocks_of_probes_until_candidates_wait():
    """The first stage needs only the probe: `train-val-overlap` gets the merged blocks of
    probes the other probe readers get, and whole batches only where candidates wait for a
    full fingerprint from the split (here the second training pass's first batch)."""
    seen: dict[str, list] = {"nonfinite-input": [], "train-val-overlap": []}
    checks = [NonFiniteInput(), TrainValOverlap()]
    for check in checks:
        hook = check.on_batch

        def record(batch, run, hook=hook, log=seen[check.id]):
            log.append((batch.inputs is None, len(batch.targets), None if batch.probe is None else batch.probe.shape))
            return hook(batch, run)

        check.on_batch = record
    train, val = _images(8 * 32, 6), _images(2 * 32, 7)
    val[:8] = train[:8]
    monitor = _full_pass(checks, ("train", 0, train), ("val", 0, val), ("train", 1, train), ("val", 1, val))
    blocks = [(True, 256, (256, 256)), (True, 64, (64, 256))]
    assert seen["nonfinite-input"][:2] == blocks  # every sample's probe, in blocks
    assert all(probe for probe, _, _ in seen["nonfinite-input"])
    assert sum(rows for _, rows, _ in seen["nonfinite-input"]) == 2 * (256 + 64)
    # the second passes: the batch holding the candidates whole, the rest in blocks again
    assert seen["train-val-overlap"] == blocks + [(False, 32, None), (True, 224, (224, 256))] + [(False, 32, None)] + [
        (True, 32, (32, 256))
    ]
    errors = [f for f in monitor.findings if f.check == "train-val-overlap"]
    assert [(f.severity.value, f.epoch, f.evidence["val_in_train"]) for f in errors] == [("error", 1, 8)]


def test_probes_hashed_in_blocks_are_the_fingerprints_of_each_batch():
    train, val = _copied(seed=9)
    blocks = TrainValOverlap()
    _full_pass([blocks], ("train", 0, train), ("val", 0, val))
    batches = TrainValOverlap()
    _feed(batches, ("train", 0, train), ("val", 0, val))
    for split in ("train", "val"):
        np.testing.assert_array_equal(
            np.sort(blocks._overlap.sets[split].values()), np.sort(batches._overlap.sets[split].values())
        )
    assert blocks._overlap.matched == batches._overlap.matched == 32
    assert blocks._constant == batches._constant == {"train": 0, "val": 8}
    # a one-epoch run: the matches on the probe stay an INFO, no ERROR, as batch by batch
    infos = [f for f in blocks.on_end(RunState()) if f.check == "train-val-overlap"]
    assert [(f.severity.value, f.evidence["unconfirmed"]) for f in infos] == [("info", 32)]


def test_full_pass_compares_mostly_blank_samples_in_full_and_skips_blank_ones():
    """Samples constant on the probe go whole to the check (a block of probes cannot tell a
    blank page from a page with a small mark): blank ones are skipped, marked ones compared in
    full, and blank images in both splits are never copies."""
    rng = np.random.default_rng(3)
    train = np.zeros((320, 3, 32, 32), dtype=np.float32)
    positions = set(probe_positions(3072, 256).tolist())
    free = np.array([i for i in range(3072) if i not in positions])
    for i in range(len(train)):
        train[i].reshape(-1)[rng.choice(free, 4, replace=False)] = rng.random(4)
    train[::10] = 0.0  # blank pages
    val = np.concatenate([train[1:21], np.zeros((12, 3, 32, 32), dtype=np.float32), _images(32, 8)])
    check = TrainValOverlap()
    monitor = _full_pass([check], ("train", 0, train), ("val", 0, val))
    assert check._constant == {"train": 32, "val": 14} and len(check._second) == 0  # two blank in train[1:21]
    errors = [f for f in monitor.findings if f.severity.value == "error"]
    assert len(errors) == 1 and errors[0].evidence["val_in_train"] == 18


def test_live_run_routes_the_confirming_passes_to_candidates_found_in_blocks():
    """A block of validation probes reaches the check at the end of its pass (`end_pass`), so
    the next passes are routed to it while candidates wait: the copies are confirmed in epoch 1."""
    from mlcheck.live import BatchRoute, LiveOptions, LiveRun

    train, val = _images(8 * 32, 6), _images(2 * 32, 7)
    val[32:40] = train[40:48]  # in a full-pass batch (the first of each split is a sampled one)
    options = LiveOptions(train_start_checks=False, sample_batches=1, config=False)
    live = LiveRun(options, [TrainValOverlap()], default_sinks=False)
    routes: dict[tuple[str, int], list[BatchRoute]] = {}
    for split, epoch, x in (("train", 0, train), ("val", 0, val), ("train", 1, train), ("val", 1, val)):
        for i in range(len(x) // 32):
            route = live.route_batch(split)
            routes.setdefault((split, epoch), []).append(route)
            if route is not BatchRoute.SKIP:
                rows = slice(32 * i, 32 * (i + 1))
                live.observe_batch(route, x[rows], np.arange(32) % 3, split=split, step=i, epoch=epoch, index=i)
        live.end_pass(split)
    live.close()
    assert routes["val", 0] == [BatchRoute.SAMPLE, BatchRoute.FULL_PASS]
    assert routes["train", 1] == [BatchRoute.CONFIRM] * 2 + [BatchRoute.SKIP] * 6  # until batch 1 came by
    assert routes["val", 1] == [BatchRoute.CONFIRM] * 2
    errors = [f for f in live.monitor.findings if f.check == "train-val-overlap"]
    assert [(f.severity.value, f.epoch, f.evidence["val_in_train"]) for f in errors] == [("error", 1, 8)]
