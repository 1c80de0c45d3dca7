"""Write this example's model into models/ (seeded, so the file is reproducible).

    python make_models.py [OUT_DIR]

models/classifier.onnx: the quick-start image classifier (../make_example_model.py),
    input "image" f32[1,3,32,32] -> "probs" f32[1,10].
"""
import os
import sys

import onnx

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from make_example_model import make_classifier  # noqa: E402


def main(out_dir: str) -> None:
    os.makedirs(out_dir, exist_ok=True)
    onnx.save(make_classifier(), os.path.join(out_dir, "classifier.onnx"))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else
         os.path.join(os.path.dirname(os.path.abspath(__file__)), "models"))
