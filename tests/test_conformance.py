"""The ONNX conformance runner: a fixed representative subset of the official cases passes
through the whole pipeline in one batched build; the classifier, the build-log reader and the
table writer behave as specified. The full sweep is `nnbuild conformance` (docs/conformance.md).
"""
from __future__ import annotations

import json
import re

import numpy as np
import onnx
import pytest
from onnx import helper

from nnbuild.conformance import cases as conformance_cases
from nnbuild.conformance import report, runner
from nnbuild.conformance.results import (BUILD_ERROR, COMPILER_ERROR, DATA_DEPENDENT, MISMATCH,
                                         PASSED, RUNTIME_ERROR, UNSUPPORTED_ATTR, UNSUPPORTED_OP,
                                         Result, classify_error, missing_ops)
from nnbuild.errors import ModelError

# Cases across the op families nnbuild implements; every one must pass. Shape-like inputs
# (Reshape shape, Slice starts, Resize scales, reduction axes...) are graph inputs in the node
# tests; this subset freezes them to the test data (runner.run(freeze=True)).
REPRESENTATIVE = """
node/test_abs node/test_add_bcast node/test_add_uint8 node/test_sub_int16 node/test_mul_example
node/test_div_bcast node/test_div_int32_trunc node/test_pow_bcast_array
node/test_pow_types_int64_float32 node/test_relu node/test_sigmoid node/test_tanh node/test_exp
node/test_log node/test_sqrt node/test_neg node/test_reciprocal node/test_floor node/test_ceil
node/test_round node/test_erf node/test_sin node/test_cos node/test_clip
node/test_clip_default_int8_min node/test_leakyrelu node/test_elu node/test_selu
node/test_hardsigmoid node/test_hardswish node/test_softplus node/test_softsign
node/test_prelu_broadcast node/test_where_example node/test_equal_bcast
node/test_greater_equal_bcast node/test_less_int8 node/test_and_bcast4v3d node/test_or3d
node/test_xor_bcast3v1d node/test_not_2d node/test_max_int8 node/test_min_float64
node/test_mean_two_inputs node/test_sum_example node/test_cast_FLOAT16_to_FLOAT
node/test_cast_DOUBLE_to_FLOAT

node/test_basic_conv_with_padding node/test_conv_with_strides_and_asymmetric_padding
node/test_conv_with_autopad_same pytorch-converted/test_Conv1d_groups
pytorch-converted/test_Conv2d_depthwise_strided pytorch-converted/test_Conv3d_dilated_strided
node/test_convtranspose node/test_convtranspose_1d node/test_convtranspose_group_2
node/test_convtranspose_pads pytorch-converted/test_ConvTranspose2d

node/test_maxpool_2d_pads node/test_maxpool_2d_ceil node/test_maxpool_2d_dilations
node/test_maxpool_1d_default node/test_maxpool_with_argmax_2d_precomputed_pads
node/test_averagepool_2d_pads_count_include_pad node/test_averagepool_2d_same_lower
node/test_averagepool_2d_ceil pytorch-converted/test_AvgPool3d_stride
pytorch-converted/test_MaxPool2d_stride_padding_dilation node/test_globalaveragepool
node/test_globalmaxpool

node/test_gemm_all_attributes node/test_gemm_transposeA node/test_gemm_default_scalar_bias
node/test_matmul_4d node/test_matmul_bcast node/test_matmul_1d_3d pytorch-converted/test_Linear
pytorch-operator/test_operator_addmm
node/test_attention_4d_fp16 node/test_attention_3d_causal_bf16 node/test_flexattention_fp16
node/test_causal_conv_with_state_fp16 node/test_einsum_batch_diagonal
node/test_einsum_batch_matmul_bfloat16 node/test_det_nd node/test_lstm_with_peepholes
node/test_lstm_bidirectional node/test_gru_seq_length node/test_gru_bidirectional
node/test_simple_rnn_batchwise node/test_rnn_seq_length node/test_dft_inverse node/test_dft_rfft
node/test_dft_irfft_opset19

node/test_reshape_negative_dim node/test_reshape_zero_and_negative_dim
node/test_transpose_all_permutations_3 node/test_transpose_default node/test_slice_neg_steps
node/test_slice_negative_axes node/test_concat_3d_axis_negative_2 node/test_concat_1d_axis_0
node/test_gather_2d_indices node/test_gather_negative_indices
node/test_gather_elements_negative_indices node/test_flatten_negative_axis2
node/test_split_2d_uneven_split_opset18 node/test_split_equal_parts_default_axis_opset13
node/test_unsqueeze_unsorted_axes node/test_squeeze node/test_depthtospace_crd_mode_example
node/test_spacetodepth_example node/test_tile node/test_expand_dim_changed
node/test_constant_pad pytorch-operator/test_operator_repeat
pytorch-converted/test_ReflectionPad2d pytorch-converted/test_ZeroPad2d
node/test_shape_start_1_end_negative_1 node/test_size_example

node/test_softmax_axis_0 node/test_softmax_default_axis_expanded node/test_logsoftmax_axis_1
pytorch-converted/test_log_softmax_dim3 pytorch-converted/test_softmax_lastdim

node/test_reduce_sum_keepdims_random node/test_reduce_mean_keepdims_random
node/test_reduce_max_default_axes_keepdims_random node/test_reduce_min_do_not_keepdims_random
node/test_reduce_prod_default_axes_keepdims_random node/test_reduce_l2_keep_dims_random
node/test_reduce_log_sum_exp_keepdims_random
node/test_reduce_sum_square_negative_axes_keepdims_random
pytorch-operator/test_operator_reduced_mean_keepdim

node/test_batchnorm_epsilon node/test_batchnorm_example pytorch-converted/test_BatchNorm3d_eval
node/test_instancenorm_epsilon node/test_layer_normalization_4d_axis1
node/test_layer_normalization_3d_axis_negative_2_epsilon node/test_lrn
node/test_group_normalization_example_expanded node/test_mvn_expanded

node/test_resize_upsample_scales_nearest node/test_resize_upsample_scales_linear
node/test_resize_upsample_scales_cubic node/test_resize_downsample_sizes_nearest
node/test_resize_tf_crop_and_resize node/test_resize_upsample_sizes_nearest_axes_3_2
node/test_resize_downsample_scales_linear_half_pixel_symmetric
node/test_resize_downsample_scales_linear_align_corners

node/test_castlike_FLOAT_to_FLOAT16 node/test_mod_mixed_sign_int32 node/test_mod_mixed_sign_float32
node/test_bitshift_right_uint8 node/test_bitwise_xor_i16_3d node/test_atanh node/test_sign
node/test_isinf_negative node/test_gelu_tanh_2 node/test_shrink_soft node/test_mish
pytorch-operator/test_operator_add_broadcast pytorch-converted/test_PReLU_2d_multiparam
node/test_argmax_negative_axis_keepdims_random_select_last_index node/test_hardmax_axis_0
node/test_cumsum_2d_axis_1 node/test_triu_neg node/test_eyelike_with_dtype
node/test_nllloss_NCd1d2d3_none_no_weight_negative_ii node/test_sce_mean_weight_ii_3d_log_prob
node/test_rms_normalization_3d_axis1_epsilon node/test_softmax_example_expanded_ver18
node/test_quantizelinear_blocked_asymmetric node/test_dequantizelinear_axis
node/test_dynamicquantizelinear node/test_qlinearmatmul_3D_int8_float16
node/test_cast_no_saturate_FLOAT_to_FLOAT8E4M3FN node/test_cast_FLOAT16_to_FLOAT8E5M2FNUZ
node/test_cast_e8m0_FLOAT_to_FLOAT8E8M0 node/test_cast_FLOAT_to_FLOAT4E2M1
node/test_cast_FLOAT_to_UINT2 node/test_castlike_INT4_to_FLOAT_expanded
node/test_quantizelinear_int4 node/test_quantizelinear_e4m3fn node/test_dequantizelinear_float4e2m1
node/test_dequantizelinear_e5m2 node/test_training_dropout_mask
node/test_batchnorm_example_training_mode
node/test_scatter_elements_with_duplicate_indices node/test_scatternd_add
node/test_gathernd_example_int32_batch_dim1 node/test_l2normalization_axis_1
node/test_lppool_2d_pads node/test_bitcast_float32_to_int32 node/test_spacetodepth_crd_mode_example
node/test_convtranspose_output_shape node/test_mvn node/test_attention_3d_gqa
node/test_gridsample_reflection_padding node/test_gridsample_volumetric_bilinear_align_corners_1
node/test_gridsample_bicubic_align_corners_1_additional_1 node/test_affine_grid_3d_align_corners
node/test_adam_multiple node/test_nesterov_momentum node/test_adagrad
node/test_ai_onnx_ml_tree_ensemble_set_membership node/test_ai_onnx_ml_array_feature_extractor
node/test_nonmaxsuppression_two_classes node/test_nonmaxsuppression_center_point_box_format
node/test_top_k_smallest node/test_top_k_uint64 node/test_onehot_with_negative_axis
node/test_compress_default_axis node/test_nonzero_example
node/test_tfidfvectorizer_tf_batch_uniandbigrams_skip5 node/test_col2im_pads node/test_col2im_5d
node/test_deform_conv_with_mask_bias node/test_deform_conv_with_multiple_offset_groups
node/test_convinteger_with_padding node/test_qlinearconv node/test_maxpool_2d_uint8
node/test_maxunpool_export_with_output_shape node/test_roialign_mode_max
node/test_if node/test_loop11 node/test_scan9_multi_state node/test_scan_sum
node/test_linear_attention_gated_delta node/test_linear_attention_prefill_with_past_expanded
node/test_optional_get_element_tensor node/test_optional_has_element_empty_no_input_optional_input
node/test_identity_sequence node/test_identity_opt node/test_if_seq
node/test_sequence_insert_at_back node/test_sequence_map_add_2_sequences
node/test_sequence_map_identity_1_sequence_1_tensor_expanded
node/test_optional_get_element_optional_sequence
node/test_optional_has_element_empty_optional_input node/test_split_to_sequence_nokeepdims
node/test_loop16_seq_none
""".split()


def _select(ids) -> list:
    pattern = "^(" + "|".join(re.escape(i) for i in ids) + ")$"
    return conformance_cases.collect("all", pattern)


def test_representative_subset_passes_in_one_batch(tmp_path):
    cases = _select(REPRESENTATIVE)
    assert sorted(c.id for c in cases) == sorted(REPRESENTATIVE)
    sweep = runner.run(cases, str(tmp_path / "batch"), freeze=True, log=lambda _: None)
    failures = [f"{r.id} [{r.category}] {r.reason}" for r in sweep.results if not r.passed]
    assert not failures, f"{len(failures)} of {len(cases)} failed:\n" + "\n".join(failures)
    # every case sat in the one batched super-project
    cmake = (tmp_path / "batch" / "CMakeLists.txt").read_text()
    assert cmake.count("add_subdirectory(") == len(cases)


# The cases that reach a target's own kernels (GEMM, convolution, depthwise, pooling,
# softmax, normalisation, recurrent, attention, elementwise math): they pass generated for this
# machine's best target too (`nnbuild conformance --target host`), not only the reference.
TARGET_KERNELS = """
node/test_basic_conv_with_padding node/test_conv_with_strides_and_asymmetric_padding
node/test_conv_with_autopad_same pytorch-converted/test_Conv1d_groups
pytorch-converted/test_Conv2d_depthwise_strided pytorch-converted/test_Conv2d_depthwise_padded
pytorch-converted/test_Conv3d_dilated_strided node/test_convtranspose node/test_convtranspose_pads
node/test_maxpool_2d_pads node/test_maxpool_2d_ceil node/test_averagepool_2d_pads_count_include_pad
node/test_globalaveragepool pytorch-converted/test_MaxPool2d_stride_padding_dilation
node/test_gemm_all_attributes node/test_gemm_transposeA node/test_matmul_4d node/test_matmul_bcast
pytorch-converted/test_Linear node/test_softmax_axis_0 node/test_logsoftmax_axis_1
node/test_layer_normalization_4d_axis1 node/test_batchnorm_epsilon node/test_lstm_with_peepholes
node/test_gru_bidirectional node/test_attention_4d_fp16 node/test_attention_3d_causal_bf16
node/test_sigmoid node/test_tanh node/test_exp node/test_erf node/test_gelu_tanh_2
""".split()


def test_target_kernels_pass_on_this_machines_target(tmp_path):
    from nnbuild import targets
    best = targets.host().name
    if best == "generic":
        pytest.skip("this machine runs the generic target only")
    cases = _select(TARGET_KERNELS)
    assert sorted(c.id for c in cases) == sorted(TARGET_KERNELS)
    sweep = runner.run(cases, str(tmp_path / "batch"), freeze=True, log=lambda _: None,
                       target=best)
    failures = [f"{r.id} [{r.category}] {r.reason}" for r in sweep.results if not r.passed]
    assert not failures, f"{best}: {len(failures)} of {len(cases)} failed:\n" + "\n".join(failures)
    for case in (tmp_path / "batch" / "cases").iterdir():     # generated against its kernels
        assert json.loads((case / "nnbuild.json").read_text())["target"] == best


def test_cli_refuses_a_target_this_machine_can_neither_run_nor_emulate(capsys, monkeypatch):
    from nnbuild.cli import main
    from nnbuild.conformance import platforms
    monkeypatch.setattr(platforms.platform, "machine", lambda: "x86_64")
    monkeypatch.setattr(platforms.targets, "cpu_flags", lambda: frozenset({"sse2"}))
    monkeypatch.setattr(platforms.shutil, "which", lambda tool: None)
    for target, says in (("x86-avx2", "this machine runs generic"),
                         ("arm64-neon", "apt-get install gcc-aarch64-linux-gnu qemu-user")):
        assert main(["conformance", "--filter", "node/test_abs$", "--target", target]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and f"--target {target}" in err[0] and says in err[0], err


def test_a_kept_batch_rerun_for_another_toolchain_is_configured_afresh(tmp_path):
    build = tmp_path / "build"
    build.mkdir()
    (build / "build.ninja").write_text("native")
    assert runner._configuration(str(build), None) == []          # first run: native
    assert not build.exists()
    build.mkdir()
    (build / "build.ninja").write_text("native")
    assert runner._configuration(str(build), None) == []          # same: kept (incremental)
    assert (build / "build.ninja").exists()
    assert runner._configuration(str(build), "/tc/aarch64.cmake") == \
        ["-DCMAKE_TOOLCHAIN_FILE=/tc/aarch64.cmake"]
    assert not build.exists()                                      # cross: configured afresh
    assert (tmp_path / runner.CONFIGURED).read_text() == "/tc/aarch64.cmake\n"


# The NEON kernels' cases, cross-built for arm64-neon and run under qemu-aarch64 when this
# machine is not arm64 (a native run where it is).
NEON_KERNELS = """
node/test_basic_conv_with_padding pytorch-converted/test_Conv2d_depthwise_strided
node/test_maxpool_2d_pads node/test_gemm_all_attributes node/test_matmul_4d
node/test_softmax_axis_0 node/test_lstm_with_peepholes node/test_attention_4d_fp16
node/test_erf
""".split()


def test_arm64_neon_cases_pass_cross_built_or_native(tmp_path):
    from nnbuild.conformance import platforms
    from nnbuild.errors import UsageError
    try:
        where = platforms.platform_for("arm64-neon")
    except UsageError as e:
        pytest.skip(str(e))
    cases = _select(NEON_KERNELS)
    sweep = runner.run(cases, str(tmp_path / "batch"), freeze=True, log=lambda _: None,
                       target="arm64-neon")
    failures = [f"{r.id} [{r.category}] {r.reason}" for r in sweep.results if not r.passed]
    assert not failures, f"{where.describe()}: " + "\n".join(failures)
    if where.emulated:                      # the drivers are AArch64 programs (ELF e_machine)
        driver = next((tmp_path / "batch" / "build").glob("driver_*"))
        assert driver.read_bytes()[18] == 183


# Cases whose shape-like graph inputs are read at run time (not frozen): the declared output
# shape, checked by the generated code (docs/architecture.md, "Values known only at run time").
RUNTIME_VALUES = """
node/test_reduce_sum_do_not_keepdims_random node/test_reduce_l1_keep_dims_example
node/test_reduce_log_sum_exp_negative_axes_keepdims_random node/test_reduce_max_bool_inputs
node/test_resize_upsample_scales_cubic_align_corners node/test_resize_tf_crop_and_resize_axes_3_2
node/test_resize_downsample_sizes_nearest_not_smaller node/test_upsample_nearest
node/test_reshape_allowzero_reordered node/test_slice_neg_steps
node/test_split_variable_parts_2d_opset18
node/test_squeeze_negative_axes node/test_unsqueeze_unsorted_axes node/test_tile
node/test_expand_dim_changed node/test_constantofshape_int_shape_zero node/test_wrap_pad
node/test_range_int32_type_negative_delta
node/test_stft node/test_stft_with_window node/test_melweightmatrix node/test_dft_rfft
node/test_dft_irfft node/test_unique_bfloat16_sorted_without_axis node/test_unique_length_1
""".split()


def test_runtime_shape_values_pass_unfrozen(tmp_path):
    cases = _select(RUNTIME_VALUES)
    assert sorted(c.id for c in cases) == sorted(RUNTIME_VALUES)
    sweep = runner.run(cases, str(tmp_path / "batch"), freeze=False, log=lambda _: None)
    failures = [f"{r.id} [{r.category}] {r.reason}" for r in sweep.results
                if not r.passed or r.frozen]
    assert not failures, f"{len(failures)} of {len(cases)} failed:\n" + "\n".join(failures)


def _inject(monkeypatch, edits: dict):
    """Make runner._generate alter the generated C source of the named prefixes."""
    original = runner._generate

    def generate(model, prefix, *args, **kwargs):
        graph, project = original(model, prefix, *args, **kwargs)
        if prefix in edits:
            src = f"src/{prefix}.c"
            project.files[src] = edits[prefix](project.files[src].decode(), prefix).encode()
        return graph, project
    monkeypatch.setattr(runner, "_generate", generate)


def _fake_op_case():
    x = helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [2])
    model = helper.make_model(
        helper.make_graph([helper.make_node("NoSuchOp", ["x"], ["y"], domain="test.fake")], "g",
                          [x], [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [2])]),
        opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("test.fake", 1)])
    data = np.ones(2, np.float32)
    return conformance_cases.Case("node", "test_fake", "NoSuchOp", model, [([data], [data])])


def _crash_in_run(text: str, prefix: str) -> str:
    """Write through a null pointer at the end of <prefix>_run_ws."""
    start = text.index(f"int {prefix}_run_ws(")
    end = text.index(f"return {prefix.upper()}_OK;", start)
    return text[:end] + "*(volatile int *)0 = 0;\n    " + text[end:]


def test_failures_are_classified_per_case_and_the_rest_still_runs(tmp_path, monkeypatch):
    cases = _select(["node/test_abs", "node/test_neg", "node/test_relu", "node/test_sigmoid"])
    cases.insert(1, _fake_op_case())
    by_id = {c.id: c for c in cases}
    # c0000 abs: fine; c0001 a made-up op: unsupported; c0002 neg: does not compile;
    # c0003 relu: crashes; c0004 sigmoid: expected outputs off by one -> mismatch
    _inject(monkeypatch, {
        "c0002": lambda text, p: "#error injected by the test\n" + text,
        "c0003": _crash_in_run,
    })
    sigmoid = by_id["node/test_sigmoid"]
    (inputs, outputs), = sigmoid.load_data()
    sigmoid.data_sets = [(inputs, [outputs[0] + 1])]
    sweep = runner.run(cases, str(tmp_path / "batch"), jobs=1, log=lambda _: None)
    got = {r.id: r for r in sweep.results}
    assert got["node/test_abs"].category == PASSED
    assert got["node/test_fake"].category == UNSUPPORTED_OP
    assert got["node/test_fake"].missing_ops == ["test.fake::NoSuchOp"]
    assert got["node/test_neg"].category == BUILD_ERROR
    assert "injected by the test" in got["node/test_neg"].reason
    assert got["node/test_relu"].category == RUNTIME_ERROR
    assert "crashed" in got["node/test_relu"].reason
    assert got["node/test_sigmoid"].category == MISMATCH
    assert got["node/test_sigmoid"].max_abs == pytest.approx(1.0, rel=1e-3)


def test_classify_translation_errors():
    def category(message):
        return classify_error(ModelError(message))[0]
    assert category("<ModelProto>: unsupported ops: Mod (node a, opset 22)") == UNSUPPORTED_OP
    assert category("m: opset 6 is older than supported for Add (node x)") == UNSUPPORTED_OP
    assert category("m: node r (Reshape): shape s must be known at compile time "
                    "(data-dependent shapes are not supported)") == DATA_DEPENDENT
    assert category("m: input 'x' has symbolic shape [N,3]; bind it") == DATA_DEPENDENT
    assert category("m: input 'x': unsupported tensor element type STRING") == UNSUPPORTED_ATTR
    assert category("m: node p (Pad): mode 'wrap' is not supported (supported: x)") \
        == UNSUPPORTED_ATTR
    assert category("m: node c (Conv): output [2] gets a negative dimension") == COMPILER_ERROR
    assert classify_error(KeyError("x"))[0] == COMPILER_ERROR
    assert classify_error(KeyError("x"))[1].startswith("internal error: KeyError")
    assert classify_error(NotImplementedError("Foo has no kernel"))[:1] == (UNSUPPORTED_OP,)


def test_unsupported_op_reason_names_each_op_once():
    category, reason, ops = classify_error(ModelError(
        "<ModelProto>: unsupported ops: CastLike (node a, opset 22); Mod (node <unnamed>, "
        "opset 22); CastLike (node b, opset 22); ai.onnx.preview::FlexAttention (node c, opset 1)"))
    assert ops == ["CastLike", "Mod", "ai.onnx.preview::FlexAttention"]
    assert reason == "unsupported ops: CastLike, Mod, ai.onnx.preview::FlexAttention"
    assert missing_ops("opset 6 is older than supported for Add (node x); Mul (node y)") == \
        ["Add (old opset)", "Mul (old opset)"]


def _model(*ops, name="test"):
    nodes = [helper.make_node(op, ["x"], [f"y{i}"]) for i, op in enumerate(ops)]
    graph = helper.make_graph(nodes, name, [], [])
    return helper.make_model(graph)


def test_op_under_test():
    schemas = {"reducesum": "ReduceSum", "reducesumsquare": "ReduceSumSquare", "conv": "Conv",
               "convtranspose": "ConvTranspose", "softmax": "Softmax"}
    assert conformance_cases.op_under_test("test_anything", _model("Constant", "Relu"),
                                           schemas) == "Relu"
    assert conformance_cases.op_under_test("test_reduce_sum_square_keepdims",
                                           _model("Mul", "ReduceSum"), schemas) \
        == "ReduceSumSquare"
    assert conformance_cases.op_under_test("test_softmax_axis_0_expanded",
                                           _model("Exp"), schemas) == "Softmax"
    assert conformance_cases.op_under_test("test_weird", _model("Reshape", "Exp", "Mul"),
                                           schemas) == "Exp+Mul"


def test_build_log_blames_cases_and_drivers():
    drivers = runner.group_drivers(["c0000", "c0001", "c0002", "c0003"], alone=set(), size=2)
    assert [d["cases"] for d in drivers] == [["c0000", "c0001"], ["c0002", "c0003"]]
    log = "\n".join([
        "[1/9] Building C object cases/c0000/CMakeFiles/c0000.dir/src/c0000.c.o",
        "FAILED: [code=1] cases/c0001/CMakeFiles/c0001.dir/src/c0001.c.o ",
        "/usr/bin/cc -O3 -c /w/cases/c0001/src/c0001.c",
        "/w/cases/c0001/src/c0001.c: In function 'c0001_run_ws':",
        "/w/cases/c0001/src/c0001.c:12:5: error: 'x' undeclared",
        "[2/9] Linking C executable driver_001",
        "FAILED: driver_001 ",
        ": && /usr/bin/cc driver_001.c.o -o driver_001 cases/c0002/libc0002.a && :",
        "/usr/bin/ld: cases/c0003/libc0003.a(c0003.c.o): in function `c0003_run_ws':",
        "c0003.c:(.text+0x1c): undefined reference to `c0003_missing'",
        "collect2: error: ld returned 1 exit status",
        "FAILED: driver_000 ",
        ": && /usr/bin/cc -o driver_000",
        "collect2: error: ld returned 1 exit status",
        "ninja: build stopped: cannot make progress due to previous errors.",
    ])
    bad, unknown = runner.parse_build_log(log, drivers)
    assert bad == {"c0001": "/w/cases/c0001/src/c0001.c:12:5: error: 'x' undeclared",
                   "c0003": "link: c0003.c:(.text+0x1c): undefined reference to `c0003_missing'"}
    assert unknown == ["driver_000"]
    # a driver that fails without naming a case gets its cases one driver each next round
    alone = runner.group_drivers(["c0000", "c0001", "c0002"], alone={"c0000", "c0001"}, size=2)
    assert [d["cases"] for d in alone] == [["c0002"], ["c0000"], ["c0001"]]


def test_frozen_inputs_are_reported():
    passed = Result("node/test_x", "Reshape", PASSED)
    r = runner.with_frozen(passed, ["shape"], "node r (Reshape): shape shape must be known at "
                           "compile time", freeze=False)
    assert r.category == DATA_DEPENDENT and r.frozen == ["shape"] and r.frozen_result == PASSED
    assert r.reason == ("node r (Reshape) needs shape at compile time; with it frozen to the "
                        "test data it passes")
    assert runner.with_frozen(passed, ["shape"], "...", freeze=True).category == PASSED
    assert runner.dependent_input("node s (Slice): starts starts must be known at compile "
                                  "time", ["x", "starts"]) == "starts"
    assert runner.dependent_input("node s (Slice): 'k' must be known at compile time",
                                  ["x"]) is None


def test_freeze_input_turns_a_graph_input_into_an_initializer():
    x = helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [2, 3])
    s = helper.make_tensor_value_info("s", onnx.TensorProto.INT64, [2])
    y = helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [3, 2])
    model = helper.make_model(helper.make_graph([helper.make_node("Reshape", ["x", "s"], ["y"])],
                                                "g", [x, s], [y]))
    frozen = runner.freeze_input(model, "s", np.array([3, 2], np.int64))
    assert [vi.name for vi in frozen.graph.input] == ["x"]
    assert [t.name for t in frozen.graph.initializer] == ["s"]
    assert [vi.name for vi in model.graph.input] == ["x", "s"]     # the original is untouched


def test_error_stats():
    a = np.array([1.0, 2.0, np.inf, 0.5], np.float32)
    e = np.array([1.0, 2.5, np.inf, 0.0], np.float32)
    assert runner.error_stats(a, e) == (pytest.approx(0.5), pytest.approx(0.2))
    assert runner.error_stats(np.zeros(2, np.int64), np.zeros(3, np.int64)) == (None, None)


RESULTS = [
    Result("node/test_abs", "Abs", PASSED),
    Result("node/test_add", "Add", PASSED),
    Result("node/test_add_bcast", "Add", MISMATCH, "max abs 0.5; output y: 1 of 6 elements",
           max_abs=0.5, max_rel=0.1),
    Result("node/test_mod", "Mod", UNSUPPORTED_OP, "unsupported ops: Mod", ["Mod"]),
    Result("node/test_mod_expanded", "Mod", UNSUPPORTED_OP, "unsupported ops: Mod, CastLike",
           ["Mod", "CastLike"]),
    Result("pytorch-operator/test_operator_x", "Pad", BUILD_ERROR,
           "c.c:1: error: a | b <unnamed>"),
]


def test_markdown_table():
    text = report.markdown(RESULTS, {"command": "nnbuild conformance --table t.md",
                                     "nnbuild_version": "0.1.0", "onnx_version": "1.0",
                                     "onnx_opset": 21, "opt_level": 2})
    assert text.startswith("# ONNX conformance\n")
    assert "`nnbuild conformance --table t.md`" in text
    assert "| node | 2 | 5 | 40.0% |" in text
    assert "| pytorch-operator | 0 | 1 | 0.0% |" in text
    assert "| **all** | **2** | **6** | **33.3%** |" in text
    assert "| unsupported op | 2 |" in text
    assert "| Mod | 2 |\n| CastLike | 1 |" in text            # blocking ops, most first
    assert "| Add | 1 | 2 | 1 numeric mismatch |" in text
    assert "| Abs | 1 | 1 |  |" in text
    # one row per failing case, table-safe
    assert "| `pytorch-operator/test_operator_x` | Pad | build error | " \
           "c.c:1: error: a \\| b &lt;unnamed&gt; |" in text
    failing = [ln for ln in text.split("## Failing cases")[1].splitlines() if ln.startswith("| `")]
    assert len(failing) == 4
    assert text == report.markdown(RESULTS, {"command": "nnbuild conformance --table t.md",
                                             "nnbuild_version": "0.1.0", "onnx_version": "1.0",
                                             "onnx_opset": 21, "opt_level": 2})


def test_markdown_counts_data_dependent_cases_that_pass_frozen():
    results = [Result("node/test_a", "Reshape", DATA_DEPENDENT, "r", frozen=["shape"],
                      frozen_result=PASSED),
               Result("node/test_b", "Reshape", DATA_DEPENDENT, "r", frozen=["shape"],
                      frozen_result=MISMATCH),
               Result("node/test_c", "Reshape", DATA_DEPENDENT, "r")]
    assert "1 of the 3 data-dependent-shape cases pass when" in report.markdown(results, {})
    assert "data-dependent shape: 3 (1 pass with those inputs frozen)" in report.summary(results)


def test_json_round_trip(tmp_path):
    path = tmp_path / "results.json"
    report.write_json(str(path), RESULTS, {"source": "all"}, {"total_s": 12.34})
    data = json.loads(path.read_text())
    assert data["totals"]["cases"] == 6 and data["totals"]["passed"] == 2
    assert data["totals"]["by_category"][UNSUPPORTED_OP] == 2
    assert data["missing_ops"] == {"Mod": 2, "CastLike": 1}
    assert data["timing"] == {"total_s": 12.3}
    results, settings = report.read_json(str(path))
    assert results == RESULTS and settings == {"source": "all"}


def test_summary_lists_few_failures():
    text = report.summary(RESULTS, {"total_s": 3.0})
    assert text.splitlines()[0] == "2/6 passed (33.3%) in 3s"
    assert "  FAIL node/test_mod [unsupported op] unsupported ops: Mod" in text
    assert "most blocking missing ops: Mod (2), CastLike (1)" in text


def test_cli_refuses_a_foreign_keep_folder(tmp_path, capsys):
    from nnbuild.cli import main
    (tmp_path / "mine.txt").write_text("not the runner's")
    assert main(["conformance", "--filter", "node/test_abs$", "--keep", str(tmp_path)]) == 2
    assert "did not write" in capsys.readouterr().err


def test_cli_rejects_a_bad_filter(capsys):
    from nnbuild.cli import main
    assert main(["conformance", "--source", "pytorch-operator", "--filter", "(("]) == 2
    assert "--filter" in capsys.readouterr().err


def test_ulp_distance_counts_the_floats_between():
    """A mismatch reports its distance in units in the last place of the expected type."""
    from nnbuild.conformance.runner import ulp_distance
    one = np.float32(1)
    expected = np.array([1, -2, 0, 0.5], np.float32)
    actual = np.array([np.nextafter(one, np.float32(2)), -2, -0.0, 0.5], np.float32)
    assert ulp_distance(actual, expected) == 1                  # -0 and +0 are one value
    actual[2] = -np.float32(1e-45)                              # across zero: 1 ULP
    assert ulp_distance(actual, expected) == 1
    actual[3] = np.float32(0.5) + np.float32(2.0 ** -24) * 3    # 3 floats above 0.5
    assert ulp_distance(actual, expected) == 3
    halves = np.array([1, 2], np.float16)
    assert ulp_distance(halves + np.float16(2.0 ** -10), halves) == 1
    assert ulp_distance(np.array([1, 2]), np.array([1, 3])) is None     # integers: exact
