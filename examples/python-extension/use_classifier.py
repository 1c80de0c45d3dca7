"""Use the `classifier` package that `nnbuild package` made (see README.md): numpy in, numpy out.

    python use_classifier.py        # prints one line per output, then checks the errors
"""
import threading

import numpy as np

import classifier

print("inputs: ", classifier.inputs)
print("outputs:", classifier.outputs)
image = np.random.default_rng(0).standard_normal((1, 3, 32, 32)).astype(np.float32)

probs = classifier.run(image)                         # one input, one output: an array
by_name = classifier.run({"image": image})            # a dict in, a dict out
assert np.array_equal(by_name["probs"], probs)
print("probs:", probs.round(4), "argmax", int(probs.argmax()))

results = [None] * 4                                  # the GIL is released while it runs
threads = [threading.Thread(target=lambda i=i: results.__setitem__(i, classifier.run(image)))
           for i in range(4)]
for t in threads:
    t.start()
for t in threads:
    t.join()
assert all(np.array_equal(r, probs) for r in results)

for wrong in (image.astype(np.float64), image[:, :2]):
    try:
        classifier.run(wrong)
    except (TypeError, ValueError) as e:
        print(f"{type(e).__name__}: {e}")
