"""Official cases nnbuild does not compile ahead of time, or cannot check, for a stated reason.

Each entry is (regular expression searched in the case id, reason). The runner still counts
these cases as failures in their category; it shows this reason instead of the error so that
the table says why they are out of reach rather than what failed first.
"""
from __future__ import annotations

import re

STRINGS = ("string tensors: their element sizes are only known at run time, and the generated "
           "C has fixed-size buffers and no allocation on the inference path")

NOT_COMPILED = [
    (r"node/test_strnormalizer_", f"StringNormalizer works on {STRINGS}"),
    (r"node/test_string_split_", f"StringSplit works on {STRINGS}"),
    (r"node/test_string_concat", f"StringConcat works on {STRINGS}"),
    (r"node/test_regex_full_match_", f"RegexFullMatch works on {STRINGS} (and needs a regular "
                                     f"expression engine)"),
    (r"node/test_equal_string", f"Equal on {STRINGS}"),
    (r"node/test_ai_onnx_ml_label_encoder_(string|tensor)", f"LabelEncoder with string keys: "
                                                            f"{STRINGS}"),
    (r"node/test_image_decoder_", "ImageDecoder decodes JPEG/PNG/BMP/TIFF/WebP/JPEG 2000 "
                                  "bytes: it needs image codec libraries in the generated "
                                  "project, and the image's shape is only known once decoded"),
    (r"node/test_bernoulli", "Bernoulli / RandomUniformLike draw random numbers: the expected "
                             "outputs come from numpy's unseeded global generator (the test "
                             "generator ignores the seed), so only the shape and dtype are "
                             "checkable"),
]

_COMPILED = [(re.compile(pattern), reason) for pattern, reason in NOT_COMPILED]


def reason_for(case_id: str) -> str | None:
    """Why the case ``case_id`` (``<source>/<name>``) is out of reach, or None."""
    return next((reason for rx, reason in _COMPILED if rx.search(case_id)), None)
