/* Runs two nnbuild models linked into one program and prints every output value.
 * The inputs are a fixed pattern, exact in float32: x[i] = ((7 * i) % 13 - 6) / 8. */
#include <stdio.h>

#include "classifier.h"
#include "scorer.h"

static void fill(float *x, size_t n) {
  for (size_t i = 0; i < n; ++i) x[i] = (float)((int)((7 * i) % 13) - 6) / 8.0f;
}

static void print(const char *model, const char *name, const float *y, size_t n) {
  printf("%s %s", model, name);
  for (size_t i = 0; i < n; ++i) printf(" %.9g", y[i]);
  printf("\n");
}

int main(void) {
  static float image[1 * 3 * 32 * 32], probs[10], features[4 * 16], scores[4 * 3];
  fill(image, sizeof image / sizeof *image);
  fill(features, sizeof features / sizeof *features);

  const void *c_in[] = {image};
  void *c_out[] = {probs};
  int err = classifier_run(c_in, c_out);
  if (err) {
    fprintf(stderr, "classifier: %s\n", classifier_strerror(err));
    return 1;
  }
  const void *s_in[] = {features};
  void *s_out[] = {scores};
  err = scorer_run(s_in, s_out);
  if (err) {
    fprintf(stderr, "scorer: %s\n", scorer_strerror(err));
    return 1;
  }
  print("classifier", classifier_output_info(0)->name, probs, 10);
  print("scorer", scorer_output_info(0)->name, scores, 12);
  return 0;
}
