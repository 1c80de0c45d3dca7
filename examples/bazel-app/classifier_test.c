/* The C API of the generated library: shapes as declared, probabilities that sum to one, and
 * the same result from the caller's workspace as from the built-in one. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "classifier.h"

#define CHECK(cond)                                                   \
  do {                                                                \
    if (!(cond)) {                                                    \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
      return 1;                                                       \
    }                                                                 \
  } while (0)

int main(void) {
  CHECK(classifier_num_inputs() == 1 && classifier_num_outputs() == 1);
  const classifier_tensor_info *in = classifier_input_info(0), *out = classifier_output_info(0);
  CHECK(strcmp(in->name, "image") == 0 && in->rank == 4 && in->shape[1] == 3);
  CHECK(strcmp(out->name, "probs") == 0 && out->bytes == 10 * sizeof(float));
  CHECK(classifier_input_info(1) == NULL);

  static float image[1 * 3 * 32 * 32], probs[10], again[10];
  for (size_t i = 0; i < sizeof image / sizeof *image; ++i)
    image[i] = (float)((int)((7 * i) % 13) - 6) / 8.0f;
  const void *inputs[] = {image};
  void *outputs[] = {probs}, *outputs2[] = {again};
  CHECK(classifier_run(inputs, outputs) == 0);
  double sum = 0;
  for (int k = 0; k < 10; ++k) {
    CHECK(probs[k] >= 0.0f && probs[k] <= 1.0f);
    sum += probs[k];
  }
  CHECK(fabs(sum - 1.0) < 1e-5);

  void *ws = malloc(classifier_workspace_size());
  CHECK(ws != NULL);
  CHECK(classifier_run_ws(ws, inputs, outputs2) == 0);
  CHECK(memcmp(probs, again, sizeof probs) == 0);
  free(ws);
  puts("classifier_test: ok");
  return 0;
}
