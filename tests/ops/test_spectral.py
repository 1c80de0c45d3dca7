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


def _reference(model, feeds):
    from onnx.reference import ReferenceEvaluator
    return ReferenceEvaluator(model).run(None, feeds)[0]


@pytest.mark.parametrize("onesided,window,complex_in", [
    (1, False, False), (1, True, False), (0, True, False), (0, False, True)],
    ids=["onesided", "window", "two-sided-window", "complex"])
def test_stft_against_the_onnx_reference(onesided, window, complex_in, cache_dir):
    """frame_step, window and frame_length as constants: 4 signals of 50 samples, frames of 12
    every 5 samples (8 frames)."""
    inits = {"step": np.array(5, np.int64)}
    if window:
        inits["window"] = np.hanning(12).astype(F32)
    else:
        inits["length"] = np.array(12, np.int64)
    node = helper.make_node("STFT", ["x", "step", "window" if window else "",
                                     "" if window else "length"], ["y"], onesided=onesided)
    model = make_model([node], {"x": (F32, [4, 50, 2 if complex_in else 1])}, ["y"], inits)
    x = np.random.default_rng(3).standard_normal((4, 50, 2 if complex_in else 1)).astype(F32)
    y = nnbuild.compile(model, cache_dir=cache_dir).run({"x": x})["y"]
    assert y.shape == (4, 8, 7 if onesided else 12, 2)
    assert_close(y, _reference(model, {"x": x}))


def test_stft_run_time_frame_step_and_length_are_checked(cache_dir):
    node = helper.make_node("STFT", ["x", "step", "", "length"], ["y"])
    model = make_model([node], {"x": (F32, [1, 64, 1]), "step": (np.int64, []),
                                "length": (np.int64, [])}, {"y": (F32, [1, 7, 9, 2])})
    compiled = nnbuild.compile(model, cache_dir=cache_dir)
    x = np.random.default_rng(4).standard_normal((1, 64, 1)).astype(F32)
    for step, length in ((8, 16), (7, 17), (7, 16)):      # all give 7 frames x 9 bins
        feeds = {"x": x, "step": np.array(step, np.int64), "length": np.array(length, np.int64)}
        assert_close(compiled.run(feeds)["y"], _reference(model, feeds), what=f"{step}/{length}")
    with pytest.raises(Exception, match="shape"):
        compiled.run({"x": x, "step": np.array(4, np.int64), "length": np.array(16, np.int64)})


def test_stft_without_declared_shape_is_data_dependent():
    node = helper.make_node("STFT", ["x", "step", "", "length"], ["y"])
    model = make_model([node], {"x": (F32, [1, 64, 1]), "step": (np.int64, [])}, ["y"],
                       {"length": np.array(16, np.int64)})
    with pytest.raises(nnbuild.ModelError, match="declare a static shape"):
        nnbuild.translate(model)


@pytest.mark.parametrize("mel,dft,rate,lower,upper,dtype", [
    (8, 16, 8192, 0.0, 4096.0, 1), (20, 512, 16000, 125.0, 7600.0, 1),
    (10, 255, 22050, 30.0, 11000.0, 11)], ids=["small", "speech", "odd-f64"])
def test_melweightmatrix_against_the_onnx_reference(mel, dft, rate, lower, upper, dtype,
                                                    cache_dir):
    """The five inputs at run time (declared output shape) and as constants (folded)."""
    names = ["mel", "dft", "rate", "lower", "upper"]
    values = [np.array(mel, np.int64), np.array(dft, np.int64), np.array(rate, np.int64),
              np.array(lower, F32), np.array(upper, F32)]
    node = helper.make_node("MelWeightMatrix", names, ["w"], output_datatype=dtype)
    out_dtype = np.float64 if dtype == 11 else F32
    model = make_model([node], {n: (v.dtype, []) for n, v in zip(names, values)},
                       {"w": (out_dtype, [dft // 2 + 1, mel])})
    feeds = dict(zip(names, values))
    expected = _reference(model, feeds)
    assert_close(nnbuild.compile(model, cache_dir=cache_dir).run(feeds)["w"], expected)
    folded = make_model([node], {}, ["w"], feeds)
    assert_close(nnbuild.compile(folded, cache_dir=cache_dir).run({})["w"], expected)


def test_dft_run_time_axis_with_a_declared_onesided_shape(cache_dir):
    """onesided (or a dft_length) with a run-time axis: the declared shape picks the axes that
    may run; another axis fails the run."""
    node = helper.make_node("DFT", ["x", "", "axis"], ["y"], onesided=1)
    model = make_model([node], {"x": (F32, [2, 8, 6, 1]), "axis": (np.int64, [])},
                       {"y": (F32, [2, 5, 6, 2])}, opset=20)
    compiled = nnbuild.compile(model, cache_dir=cache_dir)
    x = np.random.default_rng(5).standard_normal((2, 8, 6, 1)).astype(F32)
    expected = np.fft.rfft(x[..., 0].astype(np.float64), axis=1)
    for axis in (1, -3):
        y = compiled.run({"x": x, "axis": np.array(axis, np.int64)})["y"]
        assert_close(y, np.stack([expected.real, expected.imag], -1).astype(F32))
    with pytest.raises(Exception, match="shape"):
        compiled.run({"x": x, "axis": np.array(2, np.int64)})


def test_dft_run_time_axis_with_a_length_fitting_two_axes(cache_dir):
    node = helper.make_node("DFT", ["x", "length", "axis"], ["y"])
    model = make_model([node], {"x": (F32, [2, 6, 6, 1]), "axis": (np.int64, [])},
                       {"y": (F32, [2, 6, 6, 2])}, {"length": np.array(6, np.int64)}, opset=20)
    compiled = nnbuild.compile(model, cache_dir=cache_dir)
    x = np.random.default_rng(6).standard_normal((2, 6, 6, 1)).astype(F32)
    for axis in (1, 2):
        expected = np.fft.fft(x[..., 0].astype(np.float64), axis=axis)
        assert_close(compiled.run({"x": x, "axis": np.array(axis, np.int64)})["y"],
                     np.stack([expected.real, expected.imag], -1).astype(F32), what=f"{axis}")
