/* Classifies a fixed test pattern with the network nnbuild compiled into this program.
 * The input is exact in float32: x[i] = ((7 * i) % 13 - 6) / 8. */
#include <stdio.h>

#include "classifier.h"

int main(void) {
  static float image[1 * 3 * 32 * 32], probs[10];
  for (size_t i = 0; i < sizeof image / sizeof *image; ++i)
    image[i] = (float)((int)((7 * i) % 13) - 6) / 8.0f;
  const void *inputs[] = {image};
  void *outputs[] = {probs};
  int err = classifier_run(inputs, outputs);
  if (err) {
    fprintf(stderr, "classifier: %s\n", classifier_strerror(err));
    return 1;
  }
  int best = 0;
  for (int k = 1; k < 10; ++k)
    if (probs[k] > probs[best]) best = k;
  printf("classifier %s", classifier_output_info(0)->name);
  for (int k = 0; k < 10; ++k) printf(" %.6f", probs[k]);
  printf("\nclass %d\n", best);
  return 0;
}
