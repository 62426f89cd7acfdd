"""KerasTrainable: each method of the `Trainable` interface on real Keras 3 models (torch
backend), and the pre-flight runner over it leaving the user's model untouched."""

from __future__ import annotations

import random

import keras
import numpy as np
import pytest
import torch

import mlcheck
from mlcheck import Severity
from mlcheck.integrations.keras import KerasTrainable
from mlcheck.integrations.keras.trainable import first_layer_kind


def _digits(n: int = 400) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(x))[:n]
    return (x[order] / 16).astype(np.float32), y[order].astype(np.int64)


X, Y = _digits()


def model(
    *,
    dropout: float = 0.0,
    head: str | None = "softmax",
    loss: object = "sparse_categorical_crossentropy",
    optimizer: object = None,
    units: int = 10,
    seed: int = 0,
    last: keras.layers.Layer | None = None,
    compile: bool = True,
) -> keras.Model:
    keras.utils.set_random_seed(seed)
    layers = [
        keras.Input((64,)),
        keras.layers.Dense(16, activation="relu"),
        keras.layers.Dropout(dropout),
        keras.layers.Dense(units, activation=head),
    ]
    if last is not None:
        layers.append(last)
    m = keras.Sequential(layers)
    if compile:
        m.compile(optimizer=optimizer or keras.optimizers.Adam(1e-2), loss=loss)
    return m


def weights(m: keras.Model) -> list[np.ndarray]:
    return [np.array(w) for w in m.get_weights()]


def optimizer_state(m: keras.Model) -> list[np.ndarray]:
    return [np.array(keras.ops.convert_to_numpy(v)) for v in m.optimizer.variables]


def same(a: list[np.ndarray], b: list[np.ndarray]) -> bool:
    return len(a) == len(b) and all(np.array_equal(u, v) for u, v in zip(a, b))


# -- data ----------------------------------------------------------------------------------------


def test_batches_from_arrays_lists_generators_and_datasets():
    t = KerasTrainable(model(), train_data=(X, Y), batch_size=32)
    batches = t.batches("train", 3)
    assert len(batches) == 3 and [len(b[0]) for b in batches] == [32, 32, 32]
    assert np.array_equal(batches[1][0], X[32:64]) and np.array_equal(batches[1][1], Y[32:64])
    assert t.batches("val", 2) == []

    listed = KerasTrainable(model(), train_data=[(X[:8], Y[:8]), (X[8:16], Y[8:16])])
    assert [len(b[0]) for b in listed.batches("train", 5)] == [8, 8]
    as_list = KerasTrainable(model(), train_data=[X, Y], batch_size=16)  # [x, y], not batches
    assert [len(b[1]) for b in as_list.batches("train", 2)] == [16, 16]

    def generator():
        for i in range(0, 64, 16):
            yield X[i : i + 16], Y[i : i + 16]

    assert len(KerasTrainable(model(), train_data=generator()).batches("train", 2)) == 2

    class Digits(keras.utils.PyDataset):
        def __len__(self):
            return 4

        def __getitem__(self, i):
            return X[i * 10 : (i + 1) * 10], Y[i * 10 : (i + 1) * 10]

    py = KerasTrainable(model(), train_data=Digits(), val_data=(X[:20], Y[:20]), batch_size=10)
    assert [len(b[0]) for b in py.batches("train", 2)] == [10, 10]
    assert len(py.batches("val", 9)) == 2


def test_to_numpy_and_from_numpy_round_trip():
    t = KerasTrainable(model(), train_data=(X, Y))
    x, y = t.to_numpy(t.batches()[0])
    assert x.dtype == np.float32 and y.dtype == np.int64 and x.shape == (32, 64)
    rebuilt = t.from_numpy(x[:4], y[:4])
    assert t.to_numpy(rebuilt)[0].shape == (4, 64)
    tensor_batch = (torch.tensor(x), torch.tensor(y))
    assert np.array_equal(t.to_numpy(tensor_batch)[0], x)
    assert t.to_numpy(({"a": x}, y))[0] is None  # nested inputs are not one array


def test_uncompiled_model_needs_loss_and_is_compiled_with_it():
    with pytest.raises(ValueError, match="model.compile"):
        KerasTrainable(model(compile=False), train_data=(X, Y))
    t = KerasTrainable(
        model(compile=False),
        train_data=(X, Y),
        loss="sparse_categorical_crossentropy",
        optimizer=keras.optimizers.SGD(0.1),
    )
    assert t.get_lr() == pytest.approx(0.1)


# -- model ---------------------------------------------------------------------------------------


def test_clone_is_independent_and_starts_where_the_original_is():
    m = model()
    m.fit(X, Y, epochs=1, batch_size=32, verbose=0)  # so the optimizer has state
    t = KerasTrainable(m, train_data=(X, Y))
    before_w, before_opt = weights(m), optimizer_state(m)
    c = t.clone()
    assert same(weights(c.model), before_w)
    assert same(optimizer_state(c.model), before_opt)  # Adam's moments and step count copied
    batch = t.batches()[0]
    np.testing.assert_array_equal(c.forward(batch), t.forward(batch))
    for _ in range(5):
        c.train_step(batch)
    assert not same(weights(c.model), before_w)
    assert same(weights(m), before_w) and same(optimizer_state(m), before_opt)


def test_clone_of_a_scheduled_optimizer_keeps_the_schedule():
    schedule = keras.optimizers.schedules.ExponentialDecay(1e-2, decay_steps=10, decay_rate=0.5)
    m = model(optimizer=keras.optimizers.Adam(schedule))
    m.fit(X, Y, epochs=1, batch_size=32, verbose=0)
    t = KerasTrainable(m, train_data=(X, Y))
    c = t.clone()
    assert c.get_lr() == pytest.approx(t.get_lr()) and t.get_lr() < 1e-2 * 0.5**1.2
    c.set_lr(0.3)
    assert c.get_lr() == pytest.approx(0.3) and t.get_lr() < 1e-2


def test_forward_is_inference_mode_and_loss_matches_evaluate():
    t = KerasTrainable(model(dropout=0.5), train_data=(X, Y))
    batch = t.batches()[0]
    out = t.forward(batch)
    assert out.shape == (32, 10) and np.allclose(out.sum(1), 1, atol=1e-5)
    np.testing.assert_array_equal(out, t.forward(batch))  # dropout off
    expected = t.model.evaluate(batch[0], batch[1], batch_size=32, verbose=0, return_dict=True)["loss"]
    assert t.loss(batch) == pytest.approx(expected, rel=1e-5)


def test_train_step_returns_the_loss_before_the_step_and_learns():
    t = KerasTrainable(model(), train_data=(X, Y)).clone()
    batch = t.batches()[0]
    first = t.loss(batch)
    assert t.train_step(batch) == pytest.approx(first, rel=1e-5)
    for _ in range(30):
        t.train_step(batch)
    assert t.loss(batch) < 0.5 * first


def test_gradients_name_every_parameter_and_none_for_unused_ones():
    class Scale(keras.layers.Layer):
        def build(self, shape):
            self.scale = self.add_weight(shape=(shape[-1],), initializer="ones", name="scale")
            self.unused = self.add_weight(shape=(3,), initializer="zeros", name="unused")

        def call(self, x):
            return x * self.scale

    keras.utils.set_random_seed(0)
    m = keras.Sequential([keras.Input((64,)), Scale(), keras.layers.Dense(10, activation="softmax")])
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    t = KerasTrainable(m, train_data=(X, Y))
    before = weights(m)
    grads = t.gradients(t.batches()[0])
    params = t.parameters()
    assert grads.keys() == params.keys()
    unused = next(k for k in grads if k.endswith("unused"))
    assert grads[unused] is None
    kernel = next(k for k in grads if k.endswith("kernel"))
    assert grads[kernel].shape == params[kernel].shape and np.abs(grads[kernel]).sum() > 0
    assert same(weights(m), before)
    # the gradient is the loss's: a small step against it lowers the loss
    batch = t.batches()[0]
    base = t.loss(batch)
    w = m.get_weights()
    index = [v.path for v in m.weights].index(kernel)
    w[index] = w[index] - 0.5 * grads[kernel]
    m.set_weights(w)
    assert t.loss(batch) < base


def test_input_gradient_is_zero_for_other_rows_unless_samples_mix():
    t = KerasTrainable(model(), train_data=(X, Y))
    batch = t.batches()[0]
    g = t.input_gradient(batch, 3)
    assert g.shape == (32, 64)
    # a softmax output sums to 1 whatever the input; the weighted sum still has a gradient
    assert np.abs(g[3]).max() > 1e-3 and np.abs(np.delete(g, 3, axis=0)).sum() == 0

    keras.utils.set_random_seed(0)
    mixing = keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Lambda(lambda v: v - keras.ops.mean(v, axis=0, keepdims=True)),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    mixing.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    g = KerasTrainable(mixing, train_data=(X, Y)).input_gradient(batch, 3)
    assert np.abs(np.delete(g, 3, axis=0)).max() > 1e-3 * np.abs(g[3]).max() > 0


def test_parameters_and_optimizer_parameters():
    m = model()
    t = KerasTrainable(m, train_data=(X, Y))
    params = t.parameters()
    assert set(params) == {v.path for v in m.trainable_variables}
    assert t.optimizer_parameters() == set(params)  # not built yet: fit would use them all
    m.fit(X[:64], Y[:64], epochs=1, verbose=0)
    assert t.optimizer_parameters() == set(params)
    params[m.trainable_variables[0].path][:] = 0  # a copy, not the live weights
    assert np.abs(m.trainable_variables[0].numpy()).sum() > 0


@pytest.mark.parametrize(
    "kw, expected",
    [
        (
            dict(),
            dict(
                loss="sparse_categorical_crossentropy",
                from_logits=False,
                output_activation="softmax",
                output_units=10,
                task="classification",
            ),
        ),
        (
            dict(head=None, loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True)),
            dict(loss="sparse_categorical_crossentropy", from_logits=True, output_activation="linear"),
        ),
        (
            dict(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True)),
            dict(from_logits=True, output_activation="softmax"),
        ),
        (
            dict(head="sigmoid", units=1, loss=keras.losses.BinaryCrossentropy()),
            dict(loss="binary_crossentropy", from_logits=False, output_activation="sigmoid", output_units=1),
        ),
        (dict(head=None, units=1, loss="mse"), dict(loss="mse", task="regression", output_activation="linear")),
        (
            dict(head=None, last=keras.layers.Softmax(), loss=keras.losses.categorical_crossentropy),
            dict(loss="categorical_crossentropy", from_logits=False, output_activation="softmax"),
        ),
    ],
    ids=["sparse-ce", "logits", "softmax-into-logits", "binary", "mse", "softmax-layer"],
)
def test_loss_config(kw, expected):
    cfg = KerasTrainable(model(**kw), train_data=(X, Y)).loss_config()
    for key, value in expected.items():
        assert getattr(cfg, key) == value, (key, cfg)


def test_get_and_set_lr():
    t = KerasTrainable(model(optimizer=keras.optimizers.SGD(0.05)), train_data=(X, Y))
    assert t.get_lr() == pytest.approx(0.05)
    c = t.clone()
    c.set_lr(0.2)
    assert c.get_lr() == pytest.approx(0.2) and t.get_lr() == pytest.approx(0.05)


def test_first_layer_kind():
    emb = keras.Sequential([keras.Input((5,), dtype="int32"), keras.layers.Embedding(50, 4)])
    resc = keras.Sequential([keras.Input((5,)), keras.layers.Rescaling(1 / 255), keras.layers.Dense(2)])
    assert first_layer_kind(emb) == "embedding_ids"
    assert first_layer_kind(resc) == "rescaled"
    assert first_layer_kind(model()) is None


# -- random state --------------------------------------------------------------------------------


def test_rng_state_covers_python_numpy_torch_keras_and_dropout_seeds():
    t = KerasTrainable(model(dropout=0.5), train_data=(X, Y))
    x = keras.ops.convert_to_tensor(X[:8])

    def draw():
        dropped = keras.ops.convert_to_numpy(t.model(x, training=True))
        return (
            random.random(),
            np.random.rand(),
            torch.rand(1).item(),
            float(keras.ops.convert_to_numpy(keras.random.normal(()))),
            dropped,
        )

    state = t.rng_state()
    first = draw()
    t.clone()  # building a copy draws seeds too
    t.set_rng_state(state)
    second = draw()
    assert first[:4] == second[:4]
    np.testing.assert_array_equal(first[4], second[4])


# -- the pre-flight runner over a Keras model ----------------------------------------------------


def test_sanity_on_a_clean_keras_model_is_silent_and_changes_nothing():
    m = model(dropout=0.2)
    m.fit(X[:64], Y[:64], epochs=1, verbose=0)
    before = (weights(m), optimizer_state(m), random.getstate(), np.random.get_state()[1].copy(), torch.get_rng_state())
    result = mlcheck.sanity({"model": m, "train_data": (X[:300], Y[:300]), "val_data": (X[300:], Y[300:])})
    serious = [f.format() for f in result.findings if f.severity >= Severity.WARNING]
    assert serious == []
    assert same(weights(m), before[0]) and same(optimizer_state(m), before[1])
    assert random.getstate() == before[2] and np.array_equal(np.random.get_state()[1], before[3])
    assert torch.equal(torch.get_rng_state(), before[4])


def test_sanity_finds_softmax_fed_to_a_from_logits_loss():
    m = model(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    result = mlcheck.sanity({"model": m, "train_data": (X[:300], Y[:300])}, select=["output-loss-mismatch"])
    assert "output-loss-mismatch" in {f.check for f in result.findings if f.severity >= Severity.WARNING}


def test_sanity_finds_samples_mixed_inside_a_softmax_model():
    keras.utils.set_random_seed(0)
    mixing = keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Lambda(lambda v: v - keras.ops.mean(v, axis=0, keepdims=True)),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    mixing.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    result = mlcheck.sanity({"model": mixing, "train_data": (X[:64], Y[:64])}, select=["batch-dependence"])
    assert "batch-dependence" in {f.check for f in result.findings}


# -- input kind and run facts (mlcheck.task) ------------------------------------------------------


class EmbeddingBag(keras.layers.Layer):
    """torch's EmbeddingBag in Keras: the mean of the embeddings of a row of token ids."""

    def __init__(self, input_dim: int, output_dim: int, **kwargs):
        super().__init__(**kwargs)
        self.input_dim, self.output_dim = input_dim, output_dim
        self.table = self.add_weight(shape=(input_dim, output_dim), initializer="uniform")

    def call(self, ids):
        return keras.ops.mean(keras.ops.take(self.table, keras.ops.cast(ids, "int32"), axis=0), axis=1)

    def get_config(self):
        return {**super().get_config(), "input_dim": self.input_dim, "output_dim": self.output_dim}


def _bag_model() -> keras.Model:
    keras.utils.set_random_seed(0)
    m = keras.Sequential([keras.Input((6,)), EmbeddingBag(1000, 8), keras.layers.Dense(3, activation="softmax")])
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return m


def test_embedding_bag_and_embedding_subclasses_take_ids():
    assert first_layer_kind(_bag_model()) == "embedding_ids"
    reversible = keras.Sequential([keras.Input((5,), dtype="int32"), keras.layers.ReversibleEmbedding(50, 4)])
    assert first_layer_kind(reversible) == "embedding_ids"
    assert KerasTrainable(_bag_model(), train_data=(X, Y)).input_kind() == "embedding_ids"


def test_float_token_ids_into_an_embedding_bag_are_not_unnormalized():
    ids = np.random.default_rng(0).integers(0, 1000, (256, 6)).astype(np.float32)  # Keras casts them
    labels = np.random.default_rng(1).integers(0, 3, 256)
    result = mlcheck.sanity({"model": _bag_model(), "train_data": (ids, labels)}, select=["unnormalized-input"])
    assert not result.findings, [f.format() for f in result.findings]


def test_run_info_facts_from_the_loss():
    from mlcheck.integrations.keras.trainable import run_info_facts

    facts = run_info_facts(model(loss="sparse_categorical_crossentropy"))
    assert (facts["task"], facts["num_classes"]) == ("classification", 10)
    facts = run_info_facts(model(head="sigmoid", units=4, loss="binary_crossentropy"))  # multi-label
    assert (facts["task"], facts["num_classes"]) == ("classification", 2)
    # hinge losses have no ln(C) chance level: no class count, so no chance-level comparison
    facts = run_info_facts(model(head=None, loss="categorical_hinge"))
    assert (facts["task"], facts["num_classes"]) == ("classification", None)
    facts = run_info_facts(model(head=None, units=1, loss=keras.losses.MeanSquaredError()))
    assert (facts["task"], facts["num_classes"]) == ("regression", None)


def _named_inputs_model() -> keras.Model:
    keras.utils.set_random_seed(0)
    a, b = keras.Input((40,), name="a"), keras.Input((24,), name="b")
    hidden = keras.layers.Dense(16, activation="relu")(keras.layers.Concatenate()([a, b]))
    net = keras.Model({"a": a, "b": b}, keras.layers.Dense(10)(hidden))
    net.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return net


def test_a_model_with_named_inputs_is_checked_from_a_dict_of_arrays():
    """({"a": xa, "b": xb}, y) was iterated as if it were a list of batches (the dict, then y):
    `mlcheck sanity` exited 2 with "computing the loss ... raised ValueError: Invalid dtype:
    object", blamed on the user's code."""
    data = ({"a": X[:, :40], "b": X[:, 40:]}, Y)
    trainable = KerasTrainable(_named_inputs_model(), data, batch_size=32)
    first, second = trainable.batches("train", 2)
    assert set(first[0]) == {"a", "b"} and first[0]["a"].shape == (32, 40) and first[1].shape == (32,)
    np.testing.assert_array_equal(second[0]["b"], X[32:64, 40:])
    assert trainable.forward(first).shape == (32, 10)
    result = mlcheck.sanity({"model": trainable.model, "train_data": data}, select=["loss-at-init", "overfit-batch"])
    assert not result.failed and all(f.severity is Severity.INFO for f in result.findings), result.findings


def test_a_model_with_several_outputs_is_judged_on_its_first():
    """A forward pass of a two-output model raised "setting an array element with a sequence"
    (numpy joining outputs of two shapes), reported as the user's forward pass failing."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((64,))
    hidden = keras.layers.Dense(16, activation="relu")(inputs)
    net = keras.Model(inputs, [keras.layers.Dense(10)(hidden), keras.layers.Dense(1)(hidden)])
    net.compile(optimizer="adam", loss=[keras.losses.SparseCategoricalCrossentropy(from_logits=True), "mse"])
    trainable = KerasTrainable(net, (X, (Y, X[:, :1])), batch_size=32)
    batch = trainable.batches("train", 1)[0]
    assert batch[1][0].shape == (32,) and batch[1][1].shape == (32, 1)
    assert trainable.forward(batch).shape == (32, 10)
    assert np.isfinite(trainable.loss(batch))


def test_every_preflight_check_runs_on_a_model_with_several_outputs():
    """The checks that cut a small batch or zero its inputs rebuilt it from numpy, which cannot
    hold the targets of two outputs: five of them failed ("y_true and y_pred have different
    structures"; batch-dependence took the gradient of a list of outputs) and were reported as
    bugs in mlcheck. Batches are now cut keeping their structure, and the input gradient is of
    the first output."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((64,))
    hidden = keras.layers.Dense(16, activation="relu")(inputs)
    net = keras.Model(inputs, [keras.layers.Dense(10)(hidden), keras.layers.Dense(1)(hidden)])
    net.compile(optimizer="adam", loss=[keras.losses.SparseCategoricalCrossentropy(from_logits=True), "mse"])
    trainable = KerasTrainable(net, (X, (Y, X[:, :1])), batch_size=32)
    head = trainable.head(trainable.batches("train", 1)[0], 16)
    assert head[1][0].shape == (16,) and head[1][1].shape == (16, 1)
    result = mlcheck.sanity({"model": net, "train_data": (X, (Y, X[:, :1]))})
    assert [c.check for c in result.checks if c.status == "failed"] == []
    assert {"overfit-batch", "input-independence", "batch-dependence", "unused-parameters"} <= {
        c.check for c in result.checks if c.status == "ok"
    }
    assert not any(f.severity >= Severity.WARNING for f in result.findings), result.findings
