"""TfIdfVectorizer counts a compile-time pool's n-grams in integer token rows as onnxruntime
does: unigrams once, longer n-grams once per skip distance, only lengths in [min, max]; IDF and
TFIDF weight by output column (weights or 1); string pools are refused."""
import numpy as np
import pytest
from onnx import helper

import nnbuild
from helpers import check_against_onnxruntime, make_model

# 1-grams 2, 3, 5, 4; 2-grams (5, 6), (7, 8), (6, 7); 3-gram (2, 3, 5)
POOL = dict(pool_int64s=[2, 3, 5, 4, 5, 6, 7, 8, 6, 7, 2, 3, 5], ngram_counts=[0, 4, 10],
            ngram_indexes=[0, 1, 2, 3, 4, 5, 6, 7])


def _model(dtype, shape, mode="TF", lo=1, hi=3, skip=2, weights=None):
    attrs = dict(POOL, mode=mode, min_gram_length=lo, max_gram_length=hi, max_skip_count=skip)
    if weights is not None:
        attrs["weights"] = weights
    node = helper.make_node("TfIdfVectorizer", ["x"], ["y"], **attrs)
    return make_model([node], {"x": (dtype, shape)}, ["y"], opset=9)


def _tokens(dtype, shape, seed=0):
    return np.random.default_rng(seed).integers(1, 10, shape).astype(dtype)


@pytest.mark.parametrize("dtype", [np.int32, np.int64])
@pytest.mark.parametrize("shape", [[16], [3, 12]])
@pytest.mark.parametrize("lo,hi,skip", [(1, 1, 0), (1, 3, 2), (2, 2, 5), (2, 3, 0)])
def test_tf_counts_match_onnxruntime(cache_dir, dtype, shape, lo, hi, skip):
    model = _model(dtype, shape, lo=lo, hi=hi, skip=skip)
    out = check_against_onnxruntime(model, cache_dir, {"x": _tokens(dtype, shape)})
    assert out["y"].shape == tuple(shape[:-1]) + (8,)


@pytest.mark.parametrize("mode", ["IDF", "TFIDF"])
@pytest.mark.parametrize("weights", [None, [0.5, 1.5, 2.0, 0.25, 3.0, 1.0, 0.75, 4.0]])
def test_weighted_modes_match_onnxruntime(cache_dir, mode, weights):
    model = _model(np.int64, [4, 20], mode=mode, weights=weights)
    check_against_onnxruntime(model, cache_dir, {"x": _tokens(np.int64, [4, 20], seed=3)})


def test_a_repeated_bigram_counts_at_every_skip_distance(cache_dir):
    node = helper.make_node("TfIdfVectorizer", ["x"], ["y"], mode="TF", min_gram_length=1,
                            max_gram_length=2, max_skip_count=1, pool_int64s=[1, 1, 1],
                            ngram_counts=[0, 1], ngram_indexes=[0, 1])
    model = make_model([node], {"x": (np.int32, [4])}, ["y"], opset=9)
    out = nnbuild.compile(model, cache_dir=cache_dir).run({"x": np.ones(4, np.int32)})
    # four unigrams; bigrams (1, 1): three at distance 1, two at distance 2
    np.testing.assert_array_equal(out["y"], [4.0, 5.0])


def test_string_pool_is_refused():
    node = helper.make_node("TfIdfVectorizer", ["x"], ["y"], mode="TF", min_gram_length=1,
                            max_gram_length=1, max_skip_count=0, pool_strings=["a", "b"],
                            ngram_counts=[0], ngram_indexes=[0, 1])
    model = make_model([node], {"x": (np.int64, [4])}, ["y"], opset=9)
    with pytest.raises(nnbuild.ModelError, match="pool_strings"):
        nnbuild.translate(model)
