"""DFT matches onnxruntime and numpy's FFT: real and complex input, every axis, dft_length that
truncates or zero-pads, onesided, inverse, opset 17's axis attribute and opset 20's axis input
(also given at run time), and the one-sided inverse that gives a real signal."""
import numpy as np
import pytest
from onnx import helper

import nnbuild
from nnbuild.testing import assert_close
from helpers import check_against_onnxruntime, make_model

F32 = np.float32


@pytest.mark.parametrize("attrs,length,axis,last", [
    ({}, None, 1, 1),
    ({}, None, 2, 2),
    (dict(inverse=1), None, 1, 2),
    (dict(onesided=1), None, 2, 1),
    ({}, 6, 1, 1),                  # truncated
    ({}, 12, 2, 2),                 # zero-padded
    (dict(onesided=1), 9, 1, 1),
], ids=["real", "complex-axis2", "inverse", "onesided", "truncate", "pad", "onesided-odd"])
def test_dft_opset20_against_onnxruntime(attrs, length, axis, last, cache_dir):
    inits = {"axis": np.array(axis, np.int64)}
    if length is not None:
        inits["length"] = np.array(length, np.int64)
    node = helper.make_node("DFT", ["x", "length" if length else "", "axis"], ["y"], **attrs)
    model = make_model([node], {"x": (F32, [2, 8, 10, last])}, ["y"], inits, opset=20)
    check_against_onnxruntime(model, cache_dir)


def test_dft_opset17_axis_attribute(cache_dir):
    node = helper.make_node("DFT", ["x"], ["y"], axis=2, inverse=1)
    check_against_onnxruntime(make_model([node], {"x": (F32, [3, 4, 7, 2])}, ["y"], opset=17),
                              cache_dir)


def test_dft_axis_given_at_run_time(cache_dir):
    """A run-time axis picks the signal dim when the program runs (the shape stays)."""
    node = helper.make_node("DFT", ["x", "", "axis"], ["y"])
    model = make_model([node], {"x": (F32, [2, 5, 6, 2]), "axis": (np.int64, [])}, ["y"],
                       opset=20)
    compiled = nnbuild.compile(model, cache_dir=cache_dir)
    x = np.random.default_rng(0).standard_normal((2, 5, 6, 2)).astype(F32)
    z = x[..., 0] + 1j * x[..., 1]
    for axis in (1, 2, -2, -3):
        y = compiled.run({"x": x, "axis": np.array(axis, np.int64)})["y"]
        expected = np.fft.fft(z, axis=axis if axis >= 0 else axis + 4)   # of X's rank 4
        assert_close(y, np.stack([expected.real, expected.imag], -1).astype(F32),
                     what=f"axis {axis}")


@pytest.mark.parametrize("n", [None, 9])
def test_dft_onesided_inverse_gives_a_real_signal(n, cache_dir):
    """onesided + inverse: half a spectrum in, numpy's irfft out (length 2 (bins - 1) or n)."""
    inits = {"axis": np.array(1, np.int64)}
    if n:
        inits["length"] = np.array(n, np.int64)
    node = helper.make_node("DFT", ["x", "length" if n else "", "axis"], ["y"], onesided=1,
                            inverse=1)
    model = make_model([node], {"x": (F32, [1, 6, 4, 2])}, ["y"], inits, opset=20)
    spectrum = np.fft.rfft(np.random.default_rng(1).standard_normal((1, 10, 4)), axis=1)
    x = np.stack([spectrum.real, spectrum.imag], -1).astype(F32)
    y = nnbuild.compile(model, cache_dir=cache_dir).run({"x": x})["y"]
    z = x[..., 0].astype(np.float64) + 1j * x[..., 1]
    assert_close(y, np.fft.irfft(z, n=n, axis=1)[..., None].astype(F32))
